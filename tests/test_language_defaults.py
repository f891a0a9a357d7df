"""Language-aware defaults (issue 17 §2) and arms the generator ignores (issue 16 §5): the default space of a
Chinese corpus tunes e5, jieba BM25 and hybrid without the English-only embeddings, and says so; prompts answer in
the question's language; the extractive generator's space has no prompt or temperature arm. Real pipelines over a
small Chinese corpus, BM25 and the multilingual e5 (its own C engine, no download)."""

from __future__ import annotations

import json

import pytest

from autorag_hp.overrides import generator_ignores, tuned_space
from autorag_hp.rag.data import Document
from autorag_hp.rag.language import cjk_share, corpus_language, corpus_share, language, language_space
from autorag_hp.rag.pipeline import RAGPipeline
from autorag_hp.rag.prompts import render
from autorag_hp.types import Context

ZH_DOCS = [
    Document("list.md", "列表是可变的序列类型。你可以在原地添加、删除或修改列表中的元素。"),
    Document("tuple.md", "元组是不可变的序列。元组创建以后就不能修改，所以它可以作为字典的键。"),
    Document("dict.md", "字典把键映射到值。查找一个键的平均时间复杂度是常数时间。"),
    Document("gil.md", "全局解释器锁让同一时刻只有一个线程执行 Python 字节码。多进程可以绕过这个限制。"),
]
ZH_QA = [("哪种序列创建以后就不能修改？", "元组", "tuple.md"), ("什么把键映射到值？", "字典", "dict.md"),
         ("哪种序列可以在原地修改？", "列表", "list.md"), ("什么让同一时刻只有一个线程执行字节码？", "全局解释器锁", "gil.md")]
SPACE = {"retrieval": {"top_k": [1, 3], "embedding": ["bm25", "minilm"]},
         "generation": {"prompt": ["concise", "cite"], "temperature": [0.0, 0.7]}}


@pytest.fixture
def two_threads(monkeypatch):
    monkeypatch.setenv("AUTORAG_HP_THREADS", "2")  # e5 embeds with 2 threads: the machine is shared


def zh_pipeline(tmp_path, generator="local", space=SPACE) -> RAGPipeline:
    return RAGPipeline(ZH_DOCS, generator=generator, space=space, cache_dir=tmp_path, progress=False,
                       defaults={"chunk_size": 128, "embedding": "minilm"})


def test_cjk_share_and_language():
    assert cjk_share("Debian 操作系统") == pytest.approx(4 / 10)
    assert cjk_share("1234 !!") == 0.0 and cjk_share("列表") == 1.0
    assert language("什么是列表？") == "zh" and language("Debian 是一个自由的操作系统，由志愿者维护。") == "zh"
    # an English question naming one Chinese word is English: 2 CJK of 20 letters
    assert language("How do I use 列表 in Python?") == "en" and language("How do I copy a file?") == "en"
    assert corpus_share(d.text for d in ZH_DOCS) > 0.9 and corpus_share([]) == 0.0
    from autorag_hp.rag import load_bundled_corpus

    assert corpus_share(d.text for d in load_bundled_corpus("python_docs_faq")) == 0.0
    # the corpus rule is the one-text rule on the pooled share, at the same threshold
    assert corpus_language(["Debian 操作系统"]) == ("zh", pytest.approx(0.4))
    assert corpus_language(["How do I use 列表 in Python?"])[0] == "en" and corpus_language([]) == ("en", 0.0)


def test_a_space_written_for_chinese_is_kept_as_written():
    mine = {"retrieval": {"top_k": [1, 3], "embedding": ["bm25", "e5"]}}
    assert language_space(mine, "zh") == (mine, "")  # no English-only arm: nothing added, nothing said


def test_language_space_for_chinese():
    spec, note = language_space(SPACE, "zh")
    assert spec["retrieval"]["embedding"] == ["e5", "bm25", "hybrid"] and spec["generation"] == SPACE["generation"]
    assert "left out minilm (English-only)" in note and "added e5, hybrid (hybrid = e5 + BM25)" in note
    assert language_space(SPACE, "en") == (SPACE, "")
    # hybrid with an English-only dense half is English-only too
    spec, _ = language_space({"embedding": ["bm25", "hybrid", "mpnet"]}, "zh", hybrid_dense="minilm")
    assert spec == {"embedding": ["e5", "bm25"]}
    assert language_space({"top_k": [1, 3]}, "zh") == ({"top_k": [1, 3]}, "")  # embedding not tuned: unchanged
    assert language_space({"embedding": ["e5", "bm25", "hybrid"]}, "zh")[1] == ""  # already right: no notice


def test_default_space_of_a_chinese_corpus_leaves_english_embeddings_out(tmp_path):
    notes: list[str] = []
    space, fixed = tuned_space(None, None, zh_pipeline(tmp_path), notify=notes.append)
    assert space["embedding"].values == ("e5", "bm25", "hybrid") and space.size == 2 * 3 * 2 * 2 and fixed == {}
    assert len(notes) == 1 and "the corpus is Chinese (95% of its letters CJK)" in notes[0]
    assert "left out minilm (English-only)" in notes[0]
    # a space the user gives is kept as given, with a warning about the English-only embedding in it
    notes.clear()
    space, _ = tuned_space({"embedding": ["bm25", "minilm"]}, None, zh_pipeline(tmp_path), notify=notes.append)
    assert space["embedding"].values == ("bm25", "minilm")
    assert len(notes) == 1 and "embedding minilm is English-only" in notes[0] and "--set embedding=e5" in notes[0]
    notes.clear()  # so is an English-only default when the space does not tune the embedding
    tuned_space({"top_k": [1, 3]}, None, zh_pipeline(tmp_path), notify=notes.append)
    assert len(notes) == 1 and "embedding minilm is English-only" in notes[0]


