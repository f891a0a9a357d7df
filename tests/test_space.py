import json
import subprocess
import sys

import pytest

from autorag_hp import Config, InvalidConfigError, InvalidSpaceError, SearchSpace

SPEC = {
    "retrieval": {"chunk_size": [256, 512, 1024], "top_k": [1, 3, 5, 7, 9], "embedding": ["bm25", "minilm", "e5"]},
    "generation": {"temperature": [0.0, 0.7], "prompt": ["concise", "cite", "stepwise"]},
}


def test_grouped_space_shape_and_order():
    space = SearchSpace(SPEC)
    assert space.size == 3 * 5 * 3 * 2 * 3
    assert space.names == ["chunk_size", "top_k", "embedding", "temperature", "prompt"]
    assert space["top_k"].group == "retrieval"
    configs = list(space.configs())
    assert len(configs) == len(set(configs)) == space.size
    assert all(space.index(c) == i for i, c in enumerate(configs))
    assert space.to_dict() == SPEC


def test_config_id_is_stable_across_processes_and_roundtrips():
    cfg = SearchSpace(SPEC).config({"chunk_size": 512, "top_k": 3, "embedding": "e5", "temperature": 0.7, "prompt": "cite"})
    code = (
        "from autorag_hp import Config; import json;"
        "print(Config({'prompt': 'cite', 'temperature': 0.7, 'embedding': 'e5', 'top_k': 3, 'chunk_size': 512}).id)"
    )
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                           env={"PYTHONHASHSEED": "123", "PATH": ""}).stdout.strip()
    assert other == cfg.id
    assert Config.from_json(cfg.to_json()) == cfg
    assert json.loads(cfg.to_json()) == dict(cfg)
    assert hash(Config.from_json(cfg.to_json())) == hash(cfg)
    assert {cfg: 1}[Config(dict(cfg))] == 1


def test_type_exact_values():
    assert Config({"k": 1}) != Config({"k": 1.0})
    assert Config({"k": 1}) != Config({"k": True})
    space = SearchSpace({"k": [1, 2]})
    with pytest.raises(InvalidConfigError, match="not allowed"):
        space.config({"k": 1.0})


def test_from_yaml_and_json(tmp_path):
    import yaml

    (tmp_path / "s.yaml").write_text(yaml.safe_dump({"space": SPEC}))
    (tmp_path / "s.json").write_text(json.dumps(SPEC))
    assert SearchSpace.from_file(tmp_path / "s.yaml") == SearchSpace(SPEC) == SearchSpace.from_file(tmp_path / "s.json")


@pytest.mark.parametrize(
    "spec, match",
    [
        ({}, "empty"),
        ({"k": []}, "no values"),
        ({"k": [1, 1]}, "more than once"),
        ({"g": {}}, "group 'g' is empty"),
        ({"a": {"k": [1]}, "b": {"k": [2]}}, "unique"),
        ({"k": "abc"}, "list of values"),
        ({"k": [float("nan")]}, "not finite"),
        ({"k": [[1, 2]]}, "must be strings, numbers"),
    ],
)
def test_bad_spaces_are_rejected_clearly(spec, match):
    with pytest.raises(InvalidSpaceError, match=match):
        SearchSpace(spec)


def test_bad_configs_name_the_problem():
    space = SearchSpace(SPEC)
    good = {"chunk_size": 512, "top_k": 3, "embedding": "e5", "temperature": 0.7, "prompt": "cite"}
    with pytest.raises(InvalidConfigError, match="unknown parameter"):
        space.config({**good, "nope": 1})
    with pytest.raises(InvalidConfigError, match="missing"):
        space.config({k: v for k, v in good.items() if k != "top_k"})
    with pytest.raises(InvalidConfigError, match="top_k"):
        space.config({**good, "top_k": 4})
    with pytest.raises(InvalidConfigError, match="mapping"):
        space.config([1, 2])  # type: ignore[arg-type]
    with pytest.raises(FileNotFoundError):
        SearchSpace.from_file("/nonexistent/space.yaml")
