"""The bundled Chinese benchmark ``debian_reference_zh`` (Debian Reference zh-CN sections, hand-written questions).

Shipped data only, no model: the files load through the bundled pipeline spec, every answer is quoted from its
gold section, no question leaks into the indexed text, and the licence travels with the data.
"""

from __future__ import annotations

import gzip
import re
from pathlib import Path

import pytest

DATA = Path(__file__).resolve().parents[1] / "autorag_hp" / "data"


@pytest.fixture(scope="module")
def pipe(tmp_path_factory):
    from autorag_hp.rag import load_pipeline

    return load_pipeline("debian_reference_zh", cache_dir=tmp_path_factory.mktemp("zh-data"))


def test_the_spec_loads_the_shipped_chinese_data(pipe):
    qs = pipe.questions()
    assert pipe.name == "debian_reference_zh" and len(pipe.docs) == 426 and len(qs) >= 100
    assert pipe.generator.name == "extractive"
    assert set(pipe.space["embedding"].values) == {"bm25", "e5", "hybrid"}
    chapters = {q.sources[0].split("#")[0] for q in qs}
    assert len(chapters) == 13 and len({q.sources[0] for q in qs}) >= 100


def test_answers_are_quoted_from_their_gold_section_and_questions_stay_out_of_the_corpus(pipe):
    docs = {d.id: d for d in pipe.docs}
    bare = re.compile(r"[\s\W_]+")
    corpus = bare.sub("", "".join(d.text for d in pipe.docs))
    for q in pipe.questions():
        (src,) = q.sources
        assert q.answer in docs[src].text, q.id
        assert bare.sub("", q.question) not in corpus, q.id
        assert bare.sub("", q.question) != bare.sub("", docs[src].meta["section"]), q.id
        assert re.search(r"[\u4e00-\u9fff]", q.question), q.id  # Chinese questions


def test_the_licence_ships_beside_the_data():
    with gzip.open(DATA / "debian_reference_zh.LICENSE.txt.gz", "rt", encoding="utf-8") as f:
        text = f.read()
    assert "Osamu Aoki" in text and "GNU General Public License version 2 or later" in text
    assert "GNU GENERAL PUBLIC LICENSE" in text and "Version 2, June 1991" in text
