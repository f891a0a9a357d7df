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
    # the extractive generator ignores prompt: it leaves the space (issue 16 §5)
    assert summary["best"] and set(summary["best"][0]["config"]) == {"chunk_size", "top_k", "embedding"}
    assert -1.0 <= summary["mean_reward"] <= 1.0
    from autorag_hp.space import SearchSpace

    space = SearchSpace({"retrieval": {"chunk_size": [256, 1024], "top_k": [1, 3], "embedding": ["bm25"]}})
    assert len(Tuner(space, policy="ucb", storage=db, study="tune").trials()) == 12

    # bad input: an empty question fails before anything is stored
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"question": "What is Python?"}\n{"question": "  "}\n')
    rc = _tune(data, "--corpus", str(data / "corpus.jsonl"), "--qa", str(bad), "--storage", db, "--policy", "ucb")
    assert rc == 2 and "non-empty string field 'question'" in capsys.readouterr().err
    long = tmp_path / "long.jsonl"
    long.write_text(json.dumps({"question": "why " * 1000, "answer": "x"}) + "\n")
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


def test_tune_defaults_to_the_faq_slice():
    import argparse

    from autorag_hp.commands import tune

    p = argparse.ArgumentParser()
    tune.add_arguments(p)
    assert p.parse_args([]).pipeline == "python_docs_faq"


def test_tune_set_pins_a_key_and_space_replaces_the_space(data, capsys):
    assert _tune(data, "--questions", "6", "--set", "prompt=cite", "--json") == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["fixed"] == {"prompt": "cite"} and summary["configurations_in_space"] == 4
    assert all("prompt" not in b["config"] for b in summary["best"])
    assert _tune(data, "--questions", "4", "--space", '{"top_k": [1, 5]}', "--set", "chunk_size=1024", "--json") == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["configurations_in_space"] == 2 and {b["config"]["top_k"] for b in summary["best"]} <= {1, 5}
    # a pinned value the pipeline rejects, and pinning everything, fail before any question
    assert _tune(data, "--set", "embedding=word2vec") == 2
    assert "unknown embedding 'word2vec'" in capsys.readouterr().err
    assert _tune(data, "--space", '{"top_k": [1, 3]}', "--set", "top_k=3") == 2
    assert "nothing is left to tune" in capsys.readouterr().err


class SlowFakeEmbeddings:
    """A dense model that costs ``delay`` seconds per text (deterministic unit vectors): a slow embedding, fast."""

    dim = 8

    def __init__(self, name: str, delay: float):
        self.name, self.delay, self.passages = name, delay, 0

    def encode(self, texts, kind="passage"):
        import time

        import numpy as np

        self.passages += len(texts) if kind == "passage" else 0
        time.sleep(self.delay * len(texts))
        v = np.array([[hash((t, i)) % 997 + 1.0 for i in range(self.dim)] for t in texts], dtype=np.float32)
        return v / np.linalg.norm(v, axis=1, keepdims=True)


@pytest.fixture
def slow_minilm(monkeypatch):
    import autorag_hp.rag.index as index

    fake = SlowFakeEmbeddings("minilm", 0.002)
    monkeypatch.setattr(index, "get_embeddings", lambda name: fake)
    return fake


def test_tune_announces_a_slow_index_build_with_its_estimate_and_the_override(data, slow_minilm, monkeypatch, capsys,
                                                                          tmp_path):
    from autorag_hp.rag.index import IndexCache

    spec = tmp_path / "dense.yaml"
    spec.write_text(f"name: dense\ncorpus: {{path: {data / 'corpus.jsonl'}}}\nquestions: {{path: {data / 'qa.jsonl'}}}\n"
                    "generator: extractive\nspace:\n  retrieval: {chunk_size: [256], top_k: [1, 3], "
                    "embedding: [bm25, minilm]}\n")
    args = ["tune", "--pipeline", str(spec), "--cache-dir", str(tmp_path / "cache"), "--no-progress",
            "--questions", "4", "--policy", "grid"]
    assert main(args) == 0  # threshold 60 s: a build this fast is not announced
    assert "note: building" not in capsys.readouterr().err
    monkeypatch.setattr(IndexCache, "notice_after_s", 0.0)  # announce every build
    args[4] = str(tmp_path / "cache2")
    slow_minilm.passages = 0
    assert main(args) == 0
    err = capsys.readouterr().err
    assert err.count("note: building the minilm index (chunk_size=256, 101 chunks) will take about ") == 1, err
    assert " s on this machine (" in err and "chunks/s, timed on 32 of its chunks" in err
    assert "To leave minilm out, stop (Ctrl-C) and rerun with: --set embedding=bm25" in err
    assert slow_minilm.passages == 1 + 101  # a warm-up, then every distinct chunk once: the sample is reused
    assert main(args) == 0  # built: on disk, nothing to estimate or announce
    assert "note: building" not in capsys.readouterr().err


