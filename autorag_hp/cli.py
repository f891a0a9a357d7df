"""The ``autorag-hp`` command line.

Each sub-command lives in its own module and is imported only when it runs, so ``autorag-hp --help``
starts fast (no torch, transformers or ragas at import time). A module listed in ``COMMANDS`` provides
``add_arguments(parser)`` and ``run(args) -> int``.
"""

from __future__ import annotations

import argparse
import importlib
import sys

# name -> (module, one-line help). Add a line here to add a sub-command.
COMMANDS: dict[str, tuple[str, str]] = {
    "demo": ("autorag_hp.commands.demo", "run the main job on the bundled data and print a readable result"),
    "bench-engine": ("autorag_hp.commands.bench_engine", "suggest+report throughput against Optuna and river"),
    "bench-history": ("autorag_hp.commands.bench_history", "restart time and /v1/trials latency at 1k-1M events"),
    "export": ("autorag_hp.commands.log_io", "export a study: its event log as JSONL, or its trials into Optuna or MLflow"),
    "import": ("autorag_hp.commands.log_io", "import a JSONL event log into a storage"),
    "show": ("autorag_hp.commands.show", "show a stored study: best configurations, arm means; --report DIR: report.md + PNGs"),
    "bench-generator": ("autorag_hp.commands.bench_generator", "local generator speed/quality: fp32, int8, bf16"),
    "mutransfer": ("autorag_hp.commands.mutransfer", "µTransfer demo: LR sweep over widths, SP vs µP, on CPU"),
    "grid": ("autorag_hp.commands.grid", "evaluate every configuration on every question into a resumable table"),
    "bench": ("autorag_hp.commands.bench", "replay tuning policies against a grid table: recall, calls, served reward"),
    "serve": ("autorag_hp.commands.serve", "the online tuning HTTP service (FastAPI) with its dashboard"),
    "dashboard": ("autorag_hp.commands.dashboard", "serve the dashboard read-only over a stored study (no pipeline loaded)"),
    "loadtest": ("autorag_hp.commands.loadtest", "load and fault tests of the service: replicas, kill -9, DB restart"),
    "tune": ("autorag_hp.commands.tune", "tune a RAG pipeline online on streamed questions (bundled or your own data)"),
}


class _Version(argparse.Action):
    """``--version``: reads the package metadata only when asked (importlib.metadata costs ~30 ms)."""

    def __init__(self, option_strings, dest=argparse.SUPPRESS, default=argparse.SUPPRESS, help=None):
        super().__init__(option_strings, dest=dest, default=default, nargs=0, help=help)

    def __call__(self, parser, namespace, values, option_string=None):
        from autorag_hp import version

        print(f"autorag-hp {version()}")
        parser.exit()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="autorag-hp",
        description="Tune RAG pipelines online and offline with hierarchical multi-armed bandits.",
    )
    parser.add_argument("--version", action=_Version, help="print the installed version and exit")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.set_defaults(_module=module, _name=name)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    # Find the sub-command first, then let its module declare its own arguments.
    if argv and argv[0] in COMMANDS:
        name = argv[0]
        module = importlib.import_module(COMMANDS[name][0])
        p = argparse.ArgumentParser(prog=f"autorag-hp {name}", description=COMMANDS[name][1])
        add = getattr(module, f"add_{name.replace('-', '_')}_arguments", None) or module.add_arguments
        add(p)
        args = p.parse_args(argv[1:])
        args.command = name
        args.argv = [name, *argv[1:]]  # the command line as typed (a report's "made by")
        runner = getattr(module, f"run_{name.replace('-', '_')}", None) or module.run
        try:
            return int(runner(args) or 0)
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr)
            return 130
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return 2
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