def test_english_corpus_keeps_its_space(tmp_path):
    from autorag_hp.rag import load_pipeline

    pipe = load_pipeline("python_docs_faq", cache_dir=tmp_path)  # local generator: every arm matters
    notes: list[str] = []
    space, fixed = tuned_space(None, None, pipe, notify=notes.append)
    assert space.to_dict() == pipe.space.to_dict() and space.size == 162 and notes == [] and fixed == {}


def test_the_extractive_generator_drops_prompt_and_temperature(tmp_path):
    from autorag_hp.rag import load_pipeline

    pipe = load_pipeline("python_docs_faq", generator="extractive", cache_dir=tmp_path)
    assert generator_ignores(pipe) == ("prompt", "temperature")
    assert generator_ignores(load_pipeline("python_docs_faq", generator={"type": "extractive"})) == (
        "prompt", "temperature")
    assert generator_ignores(load_pipeline("python_docs_faq", generator={"type": "local"})) == ()
    notes: list[str] = []
    space, _ = tuned_space(None, None, pipe, notify=notes.append)
    assert space.names == ["chunk_size", "top_k", "embedding"] and space.size == 27
    assert notes == ["note: the extractive generator ignores prompt and temperature: left out of the search space "
                     "(162 -> 27 configurations)"]
    # a --space that tunes only what the generator ignores leaves nothing: a clear error
    from autorag_hp.errors import InvalidSpaceError

    with pytest.raises(InvalidSpaceError, match=r"the generator ignores prompt, every parameter.*nothing is left to tune"):
        tuned_space({"prompt": ["concise", "cite"]}, None, pipe, notify=notes.append)
    # and a generator object may declare what it ignores

    class Echo:
        ignores = ("temperature",)

        def generate(self, messages, sampling=None, **kw):  # pragma: no cover - never called here
            raise AssertionError

    assert generator_ignores(RAGPipeline(ZH_DOCS, generator=Echo(), cache_dir=tmp_path)) == ("temperature",)


def test_chinese_and_extractive_together(tmp_path):
    notes: list[str] = []
    space, _ = tuned_space(None, None, zh_pipeline(tmp_path, generator="extractive"), notify=notes.append)
    assert space.to_dict() == {"retrieval": {"top_k": [1, 3], "embedding": ["e5", "bm25", "hybrid"]}}
    assert len(notes) == 2 and "(16 -> 6 configurations)" in notes[1]


def test_prompts_answer_in_the_question_language():
    ctx = [Context("a.md", "列表是可变的序列。")]
    zh = render("concise", "什么是列表？", ctx)
    assert "请用中文回答" in zh[0]["content"] and "问题: 什么是列表？" in zh[1]["content"]
    en = render("cite", "How do I use 列表 in Python?", ctx)
    assert en[0]["content"].endswith("Answer in English.") and "Question: How do I use" in en[1]["content"]


def test_grid_fits_the_default_space(tmp_path, two_threads):
    from autorag_hp.evaluation.grid import run_grid
    from autorag_hp.types import QAItem

    pipe = RAGPipeline(ZH_DOCS, generator="extractive", cache_dir=tmp_path / "c", progress=False,
                       questions=[QAItem(q, answer=a, sources=(s,)) for q, a, s in ZH_QA],
                       space={"top_k": [1, 2], "embedding": ["bm25", "minilm"], "prompt": ["concise", "cite"]},
                       defaults={"chunk_size": 128})
    logged: list[str] = []
    s = run_grid(pipe, tmp_path / "g.sqlite", questions=2, metrics=["token_f1", "mrr"], progress=False,
                 log=logged.append)
    assert s["rows"] == 2 * 3 * 2  # top_k x (e5, bm25, hybrid) x 2 questions: no minilm, no prompt arm
    assert any("left out minilm" in m for m in logged) and any("ignores prompt" in m for m in logged)


def test_tune_on_a_chinese_corpus(tmp_path, capsys, two_threads):
    """``tune --corpus zh.jsonl --qa zh_qa.jsonl --generator extractive`` on the bundled spec's default space: the
    space tuned is the Chinese one without prompt or temperature, and the user is told both."""
    from autorag_hp.cli import main

    corpus, qa = tmp_path / "zh.jsonl", tmp_path / "zh_qa.jsonl"
    corpus.write_text("".join(json.dumps({"id": d.id, "text": d.text}, ensure_ascii=False) + "\n" for d in ZH_DOCS))
    qa.write_text("".join(json.dumps({"question": q, "answer": a, "sources": [s]}, ensure_ascii=False) + "\n"
                          for q, a, s in ZH_QA))
    rc = main(["tune", "--corpus", str(corpus), "--qa", str(qa), "--generator", "extractive", "--questions", "6",
               "--set", "chunk_size=128", "--cache-dir", str(tmp_path / "cache"), "--no-progress", "--json"])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    assert "the corpus is Chinese" in captured.err and "left out minilm (English-only)" in captured.err
    assert "the extractive generator ignores prompt and temperature" in captured.err
    summary = json.loads(captured.out)
    assert summary["questions"] == 6 and summary["configurations_in_space"] == 9  # top_k x (e5, bm25, hybrid)
    assert {b["config"]["embedding"] for b in summary["best"]} <= {"e5", "bm25", "hybrid"}
