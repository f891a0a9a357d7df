"""``autorag-hp tune`` end to end on a small user corpus (BM25, extractive answers: no model downloads, fast)."""

from __future__ import annotations

import json

import pytest

from autorag_hp.cli import main
from autorag_hp.rag import load_bundled_corpus, load_bundled_questions
from autorag_hp.tuner import Tuner


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    d = tmp_path_factory.mktemp("tune")
    docs = [x for x in load_bundled_corpus("python_docs_faq") if x.id.startswith("faq/general.rst")]
    ids = {x.id for x in docs}
    qs = [q for q in load_bundled_questions() if q.sources[0] in ids]
    (d / "corpus.jsonl").write_text("".join(json.dumps({"id": x.id, "text": x.text}) + "\n" for x in docs))
    (d / "qa.jsonl").write_text("".join(json.dumps({"question": q.question, "answer": q.answer,
                                                    "sources": list(q.sources)}) + "\n" for q in qs))
    (d / "spec.yaml").write_text(
        "name: small\ncorpus: {path: corpus.jsonl}\nquestions: {path: qa.jsonl}\ngenerator: extractive\n"
        "space:\n  retrieval: {chunk_size: [256, 1024], top_k: [1, 3], embedding: [bm25]}\n"
        "  generation: {prompt: [concise, cite]}\n"
    )
    return d


def _tune(data, *extra):
    return main(["tune", "--pipeline", str(data / "spec.yaml"), "--cache-dir", str(data / "cache"),
                 "--no-progress", *extra])


def test_tune_prints_the_top_configurations(data, capsys):
    assert _tune(data, "--questions", "24", "--top", "3") == 0
    out = capsys.readouterr().out
    assert "Tuned 'small' with hier_ucb on 24 questions" in out
    assert "Top 3 configurations" in out and out.count("chunk_size=") == 3


def test_tune_json_summary_with_user_data_and_storage(data, capsys, tmp_path):
    db = f"sqlite:///{tmp_path / 't.db'}"
    rc = _tune(data, "--corpus", str(data / "corpus.jsonl"), "--qa", str(data / "qa.jsonl"), "--questions", "12",
               "--policy", "ucb", "--storage", db, "--json")
    assert rc == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["questions"] == 12 and summary["llm_calls"] == 0 and summary["policy"] == "ucb"
    assert summary["best"] and set(summary["best"][0]["config"]) == {"chunk_size", "top_k", "embedding", "prompt"}
    assert -1.0 <= summary["mean_reward"] <= 1.0
    from autorag_hp.space import SearchSpace

    space = SearchSpace({"retrieval": {"chunk_size": [256, 1024], "top_k": [1, 3], "embedding": ["bm25"]},
                         "generation": {"prompt": ["concise", "cite"]}})
    assert len(Tuner(space, policy="ucb", storage=db, study="tune").trials()) == 12

    # bad input: an empty question fails before anything is stored
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"question": "What is Python?"}\n{"question": "  "}\n')
    rc = _tune(data, "--corpus", str(data / "corpus.jsonl"), "--qa", str(bad), "--storage", db, "--policy", "ucb")
    assert rc == 2 and "non-empty string field 'question'" in capsys.readouterr().err
    long = tmp_path / "long.jsonl"
    long.write_text(json.dumps({"question": "why " * 1000, "sources": ["x"]}) + "\n")
    rc = _tune(data, "--corpus", str(data / "corpus.jsonl"), "--qa", str(long), "--storage", db, "--policy", "ucb")
    assert rc == 2 and "limit of 2000" in capsys.readouterr().err
    assert len(Tuner(space, policy="ucb", storage=db, study="tune").trials()) == 12


def test_tune_bad_inputs_are_clear_errors(data, capsys, tmp_path):
    (tmp_path / "empty").mkdir()
    assert _tune(data, "--corpus", str(tmp_path / "empty"), "--qa", str(data / "qa.jsonl")) == 2
    assert "empty" in capsys.readouterr().err
    assert _tune(data, "--qa", str(data / "qa.jsonl")) == 2
    assert "--qa needs --corpus" in capsys.readouterr().err
    spec = tmp_path / "bad.yaml"
    spec.write_text("corpus: {path: %s}\nspace: {embedding: [bm25, word2vec]}\n" % (data / "corpus.jsonl"))
    assert main(["tune", "--pipeline", str(spec), "--no-progress"]) == 2
    assert "unknown embedding 'word2vec'" in capsys.readouterr().err
    noq = tmp_path / "noq.jsonl"
    noq.write_text('{"question": "What is Python?"}\n')
    assert _tune(data, "--corpus", str(data / "corpus.jsonl"), "--qa", str(noq), "--questions", "2") == 2
    assert "neither a reference answer nor gold sources" in capsys.readouterr().err
