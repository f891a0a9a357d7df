"""The language of a text or a corpus (its CJK share), and the one Chinese word segmenter (jieba).

Everything that treats Chinese differently asks here: the prompts (answer in the question's language), the
text metrics (CJK characters, or jieba words, as tokens), BM25 (jieba words) and the default search space
(English-only embeddings left out for a Chinese corpus, :func:`language_space`).

>>> cjk_share("Debian 操作系统")  # 4 CJK characters, 6 Latin letters
0.4
>>> language("什么是列表？"), language("How do I use 列表 in Python?")
('zh', 'en')
>>> segment("元组是不可变的序列")
['元组', '是', '不可', '变', '的', '序列']
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterable, Mapping
from typing import Any

#: One CJK (Han) ideograph: the unified ideographs, extension A and the compatibility block.
CJK_RANGES = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
CJK_CHAR = re.compile(f"[{CJK_RANGES}]")
CJK_RUN = re.compile(f"[{CJK_RANGES}]+")
_LATIN = re.compile(r"[A-Za-z]")

#: A text is Chinese when at least this share of its letters (CJK ideographs + Latin letters) are CJK. A
#: Chinese technical text keeps its commands and names in Latin letters: chapters of the Debian Reference
#: (zh-CN) measure 0.41-0.75; the Python documentation measures 0.0.
ZH_SHARE = 0.2
#: Embeddings trained on English only (R@1 0.11 for MiniLM on a Chinese FAQ, against e5's 0.48).
ENGLISH_ONLY_EMBEDDINGS = frozenset({"minilm", "mpnet"})
#: What a Chinese corpus tunes: the multilingual e5, jieba BM25 and their hybrid (when its dense half is e5).
ZH_EMBEDDINGS = ("e5", "bm25", "hybrid")


def cjk_share(text: str) -> float:
    """CJK ideographs / (CJK ideographs + Latin letters) in ``text``; 0.0 when it has neither."""
    cjk = len(CJK_CHAR.findall(text))
    total = cjk + len(_LATIN.findall(text))
    return cjk / total if total else 0.0


def language(text: str) -> str:
    """``"zh"`` when at least :data:`ZH_SHARE` of the text's letters are CJK, ``"en"`` otherwise."""
    return _language_of_share(cjk_share(text))


def _language_of_share(share: float) -> str:
    return "zh" if share >= ZH_SHARE else "en"


def corpus_share(texts: Iterable[str], budget: int = 200_000) -> float:
    """:func:`cjk_share` of a corpus, read from the start of every text, ``budget`` characters in all (at least
    500 of each text), so a large corpus costs milliseconds and a short text still counts."""
    texts = list(texts)
    if not texts:
        return 0.0
    quota = max(500, budget // len(texts))
    return cjk_share("\n".join(t[:quota] for t in texts))


def corpus_language(texts: Iterable[str]) -> tuple[str, float]:
    """``(language, share)`` of a corpus: ``"zh"`` when its :func:`corpus_share` is at least :data:`ZH_SHARE`
    (the rule :func:`language` applies to one text), ``"en"`` otherwise. The default space and the default
    generator both follow it."""
    share = corpus_share(texts)
    return _language_of_share(share), share


# ------------------------------------------------------------------------------------------------ segmenter
_jieba_lock = threading.Lock()
_jieba: Any = None


def segment(text: str) -> list[str]:
    """Chinese words of ``text`` by jieba (quiet, loaded once), without whitespace tokens; character bigrams
    when jieba is not installed (it comes with the ``rag`` extra). BM25 and the ``:jieba`` metrics use it."""
    global _jieba
    with _jieba_lock:
        if _jieba is None:
            try:
                import jieba

                jieba.setLogLevel(logging.WARNING)
                jieba.initialize()
                _jieba = jieba
            except ImportError:
                _jieba = False
    if _jieba:
        return [w for w in _jieba.lcut(text) if w.strip()]
    return [text[i : i + 2] for i in range(max(1, len(text) - 1))]


# ---------------------------------------------------------------------------------------------- the space
def language_space(spec: Mapping[str, Any], lang: str, hybrid_dense: str = "e5") -> tuple[dict[str, Any], str]:
    """``(spec, notice)``: the default space ``spec`` (grouped or flat, as ``SearchSpace.to_dict()`` gives)
    adapted to a corpus in ``lang``. For ``"zh"``, a space that tunes an English-only embedding gets e5, BM25 and
    hybrid (when ``hybrid_dense`` is e5), in that order, without the English-only ones (a space with none, such
    as a Chinese spec's own, is kept as written); ``notice`` says what changed (empty when nothing did). Other languages, or a space that does not tune ``embedding``, come back unchanged.

    >>> language_space({"retrieval": {"top_k": [1, 3], "embedding": ["bm25", "minilm"]}}, "zh")[0]
    {'retrieval': {'top_k': [1, 3], 'embedding': ['e5', 'bm25', 'hybrid']}}
    """
    out = {k: dict(v) if isinstance(v, Mapping) else v for k, v in spec.items()}
    where = next((g for g in out.values() if isinstance(g, dict) and "embedding" in g), out)
    if lang != "zh" or "embedding" not in where:
        return out, ""
    old = list(where["embedding"])
    english = set(ENGLISH_ONLY_EMBEDDINGS) | ({"hybrid"} if hybrid_dense in ENGLISH_ONLY_EMBEDDINGS else set())
    if not english.intersection(old):  # a space with no English-only arm was written for this corpus: kept
        return out, ""
    new = [e for e in ZH_EMBEDDINGS if e not in english]
    new += [e for e in old if e not in new and e not in english]  # anything else the spec tunes stays
    if new == old:
        return out, ""
    where["embedding"] = new
    dropped = [e for e in old if e in english]
    added = [e for e in new if e not in old]
    parts = []
    if dropped:
        parts.append(f"left out {', '.join(dropped)} (English-only)")
    if added:
        parts.append(f"added {', '.join(added)}" + (f" (hybrid = {hybrid_dense} + BM25)" if "hybrid" in added else ""))
    return out, (f"note: the corpus is Chinese; embedding arms: {'; '.join(parts)}; tuning {', '.join(new)}. "
                 "To choose yourself, pass --space or --set embedding=...")
