"""A built wheel works without the checkout or the Makefile: it carries its specs and data, and `autorag-hp`
runs from a directory outside the repository.

The wheel is built offline from a copy of the sources (``pip wheel --no-deps --no-build-isolation``: the
setuptools of this venv, no network) and installed with ``--no-deps`` into a fresh venv. The heavy packages
(torch, faiss, langchain, ...) come from this test venv: a ``.pth`` line adds its site-packages *after* the new
venv's own. (``venv --system-site-packages`` would expose the base interpreter's site-packages, not this
venv's.) A plain path line in a ``.pth`` does not run the ``.pth`` files of the folder it adds, so the editable
install of the checkout in this venv (an import hook started from its own ``.pth``) stays out, and the test
checks that ``autorag_hp`` is imported from the new venv.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _run(cmd, **kw):
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300, **kw)
    assert r.returncode == 0, f"{cmd} failed ({r.returncode}):\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    return r


def test_the_wheel_runs_tune_from_outside_the_checkout(tmp_path):
    pytest.importorskip("setuptools", reason="building a wheel offline needs setuptools in this venv")
    src = tmp_path / "src"  # a clean copy: no stale build/ folder or caches of the checkout end up in the wheel
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, src / name)
    shutil.copytree(ROOT / "autorag_hp", src / "autorag_hp",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info"))
    dist = tmp_path / "dist"
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-q",
          "-w", str(dist), str(src)])
    (wheel,) = dist.glob("autorag_hp-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for f in ("autorag_hp/specs/pipelines/python_docs_faq.yaml", "autorag_hp/specs/pipelines/demo.yaml",
              "autorag_hp/specs/rewards/python_docs_w0.5.yaml", "autorag_hp/data/python_docs.corpus.jsonl.gz",
              "autorag_hp/service/static/dashboard.html"):
        assert f in names, f"{f} is not in the wheel"

    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)])
    py = venv / "bin" / "python"
    site = Path(_run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]).stdout.strip())
    ours = dict.fromkeys([sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]])
    (site / "_autorag_hp_test_base.pth").write_text("".join(p + "\n" for p in ours))
    _run([sys.executable, "-m", "pip", "--python", str(py), "install", "--no-deps", "--no-index", "-q", str(wheel)])

    work = tmp_path / "elsewhere"  # not the checkout: nothing can be found relative to it
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    env.update(AUTORAG_HP_CACHE=str(tmp_path / "cache"), PYTHONNOUSERSITE="1", OMP_NUM_THREADS="2")
    where = _run([str(py), "-c", "import autorag_hp; print(autorag_hp.__file__)"], cwd=work, env=env).stdout
    assert Path(where.strip()).is_relative_to(venv), f"autorag_hp came from {where.strip()}, not the wheel"
    exe = str(venv / "bin" / "autorag-hp")
    from importlib.metadata import version

    assert _run([exe, "--version"], cwd=work, env=env).stdout.strip() == f"autorag-hp {version('autorag-hp')}"
    # BM25 only: the FAQ slice's dense indexes would take minutes to embed on 2 cores
    out = _run([exe, "tune", "--pipeline", "python_docs_faq", "--generator", "extractive", "--questions", "4",
                "--set", "embedding=bm25", "--reward", "python_docs_w0.5", "--no-progress"], cwd=work, env=env).stdout
    assert "Tuned 'python_docs_faq' with hier_ucb on 4 questions (of 175 available)" in out, out
    assert "(fixed: embedding=bm25)" in out and '"type": "paper"' in out
