"""The command line is consistent and starts fast: one spelling per option across commands (old spellings warn),
``--version``, ``grid``'s Optuna database named for what it is, and nothing heavy imported to show ``--help``."""

from __future__ import annotations

import argparse
import importlib
import json
import subprocess
import sys

import pytest

from autorag_hp.cli import COMMANDS, build_parser, main
from autorag_hp.commands.options import RENAMED

LOADTEST = {"loadtest"}  # owned elsewhere; still checked for the import cost


def _parser(name: str) -> argparse.ArgumentParser:
    module = importlib.import_module(COMMANDS[name][0])
    p = argparse.ArgumentParser(prog=f"autorag-hp {name}")
    add = getattr(module, f"add_{name.replace('-', '_')}_arguments", None) or module.add_arguments
    add(p)
    return p


def _visible_options(p: argparse.ArgumentParser) -> set[str]:
    return {s for a in p._actions if a.help is not argparse.SUPPRESS for s in a.option_strings}


def test_help_imports_nothing_heavy():
    """``import autorag_hp.cli`` + the parsers of every command load no numpy, torch, yaml or pydantic."""
    code = (
        "import argparse, importlib, json, sys\n"
        "import autorag_hp.cli as cli\n"
        "cli.build_parser()\n"
        "top = sorted(m for m in ('numpy', 'torch', 'yaml', 'pydantic') if m in sys.modules)\n"
        "for name, (mod, _) in cli.COMMANDS.items():\n"
        "    m = importlib.import_module(mod)\n"
        "    add = getattr(m, 'add_' + name.replace('-', '_') + '_arguments', None) or m.add_arguments\n"
        "    add(argparse.ArgumentParser())\n"
        "sub = sorted(m for m in ('numpy', 'torch') if m in sys.modules)\n"
        "print(json.dumps([top, sub]))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    top, sub = json.loads(out)
    assert top == [], f"autorag-hp --help imports {top}: import them inside the functions that need them"
    assert sub == [], f"a command's parser imports {sub}"


def test_version(capsys):
    from autorag_hp import version

    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.strip() == f"autorag-hp {version()}"
    import autorag_hp

    assert autorag_hp.__version__ == version() != ""


def test_one_spelling_per_option():
    """No command shows a deprecated spelling; every command that batches spells it --batch-size."""
    for name in COMMANDS:
        visible = _visible_options(_parser(name))
        assert not visible & set(RENAMED), f"{name} shows deprecated options {sorted(visible & set(RENAMED))}"
    for name in ("tune", "serve", "demo", "bench"):
        assert "--batch-size" in _visible_options(_parser(name)), name
    assert "--set" in _visible_options(_parser("bench"))


@pytest.mark.parametrize(("command", "old", "new", "dest", "expected"), [
    ("demo", ["--batch", "3"], ["--batch-size", "3"], "batch_size", 3),
    ("bench", ["--synthetic", "--batch", "2"], ["--synthetic", "--batch-size", "2"], "batch_size", 2),
    ("bench", ["--synthetic", "--fix", "top_k=3", "--fix", "prompt=cite"],
     ["--synthetic", "--set", "top_k=3", "--set", "prompt=cite"], "fixed", ["top_k=3", "prompt=cite"]),
    ("grid", ["--storage", "sqlite:///o.db"], ["--optuna-storage", "sqlite:///o.db"], "optuna_storage",
     "sqlite:///o.db"),
    ("grid", ["--study", "s"], ["--optuna-study", "s"], "optuna_study", "s"),
    ("grid", ["--table", "t"], ["--table-name", "t"], "table_name", "t"),
    ("grid", ["--ws", "0.5"], ["--w", "0.5"], "w", "0.5"),
])
def test_deprecated_alias_sets_the_same_value_and_warns(capsys, command, old, new, dest, expected):
    p = _parser(command)
    assert getattr(p.parse_args(new), dest) == expected
    assert "deprecated" not in capsys.readouterr().err
    assert getattr(p.parse_args(old), dest) == expected
    err = capsys.readouterr().err
    flag = old[1] if old[0] == "--synthetic" else old[0]
    assert f"{flag} is deprecated; use {new[old.index(flag)]}" in err


def test_grid_names_its_optuna_database():
    p = _parser("grid")
    visible = _visible_options(p)
    assert "--optuna-storage" in visible and "--storage" not in visible and "--study" not in visible
    defaults = p.parse_args([])
    assert defaults.optuna_storage is None and defaults.table_name == "grid" and defaults.w == "0.1,0.5,0.9"


def test_top_level_help_lists_every_command(capsys):
    assert main([]) == 2
    out = capsys.readouterr().out
    assert all(name in out for name in COMMANDS)
    assert "--version" in build_parser().format_help()