def test_the_estimate_projects_from_a_timed_sample_of_the_index_own_chunks(data, slow_minilm, tmp_path):
    from autorag_hp.commands.tune import build_notice
    from autorag_hp.rag import load_pipeline
    from autorag_hp.space import SearchSpace

    slow_minilm.delay = 0.01
    pipe = load_pipeline(data / "spec.yaml", cache_dir=tmp_path)
    est = pipe.index.estimate_build(256, 64, "minilm", sample=20)
    assert (est.embedding, est.chunks, est.todo, est.sampled) == ("minilm", 101, 101, 20)
    assert 20 <= est.rate <= 100  # 10 ms per text, plus overhead
    assert est.seconds == pytest.approx(81 / est.rate) and est.full_seconds == pytest.approx(101 / est.rate)
    again = pipe.index.estimate_build(256, 64, "minilm", sample=20)  # the sample is stored: nothing to time
    assert again.sampled == 0 and again.todo == 0 and again.seconds == 0.0
    assert pipe.index.estimate_build(1024, 256, "minilm", sample=40) is None  # 31 chunks: the sample is the build
    space = SearchSpace({"retrieval": {"embedding": ["bm25", "minilm", "e5", "hybrid"], "top_k": [1, 3]}})
    msg = build_notice(est, space, hybrid_dense="minilm")
    assert "rerun with: --space '{\"retrieval\": {\"embedding\": [\"bm25\", \"e5\"], \"top_k\": [1, 3]}}'" in msg
    assert msg.endswith("or, BM25 only: --set embedding=bm25")


def test_timeout_stops_starting_new_questions_and_says_so(data, capsys):
    # a timeout shorter than one question: exactly one question is answered, the summary says why it stopped
    assert _tune(data, "--questions", "40", "--timeout", "0.000001", "--json") == 0
    captured = capsys.readouterr()
    summary = json.loads(captured.out)
    assert (summary["questions"], summary["questions_requested"], summary["stopped"]) == (1, 40, "timeout")
    assert "--timeout 1e-06 s reached after 1 of 40 questions" in captured.err
    assert _tune(data, "--questions", "3", "--timeout", "600", "--json") == 0
    assert json.loads(capsys.readouterr().out)["stopped"] is None
    assert _tune(data, "--timeout", "0") == 2
    assert "--timeout must be a number of seconds > 0" in capsys.readouterr().err


def test_a_one_value_parameter_and_a_single_configuration_warn(data, capsys):
    assert _tune(data, "--questions", "4", "--policy", "ucb") == 0
    err = capsys.readouterr().err
    assert ("warning: space parameter 'embedding' has one value ('bm25'), so it is not tuned; give it more values, "
            "or pin it with --set embedding=bm25 to say so") in err
    assert "single configuration" not in err
    assert _tune(data, "--questions", "2", "--space", '{"top_k": [3], "chunk_size": [256, 1024]}',
                 "--set", "chunk_size=256") == 0
    err = capsys.readouterr().err
    assert "space parameter 'top_k' has one value (3)" in err
    assert ("warning: the search space has a single configuration (pinned: chunk_size=256): every question runs it "
            "and there is nothing to tune") in err


def test_a_resumed_study_says_how_many_events_it_loaded(data, capsys, tmp_path):
    db = f"sqlite:///{tmp_path / 'resume.db'}"
    assert _tune(data, "--questions", "4", "--policy", "ucb", "--storage", db, "--json") == 0
    assert json.loads(capsys.readouterr().out)["resumed_events"] == 0
    assert _tune(data, "--questions", "4", "--policy", "ucb", "--storage", db, "--json") == 0
    out = capsys.readouterr()
    assert json.loads(out.out)["resumed_events"] == 8  # 4 suggests + 4 reports
    assert f"resumed study 'tune' from {db}: 8 events loaded (4 decisions); tuning continues" in out.err
    assert _tune(data, "--questions", "2", "--storage", db, "--study", "other", "--json") == 0
    assert "resumed" not in capsys.readouterr().err


def test_the_pipeline_is_named_after_your_corpus(data, capsys):
    assert _tune(data, "--corpus", str(data / "corpus.jsonl"), "--qa", str(data / "qa.jsonl"), "--questions", "2") == 0
    assert "Tuned 'corpus (small settings)' with hier_ucb" in capsys.readouterr().out
