"""``autorag-hp tune`` says what a user would otherwise miss: a one-value space, a resumed study, and which corpus
the pipeline runs on (issue 16 §5). Small user corpus, BM25, extractive answers: no models, fast."""

from __future__ import annotations

import json

import pytest

from autorag_hp.cli import main
from autorag_hp.rag import load_bundled_corpus, load_bundled_questions


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    d = tmp_path_factory.mktemp("tune_messages")
    docs = [x for x in load_bundled_corpus("python_docs_faq") if x.id.startswith("faq/general.rst")]
    ids = {x.id for x in docs}
    qs = [q for q in load_bundled_questions() if q.sources[0] in ids]
    (d / "mydocs.jsonl").write_text("".join(json.dumps({"id": x.id, "text": x.text}) + "\n" for x in docs))
    (d / "qa.jsonl").write_text("".join(json.dumps({"question": q.question, "answer": q.answer,
                                                    "sources": list(q.sources)}) + "\n" for q in qs))
    (d / "spec.yaml").write_text(
        "name: small\ncorpus: {path: mydocs.jsonl}\nquestions: {path: qa.jsonl}\ngenerator: extractive\n"
        "space:\n  retrieval: {top_k: [1, 3], embedding: [bm25]}\n")
    (d / "single.yaml").write_text(
        "name: single\ncorpus: {path: mydocs.jsonl}\nquestions: {path: qa.jsonl}\ngenerator: extractive\n"
        "space: {top_k: [1, 3], embedding: [bm25]}\n")
    return d


def _tune(data, spec, *extra):
    return main(["tune", "--pipeline", str(data / spec), "--cache-dir", str(data / "cache"), "--no-progress",
                 "--policy", "ucb", "--questions", "4", *extra])


def test_a_one_value_parameter_and_a_single_configuration_warn(data, capsys):
    assert _tune(data, "spec.yaml") == 0
    err = capsys.readouterr().err
    assert ("warning: space parameter 'embedding' has one value ('bm25'), so it is not tuned; give it more values, "
            "or pin it with --set embedding=bm25 to say so") in err
    assert "single configuration" not in err
    assert _tune(data, "single.yaml", "--set", "top_k=3") == 0
    err = capsys.readouterr().err
    assert ("warning: the search space has a single configuration (pinned: top_k=3): every question runs it and "
            "there is nothing to tune") in err


def test_a_resumed_study_says_how_many_events_it_loaded(data, capsys, tmp_path):
    db = f"sqlite:///{tmp_path / 'resume.db'}"
    assert _tune(data, "spec.yaml", "--storage", db, "--json") == 0
    first = json.loads(capsys.readouterr().out)
    assert first["resumed_events"] == 0
    assert _tune(data, "spec.yaml", "--storage", db, "--json") == 0
    out = capsys.readouterr()
    assert json.loads(out.out)["resumed_events"] == 8  # 4 suggests + 4 reports
    assert (f"resumed study 'tune' from {db}: 8 events loaded (4 trials, 4 reported); tuning continues from them"
            in out.err)
    assert _tune(data, "spec.yaml", "--storage", db, "--study", "other", "--json") == 0
    assert "resumed" not in capsys.readouterr().err


def test_the_pipeline_is_named_after_your_corpus(data, capsys):
    assert _tune(data, "spec.yaml", "--corpus", str(data / "mydocs.jsonl"), "--qa", str(data / "qa.jsonl")) == 0
    assert "Tuned 'mydocs (small settings)' with ucb" in capsys.readouterr().out
