"""``autorag-hp mutransfer``: the µTransfer demonstration (LR sweep over widths, SP vs µP) on the CPU.

Writes ``sweep_<setting>.jsonl`` (resumable), ``mutransfer_lr_sweep.png``, ``results.md`` and ``summary.json`` to ``--out``.
"""

from __future__ import annotations

import argparse
import os
import shlex


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", default="eval/results/mutransfer", help="output folder")
    p.add_argument("--widths", type=int, nargs="+", default=[32, 64, 128, 256], help="d_model values; smallest = base")
    p.add_argument("--log2-lrs", type=float, nargs="+", default=list(range(-11, -3)), help="Adam LRs as log2")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    p.add_argument("--steps", type=int, default=150)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--seq-len", type=int, default=64)
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--max-bytes", type=int, default=None, help="use only the first N bytes of the docs")
    p.add_argument("--jobs", type=int, default=2, help="worker processes (1 torch thread each)")
    p.add_argument("--report-only", action="store_true", help="re-plot and re-tabulate from sweep.jsonl")


def run(args: argparse.Namespace) -> int:
    from autorag_hp.training import lm_sweep

    settings = dict(
        widths=args.widths, log2_lrs=args.log2_lrs, seeds=args.seeds, steps=args.steps, batch_size=args.batch_size,
        seq_len=args.seq_len, n_layers=args.layers, max_bytes=args.max_bytes,
    )
    if not args.report_only:
        lm_sweep.run_sweep(args.out, n_jobs=args.jobs, **settings)
    records = lm_sweep.load_sweep(lm_sweep.sweep_log_path(
        args.out, steps=args.steps, batch_size=args.batch_size, seq_len=args.seq_len, n_layers=args.layers,
        max_bytes=args.max_bytes))
    # only the points of this configuration (the log may hold an earlier, different sweep)
    records = [
        r for r in records
        if int(r["params"]["width"]) in args.widths and float(r["params"]["log2_lr"]) in args.log2_lrs
        and int(r["params"]["seed"]) in args.seeds
    ]
    summary = lm_sweep.summarize(records)
    plot = os.path.join(args.out, "mutransfer_lr_sweep.png")
    lm_sweep.plot_sweep(
        summary, plot,
        title=f"TinyLM ({args.layers} layers, byte-level, seq {args.seq_len}) on the Python 3.11 docs, "
        f"{args.steps} Adam steps",
    )
    settings["n_layers"] = args.layers
    slopes = lm_sweep.coord_check_figure(args.out, args.widths, seq_len=args.seq_len, n_layers=args.layers)
    md = lm_sweep.write_report(summary, args.out, _command(args), settings, slopes=slopes)
    print(open(md).read())
    return 0


def _command(args: argparse.Namespace) -> str:
    """The exact command line that reproduces this run, rebuilt from the parsed arguments."""

    def fmt(xs):
        return " ".join(f"{x:g}" if isinstance(x, float) else str(x) for x in xs)

    parts = [
        "autorag-hp mutransfer", f"--out {shlex.quote(args.out)}", f"--widths {fmt(args.widths)}",
        f"--log2-lrs {fmt(args.log2_lrs)}", f"--seeds {fmt(args.seeds)}", f"--steps {args.steps}",
        f"--batch-size {args.batch_size}", f"--seq-len {args.seq_len}", f"--layers {args.layers}",
        f"--jobs {args.jobs}",
    ]
    if args.max_bytes:
        parts.append(f"--max-bytes {args.max_bytes}")
    return " ".join(parts)
