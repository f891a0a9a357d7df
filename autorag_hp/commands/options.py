"""Option spellings shared by the sub-commands: one spelling per concept, old spellings kept as aliases that warn.

Every command spells a concept the same way (``--batch-size`` for questions per decision, ``--set KEY=VALUE``
to pin a config key, ``--storage`` only for the tuner's own storage, ``--w`` for reward weights). A spelling
that an older release used stays accepted through :func:`deprecated_alias`: it sets the same value and prints
one line naming the spelling to use, so old scripts and the commands recorded in ``eval/results`` still run.

>>> import argparse
>>> p = argparse.ArgumentParser()
>>> _ = p.add_argument("--batch-size", type=int, default=1)
>>> deprecated_alias(p, "--batch", "--batch-size", type=int)
>>> p.parse_args(["--batch", "4"]).batch_size  # prints a warning on stderr
4
"""

from __future__ import annotations

import argparse
import sys

#: deprecated spelling -> the spelling to use, across every command (tests/test_cli_consistency.py reads it)
RENAMED = {
    "--batch": "--batch-size",
    "--fix": "--set",
    "--ws": "--w",
}


class _DeprecatedAlias(argparse.Action):
    """Stores into the new option's ``dest`` and warns once per use on stderr."""

    def __init__(self, option_strings, dest, *, new: str, append: bool = False, **kwargs):
        self.new, self.append = new, append
        super().__init__(option_strings, dest, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None):
        print(f"warning: {option_string} is deprecated; use {self.new} (same meaning): "
              f"{option_string} will be removed in a later release", file=sys.stderr)
        if self.append:
            values = [*(getattr(namespace, self.dest, None) or []), values]
        setattr(namespace, self.dest, values)


def deprecated_alias(parser, old: str, new: str, *, dest: str | None = None, append: bool = False,
                     **kwargs) -> None:
    """Accept ``old`` as a hidden, warning alias of the option ``new``: the same ``dest`` (by default the one
    argparse derives from ``new``: ``--batch-size`` -> ``batch_size``).

    ``append=True`` for an ``action="append"`` option; other keywords (``type=``) as for ``add_argument``."""
    dest = dest or new.lstrip("-").replace("-", "_")
    parser.add_argument(old, dest=dest, action=_DeprecatedAlias, new=new, append=append,
                        default=argparse.SUPPRESS, help=argparse.SUPPRESS, **kwargs)
