"""Sections of the Debian Reference (zh-CN) as a corpus: the Chinese benchmark's indexed text.

Reads Debian's ``debian-reference-zh-cn`` (``apt-get install debian-reference-zh-cn``; HTML in
/usr/share/debian-reference/*.zh-cn.html). Every heading with an anchor (``<h2>``..``<h4>`` of the DocBook
output) starts a section; a document is one section's body, its heading left out, with id
``<chapter>#<anchor>`` (``ch03#_the_systemd_init``). Sections with fewer than 40 characters of body (a heading
straight above its first subsection) are dropped.

    .venv/bin/python eval/scripts/zh_qa_corpus.py   # prints the section count and characters per chapter
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from autorag_hp.rag.data import Document, html_to_text

SOURCE = Path("/usr/share/debian-reference")
CHAPTERS = [f"ch{n:02d}" for n in range(1, 13)] + ["apa"]
_HEADING = re.compile(r'<h([2-4]) class="title"[^>]*>\s*<a id="([^"]+)"\s*/?>(?:</a>)?(.*?)</h\1>', re.S)
MIN_CHARS = 40


def _clean(text: str) -> str:
    """One line per block: the HTML's line wraps inside a paragraph become spaces; no-break spaces are spaces."""
    text = text.replace("\xa0", " ")
    blocks = (re.sub(r"\s+", " ", b).strip() for b in re.split(r"\n\s*\n", text))
    return "\n".join(b for b in blocks if b)


def sections(source: Path = SOURCE) -> list[Document]:
    if not (source / "ch01.zh-cn.html").exists():
        sys.exit(f"no {source}/ch01.zh-cn.html: apt-get install -y debian-reference-zh-cn")
    docs: list[Document] = []
    for ch in CHAPTERS:
        markup = (source / f"{ch}.zh-cn.html").read_text(encoding="utf-8").split('<div class="navfooter">')[0]
        marks = list(_HEADING.finditer(markup))
        for i, m in enumerate(marks):
            end = marks[i + 1].start() if i + 1 < len(marks) else len(markup)
            body, heading = _clean(html_to_text(markup[m.end():end])), _clean(html_to_text(m.group(3)))
            if len(body) >= MIN_CHARS:
                docs.append(Document(f"{ch}#{m.group(2)}", body, {"chapter": ch, "section": heading}))
    return docs


if __name__ == "__main__":
    docs = sections()
    per: dict[str, list[int]] = {}
    for d in docs:
        per.setdefault(d.meta["chapter"], []).append(len(d.text))
    for ch, lens in per.items():
        print(ch, len(lens), sum(lens))
    print("total", len(docs), sum(len(d.text) for d in docs))
