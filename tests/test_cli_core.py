import json
import subprocess
import sys
import time

from autorag_hp import Tuner
from autorag_hp.cli import main

SPEC = {"top_k": [1, 3, 5], "prompt": ["a", "b"]}


def test_help_is_fast_and_lists_commands():
    start = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "autorag_hp.cli", "--help"], capture_output=True, text=True, check=True)
    assert time.perf_counter() - start < 5
    for cmd in ("demo", "bench-engine", "export", "import"):
        assert cmd in out.stdout
    heavy = subprocess.run(
        [sys.executable, "-c", "import sys, autorag_hp.cli, autorag_hp; print(sorted(m for m in ('torch','transformers','ragas','sentence_transformers') if m in sys.modules))"],
        capture_output=True, text=True, check=True,
    )
    assert heavy.stdout.strip() == "[]"


def test_version_comes_from_the_package_metadata_without_heavy_imports():
    from importlib.metadata import version

    code = ("import sys; from autorag_hp.cli import main\ntry:\n    main(['--version'])\nexcept SystemExit:\n    pass\n"
            "print(sorted(m for m in ('torch', 'transformers', 'sentence_transformers', 'yaml') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split("\n")
    assert out[0] == f"autorag-hp {version('autorag-hp')}" and out[1] == "[]"


def test_export_then_import_via_cli(tmp_path, capsys):
    src = f"sqlite:///{tmp_path / 'a.db'}"
    tuner = Tuner(SPEC, storage=src, seed=0)
    for i in range(7):
        tuner.report(tuner.suggest().id, i / 10)
    tuner.close()
    log = tmp_path / "log.jsonl"
    assert main(["export", "--storage", src, "--file", str(log)]) == 0
    lines = log.read_text().splitlines()
    assert len(lines) == 14 and json.loads(lines[0])["kind"] == "suggest"
    space = tmp_path / "space.json"
    space.write_text(json.dumps(SPEC))
    dst = f"sqlite:///{tmp_path / 'b.db'}"
    assert main(["import", "--storage", dst, "--file", str(log), "--space", str(space)]) == 0
    assert [r.mean for r in Tuner(SPEC, storage=dst).best(3)] == [r.mean for r in Tuner(SPEC, storage=src).best(3)]
    # importing twice is refused and changes nothing
    assert main(["import", "--storage", dst, "--file", str(log)]) == 2
    assert "nothing was imported" in capsys.readouterr().err
    assert sum(r.count for r in Tuner(SPEC, storage=dst).best(10)) == 7


def test_import_rejects_malformed_lines(tmp_path, capsys):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"seq": 1, "kind": "nope", "trial_id": "x", "config": {}, "time": 1}\n')
    assert main(["import", "--storage", f"sqlite:///{tmp_path / 'c.db'}", "--file", str(bad)]) == 2
    assert "unknown event kind" in capsys.readouterr().err
    assert main(["export", "--storage", f"sqlite:///{tmp_path / 'c.db'}", "--study", "missing"]) == 2


def test_demo_runs(capsys):
    assert main(["demo", "--synthetic", "--seeds", "1", "--policies", "random,hier_ucb"]) == 0
    out = capsys.readouterr().out
    assert "hier_ucb" in out and "Recall@5" in out
