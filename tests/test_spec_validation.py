"""No silent mistakes in a user's pipeline YAML or data: each one fails (or warns) with a message that names the
problem and the fix (issue 16 §5)."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest

from autorag_hp.rag import load_pipeline
from autorag_hp.rag.data import load_corpus, load_questions
from autorag_hp.rag.data_refs import check_gold_sources, resolve_data_path
from autorag_hp.rag.errors import CorpusError, PipelineSpecError
from autorag_hp.specs import FOLDERS, SpecNotFoundError, bundled, resolve
from autorag_hp.specs.schema import local_generator_keys, validate_pipeline_spec
from autorag_hp.types import QAItem

ROOT = Path(__file__).resolve().parents[1]


def _docs(folder: Path) -> Path:
    (folder / "guide").mkdir(parents=True)
    (folder / "guide" / "install.md").write_text("Install the package with pip install autorag-hp.\n")
    (folder / "usage.md").write_text("Run autorag-hp tune to tune a pipeline on your documents.\n")
    return folder


def _qa(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _spec(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


@pytest.mark.parametrize(("yaml_text", "match"), [
    ("corpus: docs\ngenerator: {type: local, max_tokens: 10}\n",
     r"generator\.max_tokens: unknown key; max_tokens is a pipeline config key: put it under defaults: "
     r"\(as max_new_tokens\); allowed here: type, model"),
    ("corpus: docs\ngenerator: {type: local, quantise: int8}\n", r"generator\.quantise: unknown key; did you mean 'quantize'"),
    ("corpus: docs\ngenerator: {type: extractive, threads: 2}\n",
     r"generator\.threads: unknown key; this generator takes no options"),
    ("corpus: docs\ngenerator: gpt4\n", r"generator\.type: unknown generator 'gpt4'; use one of extractive, local"),
    ("corpus: docs\nspaces: {top_k: [1, 3]}\n", r"spaces: unknown key; did you mean 'space'\?; allowed here: name"),
    ("corpus: {bundle: python_docs_faq}\n", r"corpus\.bundle: unknown key; did you mean 'bundled'"),
    ("corpus: {bundled: a, path: b}\n", r"corpus: give exactly one of \{bundled: NAME\} or \{path: PATH\}"),
    ("corpus: docs\nretrieval: {hybrid_dens: e5}\n", r"retrieval\.hybrid_dens: unknown key; did you mean 'hybrid_dense'"),
    ("corpus: docs\nlimits: {max_question_char: 10}\n", r"limits\.max_question_char: unknown key; did you mean"),
    ("corpus: docs\nlimits: {max_question_chars: 0}\n", r"limits\.max_question_chars: input should be greater"),
    ("corpus: docs\ndefaults: {top_kk: 3}\n", r"defaults\.top_kk: unknown key; did you mean 'top_k'\?; allowed here: "
                                              r"chunk_size, chunk_overlap, embedding, top_k"),
    ("corpus: docs\ntemperature: 0.3\n", r"temperature: unknown key; temperature is a pipeline config key: put it "
                                         r"under defaults: or space:"),
])
def test_unknown_or_misspelled_keys_at_every_level_name_the_key_and_the_fix(tmp_path, yaml_text, match):
    spec = _spec(tmp_path / "mine.yaml", yaml_text)
    with pytest.raises(PipelineSpecError, match=match) as exc:
        load_pipeline(spec)
    assert str(exc.value).startswith(str(spec))  # the file is named


def test_every_error_of_a_spec_is_reported_at_once():
    with pytest.raises(PipelineSpecError) as exc:
        validate_pipeline_spec({"corpus": "d", "defaults": {"topk": 1}, "generator": {"type": "local", "thread": 1}})
    assert "defaults.topk" in str(exc.value) and "generator.thread" in str(exc.value)


def test_bundled_and_committed_specs_validate():
    for name in bundled("pipeline"):
        validate_pipeline_spec(__import__("yaml").safe_load(resolve(name, "pipeline").read_text()), name)
    for path in sorted((ROOT / "eval" / "suites").glob("*.yaml")):
        validate_pipeline_spec(__import__("yaml").safe_load(path.read_text()), str(path))
    # the local generator's options come from LocalGenerator and AccelerationOptions themselves
    assert {"model", "threads", "quantize", "dtype", "cache_dir"} <= set(local_generator_keys())


def test_gold_sources_that_match_no_document_fail_with_near_matches(tmp_path, monkeypatch):
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")  # the spec's relative paths are found beside it, whatever the cwd holds
    docs = load_corpus(_docs(tmp_path / "docs"))
    good = QAItem("How do I install it?", None, ("guide/install.md",), "q1")
    check_gold_sources([good], docs)
    typo = QAItem("How do I install it?", None, ("guide/instal.md",), "q2")
    no_folder = QAItem("How do I install it?", None, ("install.md",), "q3")
    with pytest.raises(CorpusError, match=r"2 gold source\(s\) in the questions match no document of the corpus "
                                          r"\(2 documents\): 'q2': 'guide/instal.md' \(near: 'guide/install.md'\); "
                                          r"'q3': 'install.md' \(near: 'guide/install.md'\)\. A source is a document id"):
        check_gold_sources([good, typo, no_folder], docs)
    qa = _qa(tmp_path / "qa.jsonl", [{"question": "How do I install it?", "sources": ["instal.md"]}])
    spec = _spec(tmp_path / "p.yaml", "corpus: docs\nquestions: qa.jsonl\ngenerator: extractive\n")
    with pytest.raises(CorpusError, match=r"'instal.md' \(near: 'guide/install.md'\)"):
        load_pipeline(spec, cache_dir=tmp_path / "cache")
    assert qa.exists()


def test_a_relative_path_found_in_the_working_directory_and_beside_the_spec_warns(tmp_path, monkeypatch):
    here, spec_dir = tmp_path / "here", tmp_path / "specs"
    _docs(here / "docs"), _docs(spec_dir / "docs")
    monkeypatch.chdir(here)
    with pytest.warns(UserWarning, match=r"corpus 'docs' exists both in the working directory .* and beside the "
                                         r"pipeline spec .*; using the working directory's"):
        assert resolve_data_path("docs", spec_dir).resolve() == (here / "docs").resolve()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # one place only: no warning
        assert resolve_data_path("docs", here) == Path("docs")
        assert resolve_data_path("docs/usage.md", tmp_path / "nowhere") == Path("docs/usage.md")


def test_a_misspelled_qa_key_names_the_key_it_resembles_and_other_keys_warn(tmp_path):
    bad = _qa(tmp_path / "qa.jsonl", [{"question": "q?", "answer": "a"}, {"question": "q2?", "anwser": "a"}])
    with pytest.raises(CorpusError, match=r"qa.jsonl:2: unknown key 'anwser'; did you mean 'answer'\? A question line "
                                          r"has the keys question, answer, sources, id"):
        load_questions(bad)
    for key, near in (("source", "sources"), ("questions", "question"), ("ID", None)):
        path = _qa(tmp_path / f"{key}.jsonl", [{"question": "q?", key: "x"}])
        if near:
            with pytest.raises(CorpusError, match=f"did you mean '{near}'"):
                load_questions(path)
    extra = _qa(tmp_path / "extra.jsonl", [{"question": "q?", "answer": "a", "category": "setup"}])
    with pytest.warns(UserWarning, match=r"ignoring unknown key\(s\) 'category' \(line 1\)"):
        assert load_questions(extra)[0].answer == "a"
    corpus = _qa(tmp_path / "corpus.jsonl", [{"id": "a", "txt": "hello"}])
    with pytest.raises(CorpusError, match=r"needs a string field 'text' \(found 'txt': rename it to 'text'\)"):
        load_corpus(corpus)


def test_relative_paths_are_looked_up_in_the_working_directory_first_then_beside_the_spec(tmp_path, monkeypatch):
    work, specs = tmp_path / "work", tmp_path / "specs"
    work.mkdir()
    specs.mkdir()
    _docs(work / "mydocs")
    _docs(specs / "beside")
    monkeypatch.chdir(work)
    assert resolve_data_path("mydocs", specs) == Path("mydocs")
    assert resolve_data_path("beside", specs) == specs / "beside"
    with pytest.raises(CorpusError) as exc:
        resolve_data_path("mydcs", specs)
    msg = str(exc.value)
    assert f"corpus 'mydcs' does not exist: looked in the working directory and beside the pipeline spec " \
           f"('{work / 'mydcs'}' and '{specs / 'mydcs'}')" in msg
    # the CLI's --corpus is found in the working directory even with a bundled spec (whose folder is elsewhere)
    pipe = load_pipeline("python_docs_faq", corpus="mydocs", generator="extractive",
                         cache_dir=tmp_path / "cache")
    assert len(pipe.docs) == 2
    with pytest.raises(CorpusError, match=rf"looked in the working directory and beside the pipeline spec "
                                          rf"\('{work / 'mydcs'}' and '{FOLDERS['pipeline'] / 'mydcs'}'\)"):
        load_pipeline("python_docs_faq", corpus="mydcs", generator="extractive", cache_dir=tmp_path / "cache")
    # and a spec file that is missing names both places too
    with pytest.raises(SpecNotFoundError, match=rf"looked for the file at '{work / 'nope.yaml'}' and "
                                                rf"'{specs / 'nope.yaml'}'"):
        resolve("nope.yaml", "reward", base=specs)


def test_a_pipeline_on_your_own_corpus_is_named_after_it(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _docs(tmp_path / "mydocs")
    pipe = load_pipeline("python_docs_faq", corpus="mydocs/", generator="extractive", cache_dir=tmp_path / "cache")
    assert pipe.name == "mydocs (python_docs_faq settings)"
    assert "python_docs on" not in pipe.name
    jsonl = _qa(tmp_path / "corpus.jsonl", [{"id": "a", "text": "hello"}])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert load_pipeline("demo", corpus=str(jsonl), generator="extractive",
                             cache_dir=tmp_path / "cache").name == "corpus (python_docs_demo settings)"


def test_a_generator_override_is_checked_like_the_yaml(tmp_path):
    spec = _spec(tmp_path / "p.yaml", "corpus: docs\ngenerator: extractive\n")
    with pytest.raises(PipelineSpecError, match=r"^the generator override \(--generator\): generator\.max_tokens: "
                                                r"unknown key"):
        load_pipeline(spec, generator={"type": "local", "max_tokens": 10})
    with pytest.raises(PipelineSpecError, match="unknown generator 'extractiv'"):
        load_pipeline(spec, generator="extractiv")
