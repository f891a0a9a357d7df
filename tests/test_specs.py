"""The bundled specs ship in the package and are found by name; file paths keep working (cwd first)."""

from __future__ import annotations

import pytest

from autorag_hp.rag import load_pipeline
from autorag_hp.rag.errors import PipelineSpecError
from autorag_hp.specs import FOLDERS, SpecNotFoundError, bundled, resolve


def test_bundled_names_live_inside_the_package():
    assert bundled("pipeline") == ["debian_reference_zh", "demo", "python_docs", "python_docs_faq"]
    assert "python_docs_w0.5" in bundled("reward")
    for kind in ("pipeline", "reward"):
        assert FOLDERS[kind].is_relative_to(FOLDERS["pipeline"].parents[1])  # autorag_hp/specs/...
    assert resolve("python_docs_faq", "pipeline") == FOLDERS["pipeline"] / "python_docs_faq.yaml"
    assert resolve("python_docs_faq.yaml", "pipeline") == FOLDERS["pipeline"] / "python_docs_faq.yaml"
    assert resolve("python_docs_w0.5", "reward").name == "python_docs_w0.5.yaml"


def test_pipelines_load_by_name_from_any_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    pipe = load_pipeline("python_docs_faq", generator="extractive", cache_dir=tmp_path)
    assert pipe.name == "python_docs_faq" and len(pipe.questions()) == 175
    assert load_pipeline("demo", generator="extractive", cache_dir=tmp_path).space.size == 48
    zh = load_pipeline("debian_reference_zh", cache_dir=tmp_path)  # its data paths are relative to the spec
    assert len(zh.docs) == 426 and len(zh.questions()) >= 100


def test_a_file_in_the_working_directory_wins_then_a_base_folder_then_the_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "python_docs_faq").write_text("name: mine\n")
    assert resolve("python_docs_faq", "pipeline").resolve() == tmp_path / "python_docs_faq"
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "r.yaml").write_text("type: thumbs\n")
    assert resolve("r.yaml", "reward", base=tmp_path / "sub") == tmp_path / "sub" / "r.yaml"
    assert resolve(tmp_path / "sub" / "r.yaml", "reward") == tmp_path / "sub" / "r.yaml"


def test_an_unknown_name_lists_the_bundled_ones():
    with pytest.raises(SpecNotFoundError, match="bundled pipelines: debian_reference_zh, demo, python_docs, python_docs_faq"):
        resolve("python_doc", "pipeline")
    # the old top-level folder is gone; a path with a folder is never taken for a name
    with pytest.raises(PipelineSpecError, match="'pipelines/python_docs.yaml' is neither a file nor a bundled"):
        load_pipeline("pipelines/python_docs.yaml")
    with pytest.raises(ValueError, match="unknown spec kind"):
        bundled("suite")
