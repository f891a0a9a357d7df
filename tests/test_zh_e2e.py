"""``autorag-hp tune`` end to end in Chinese: a slice of the bundled ``debian_reference_zh`` benchmark, BM25 (jieba
words) and e5 arms, reward = character-level token F1 (CMRC 2018 tokenization), extractive answers (no LLM).

The slice: the 16 sections of chapter 3 (system initialisation) as the corpus, 10 of its 13 questions; indexes
are built once per module in a temporary cache (about 15 s here, most of it e5). Whitespace tokenization would
score every Chinese answer ~0 (a clause is one "token"); per character the top passage shares the quoted span.
"""

from __future__ import annotations

import json

import pytest

from autorag_hp.cli import main

CHAPTERS = ("ch03",)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    from autorag_hp.rag import load_pipeline

    d = tmp_path_factory.mktemp("zh-e2e")
    full = load_pipeline("debian_reference_zh", cache_dir=d / "unused")
    docs = [x for x in full.docs if x.id.split("#")[0] in CHAPTERS]
    ids = {x.id for x in docs}
    qs = [q for q in full.questions() if q.sources[0] in ids][:10]
    assert len(qs) == 10
    (d / "corpus.jsonl").write_text("".join(json.dumps({"id": x.id, "text": x.text}, ensure_ascii=False) + "\n"
                                            for x in docs), encoding="utf-8")
    (d / "qa.jsonl").write_text("".join(json.dumps({"question": q.question, "answer": q.answer,
                                                    "sources": list(q.sources)}, ensure_ascii=False) + "\n"
                                        for q in qs), encoding="utf-8")
    (d / "spec.yaml").write_text(
        "name: zh_slice\ncorpus: {path: corpus.jsonl}\nquestions: {path: qa.jsonl}\ngenerator: extractive\n"
        "space:\n  retrieval: {chunk_size: [256], top_k: [1, 3], embedding: [bm25, e5]}\n", encoding="utf-8")
    # --space: the spec's own space would be widened to e5/BM25/hybrid for a Chinese corpus (language defaults)
    (d / "space.json").write_text('{"retrieval": {"chunk_size": [256], "top_k": [1, 3], "embedding": ["bm25", "e5"]}}')
    (d / "reward.yaml").write_text("type: weighted_sum\nweights: {token_f1: 1.0}\n", encoding="utf-8")
    return d


def test_tune_in_chinese_with_char_f1_reward(data, capsys, monkeypatch):
    monkeypatch.setenv("AUTORAG_HP_THREADS", "2")
    rc = main(["tune", "--pipeline", str(data / "spec.yaml"), "--reward", str(data / "reward.yaml"),
               "--space", str(data / "space.json"),
               "--cache-dir", str(data / "cache"), "--questions", "12", "--batch-size", "2", "--seed", "0",
               "--no-progress", "--json"])
    assert rc == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["questions"] == 12 and summary["llm_calls"] == 0
    assert summary["configurations_in_space"] == 4
    best = summary["best"]
    assert best and all(b["config"]["embedding"] in {"bm25", "e5"} for b in best)
    assert {b["config"]["embedding"] for b in best} == {"bm25", "e5"}  # both arms were tried
    # char F1 of the top passage (256 characters) against a ~20-character quoted span: well above zero
    assert 0.03 < summary["mean_reward"] <= 1.0, summary["mean_reward"]

