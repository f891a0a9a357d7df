"""Build the bundled Chinese benchmark ``debian_reference_zh`` from Debian's ``debian-reference-zh-cn``.

Corpus: every section of the Debian Reference (zh-CN), heading left out (see ``zh_qa_corpus.py``).
Questions: written by hand below (annotator: one helper session, December 2026): for a section, a question a
Debian user would ask in their own words (never the section heading), the reference answer a short span copied
from the section's text, and that section as the gold source. The check in ``zh_qa_check.py`` verifies every
span and source and that no question occurs in the corpus.

    apt-get install -y debian-reference-zh-cn
    .venv/bin/python eval/scripts/zh_qa_build.py      # writes autorag_hp/data/debian_reference_zh.*
"""

from __future__ import annotations

import gzip
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from zh_qa_corpus import sections  # noqa: E402
from zh_qa_questions import QUESTIONS  # noqa: E402

OUT = Path(__file__).resolve().parents[2] / "autorag_hp" / "data"
NAME = "debian_reference_zh"
LICENSE_HEAD = """The files debian_reference_zh.*.jsonl.gz are derived from the Debian Reference (Chinese, simplified),
version 2, as shipped by Debian's debian-reference-zh-cn package (/usr/share/debian-reference/*.zh-cn.html):
the corpus is the text of its sections; the questions are new, written for this benchmark, and their answers are
short passages quoted from those sections. Copyright 2007-2013 Osamu Aoki and the translators, used under the
GNU General Public License version 2 or later. The package's copyright file and the GPL-2 follow.

"""


def _gzip_lines(path: Path, rows) -> None:
    with gzip.GzipFile(path, "wb", compresslevel=9, mtime=0) as f:
        for row in rows:
            f.write((json.dumps(row, ensure_ascii=False) + "\n").encode())


def main() -> None:
    docs = sections()
    text = {d.id: d.text for d in docs}
    bad = [(src, a) for src, _, a in QUESTIONS if src not in text or a not in text[src]]
    if bad:
        sys.exit("answers not found in their gold section:\n" + "\n".join(f"  {s}: {a!r}" for s, a in bad))
    _gzip_lines(OUT / f"{NAME}.corpus.jsonl.gz", ({"id": d.id, "text": d.text, **d.meta} for d in docs))
    seen: dict[str, int] = {}
    rows = []
    for src, q, a in QUESTIONS:
        seen[src] = seen.get(src, 0) + 1
        rows.append({"id": f"{src}/q{seen[src]}", "question": q, "answer": a, "sources": [src]})
    _gzip_lines(OUT / f"{NAME}.qa.jsonl.gz", rows)
    licence = LICENSE_HEAD + Path("/usr/share/doc/debian-reference-zh-cn/copyright").read_text(encoding="utf-8")
    licence += "\n\n" + Path("/usr/share/common-licenses/GPL-2").read_text(encoding="utf-8")
    with gzip.GzipFile(OUT / f"{NAME}.LICENSE.txt.gz", "wb", compresslevel=9, mtime=0) as f:
        f.write(licence.encode())
    print(f"{len(docs)} sections, {len(rows)} questions over {len(seen)} sections -> {OUT}/{NAME}.*")


if __name__ == "__main__":
    main()
