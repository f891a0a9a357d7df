"""The house rules the code layout keeps (issue 14): no module reads another module's private names, and a
file stays under 400 lines unless it is one concept (named below with the reason)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "autorag_hp"

# Underscore names that are public API of a third-party library or of Python itself.
FOREIGN = {
    "_replace", "_asdict", "_fields", "_make",  # namedtuple's documented API
    "_int_mm", "_weight_int8pack_mm",  # torch's int8 matmul kernels (no public name exists)
    "_ArgumentGroup",  # argparse's argument-group type (annotated only)
}

# Files allowed over 400 lines, each one concept.
LONG_FILES: dict[str, str] = {}


def _own_names(src: str) -> set[str]:
    """Underscore names the module defines itself (attributes of its own classes, functions, globals)."""
    own = set(re.findall(r"(?:self|cls)\.(_[A-Za-z]\w*)\s*(?::[^=\n]*)?=", src))
    own |= set(re.findall(r"^\s*(?:async\s+)?def (_[A-Za-z]\w*)", src, re.M))
    own |= set(re.findall(r"^\s*(_[A-Za-z]\w*)\s*(?::[^=\n]*)?=", src, re.M))
    own |= set(re.findall(r"^\s*class (_[A-Za-z]\w*)", src, re.M))
    for slots in re.findall(r"__slots__\s*=\s*\(([^)]*)\)", src):
        own |= set(re.findall(r"[\"'](_\w+)[\"']", slots))
    return own


def private_reads(root: Path = PACKAGE) -> list[str]:
    found = []
    for path in sorted(root.rglob("*.py")):
        src = path.read_text(encoding="utf-8")
        own = _own_names(src)
        for node in ast.walk(ast.parse(src)):
            if isinstance(node, ast.Attribute):
                name = node.attr
                if not name.startswith("_") or name.startswith("__") or name in FOREIGN or name in own:
                    continue
                if isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"):
                    continue
                found.append(f"{path.relative_to(root.parent)}:{node.lineno}: reads .{name}")
            elif isinstance(node, ast.ImportFrom):
                for alias in node.names:
                    if alias.name.startswith("_") and not alias.name.startswith("__"):
                        found.append(f"{path.relative_to(root.parent)}:{node.lineno}: imports {alias.name}")
    return found


def test_no_module_reads_another_modules_private_names():
    assert private_reads() == [], "give the owner a public method or name instead"


def test_private_read_check_catches_a_read(tmp_path):
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "a.py").write_text("class A:\n    def __init__(self):\n        self._x = 1\n\n    def same(self, o):\n"
                              "        return o._x\n")
    (pkg / "b.py").write_text("from pkg.a import _hidden\n\n\ndef peek(a):\n    return a._x + a._y\n")
    assert private_reads(pkg) == ["pkg/b.py:1: imports _hidden", "pkg/b.py:5: reads ._x", "pkg/b.py:5: reads ._y"]


def test_files_stay_short_unless_one_concept():
    long = {str(p.relative_to(PACKAGE)): n for p in PACKAGE.rglob("*.py")
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > 400}
    assert set(long) <= set(LONG_FILES), f"split by concept, or name the one concept in LONG_FILES: {long}"
