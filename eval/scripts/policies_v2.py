"""additive_lucb2 against the baselines on synthetic families, tuned on a development split, reported on a test split.

Families (each a ``SyntheticTable`` read as a grid table: 0/1 correctness with question difficulty, token cost,
the paper's reward at ``w``; the truth is each configuration's *expected* reward, ``expected_rewards``, i.e. an
infinite held-out question set):

* ``graded``: additive effects sd 1.2, interactions sd 0.05 (the committed graded table's structure);
* ``pair05`` / ``pair25`` / ``pair50``: effects sd 0.5, pairwise interactions sd 0.05 / 0.25 / 0.5;
* ``needle``: effects sd 0.5, interactions 0.05, plus a three-way needle (6 configurations of individually bad
  values lifted 0.5 above the rest, ``with_needle``);
* ``large``: 20,000 configurations (10 × 10 × 10 × 20), effects sd 0.5, interactions 0.05, 10 questions.

The small families use the bench's 162-configuration space and 100 questions. Table ``seed`` s of the development
split is table seed s; of the test split 1000 + s (a new planted structure per seed, the stream seed s). Every
method sees the same table and question stream per seed, so differences are paired.

Measures at 20 % of grid's calls, B = 4: the normalized regret of ``best(1)`` (the replay's ``regret``, what
``Tuner.best`` deploys; 0 = the best configuration, 1 = a median one) and Recall@5 against the expected reward.

    python eval/scripts/policies_v2.py tune --seeds 3 --out eval/results/policies_v2/tuning.md
    python eval/scripts/policies_v2.py report --seeds 20 --out eval/results/policies_v2/report.md
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor

import numpy as np

SMALL = {"chunk_size": [256, 512, 1024], "top_k": [1, 3, 5], "embedding": ["bm25", "minilm", "e5"],
         "prompt": ["concise", "cite", "stepwise"], "temperature": [0.0, 0.7]}
LARGE = {"a": list(range(10)), "b": list(range(10)), "c": list(range(10)), "d": list(range(20))}
FAMILIES = {
    "graded": dict(space="small", effect=1.2, interaction=0.05, needle=False, questions=100),
    "pair05": dict(space="small", effect=0.5, interaction=0.05, needle=False, questions=100),
    "pair25": dict(space="small", effect=0.5, interaction=0.25, needle=False, questions=100),
    "pair50": dict(space="small", effect=0.5, interaction=0.5, needle=False, questions=100),
    "needle": dict(space="small", effect=0.5, interaction=0.05, needle=True, questions=100),
    "large": dict(space="large", effect=0.5, interaction=0.05, needle=False, questions=10),
}
# the candidate settings of every tuned method: 8 each (equal effort), chosen on the development split only
CANDIDATES = {
    "ucb": [{"alpha": a} for a in (0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0)],
    "thompson": [{"prior_n": p} for p in (0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0)],
    "hier_ucb": [{"alpha_high": h, "alpha_low": lo} for h, lo in
                 ((1.0, 1.0), (1.5, 0.5), (0.5, 0.5), (0.5, 1.0), (1.0, 0.5), (2.0, 1.0), (0.25, 0.25), (2.0, 2.0))],
    "additive_lucb2": [{"k": k, "explore": e, "slab": s} for k in (1, 3) for e in (0.1, 0.25) for s in (0.02, 0.1)],
}
FIXED = {"grid": {}, "random": {}, "additive_lucb": {}}
_SPACES: dict = {}


def space_of(name: str):
    from autorag_hp.space import SearchSpace

    if name not in _SPACES:
        _SPACES[name] = SearchSpace(SMALL if name == "small" else LARGE)
    return _SPACES[name]


def table_of(family: str, table_seed: int, w: float):
    from autorag_hp.evaluation.replay import SyntheticTable

    f = FAMILIES[family]
    space = space_of(f["space"])
    t = SyntheticTable.make(space, seed=table_seed, effect=f["effect"], interaction=f["interaction"])
    if f["needle"]:
        t = t.with_needle(lift=0.5)
    return space, t.replay_table(f["questions"]).reward_matrix(w), t.expected_rewards(w)


def replay_policy(method: str, params: dict):
    """(policy, policy_params) for ``replay``: a registered name with its parameters, or for ``optuna_gp`` (not
    registered: a GP ask costs seconds) a factory, with torch held to one intra-op thread per worker."""
    if method != "optuna_gp":
        return method, params
    import torch

    from autorag_hp.policies.optuna_gp import OptunaGPPolicy

    torch.set_num_threads(1)
    return (lambda space, seed: OptunaGPPolicy(space, seed, **params)), None


def run_table(job: tuple) -> list[dict]:
    """Every (method, setting) of ``job`` on one table: rows of regret and Recall@5 at 20 % of grid's calls."""
    from threadpoolctl import threadpool_limits

    from autorag_hp.evaluation.replay import replay
    from autorag_hp.evaluation.stats import normalized_regret

    family, w, seed, split, methods = job
    threadpool_limits(1)
    space, R, truth = table_of(family, seed + (1000 if split == "test" else 0), w)
    rows = [{"method": "grid@100%", "setting": "{}", "family": family, "w": w, "seed": seed,
             "regret": normalized_regret(truth, int(np.argmax(R.mean(axis=1)))), "recall@5": float("nan"), "s": 0.0}]
    for method, params in methods:
        t0 = time.perf_counter()
        if method == "smac":  # a library with its own ask/tell: the same table, calls and truth (smac_replay.py)
            from smac_replay import smac_replay

            res = {k: [v] for k, v in smac_replay(R, space, int(round(0.2 * R.size)), seed, truth).items()}
        else:
            policy, policy_params = replay_policy(method, params)
            res = replay(R, space, policy, batch=4, seed=seed, fractions=[0.2], truth=truth,
                         policy_params=policy_params)
        rows.append({"method": method, "setting": json.dumps(params, sort_keys=True), "family": family, "w": w,
                     "seed": seed, "regret": float(res["regret"][0]), "recall@5": float(res["recall@5"][0]),
                     "s": time.perf_counter() - t0})
    return rows


def run_jobs(jobs: list[tuple], workers: int) -> list[dict]:
    rows: list[dict] = []
    with ProcessPoolExecutor(workers) as ex:
        for i, r in enumerate(ex.map(run_table, jobs)):
            rows += r
            print(f"\r{i + 1}/{len(jobs)} tables", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    return rows


def cpu() -> str:
    """The CPU every speed figure names (the project's fingerprint: model, ATen capability, kernel flags)."""
    from autorag_hp.evaluation.cpu_kinds import this_cpu

    fp = this_cpu()
    return f"{fp.get('cpu')}, {os.cpu_count()} vCPUs, torch capability {fp.get('capability')}, flags {fp.get('flags')}"


def tune(args) -> None:
    fams = [f for f in FAMILIES if f != "large"]
    methods = [(m, p) for m, cands in CANDIDATES.items() for p in cands]
    jobs = [(f, w, s, "dev", methods) for f in fams for w in args.w for s in range(args.seeds)]
    t0 = time.perf_counter()
    rows = run_jobs(jobs, args.workers)
    lines = [f"# Tuning on the development split (table seeds 0..{args.seeds - 1})", "",
             f"Families {', '.join(fams)} × w {', '.join(map(str, args.w))} × {args.seeds} seeds = {len(jobs)} "
             "tables; 8 candidate settings per method; criterion: mean normalized regret of `best(1)` at 20 % "
             "of grid's calls (lower is better), mean Recall@5 in brackets.", ""]
    chosen = choose_settings(rows, lines)
    lines += [f"Command: `flock /tmp/ahp-bench.lock nice -n 19 .venv/bin/python eval/scripts/policies_v2.py tune "
              f"--seeds {args.seeds} --w {','.join(map(str, args.w))} --out {args.out}` "
              f"({time.perf_counter() - t0:.0f} s, {args.workers} workers; {cpu()})."]
    write(args.out, "\n".join(lines) + "\n")
    write(args.out.replace(".md", ".json"), json.dumps(chosen, indent=1, sort_keys=True) + "\n")


def choose_settings(rows: list[dict], lines: list[str]) -> dict:
    """Each tuned method's candidate with the lowest mean regret over ``rows`` (its tuning runs); appends the
    per-method tables (regret, Recall@5 per candidate, the choice) to ``lines``."""
    chosen = {}
    for m, cands in CANDIDATES.items():
        lines += [f"## {m}", "", "| setting | regret | Recall@5 |", "|---|---|---|"]
        best = None
        for p in cands:
            key = json.dumps(p, sort_keys=True)
            sel = [r for r in rows if r["method"] == m and r["setting"] == key]
            reg, rec = np.mean([r["regret"] for r in sel]), np.mean([r["recall@5"] for r in sel])
            lines.append(f"| `{key}` | {reg:.3f} | {rec:.3f} |")
            if best is None or reg < best[0]:
                best = (reg, p)
        chosen[m] = best[1]
        lines += ["", f"chosen: `{json.dumps(best[1], sort_keys=True)}`", ""]
    return chosen


def report(args) -> None:
    chosen = json.load(open(args.chosen))
    paper = {"alpha_high": 1.5, "alpha_low": 0.5}
    entries = [("grid", "grid", {}), ("random", "random", {})] + [(m, m, chosen[m]) for m in ("ucb", "thompson", "hier_ucb")] \
        + [("hier_ucb(1.5/0.5)", "hier_ucb", paper), ("additive_lucb", "additive_lucb", {}),
           ("additive_lucb2", "additive_lucb2", chosen["additive_lucb2"])]
    if args.baselines == "optuna":  # the library baseline, O(trials) an ask: run apart, on fewer seeds, at its defaults
        entries = [("optuna_tpe(multivariate)", "optuna_tpe", {"multivariate": True}), entries[-1]]
    elif args.baselines == "smac":  # SMAC3 at its defaults (eval/scripts/smac_replay.py), apart, on fewer seeds
        entries = [("smac", "smac", {}), entries[-1]]
    elif args.baselines == "gp":  # Optuna's GPSampler at its defaults: seconds an ask late in a run, so few seeds
        entries = [("optuna_gp", "optuna_gp", {}), entries[-1]]
    fams = args.families
    jobs = []
    for f in fams:
        ms = [(m, p) for _, m, p in entries if not (f == "large" and m == "additive_lucb")]  # 9 ms a decision at 20k
        if args.reuse:  # only the methods whose code changed; the others' rows come from the earlier run
            ms = [(m, p) for m, p in ms if m in args.rerun]
        jobs += [(f, w, s, "test", ms) for w in args.w for s in range(args.seeds)]
    t0 = time.perf_counter()
    rows = run_jobs(jobs, args.workers)
    if args.reuse:
        keep = [r for r in json.load(open(args.reuse)) if r["method"] not in args.rerun or r["method"] == "grid@100%"]
        rows = keep + [r for r in rows if r["method"] != "grid@100%"]
    write(args.out.replace(".md", ".rows.json"), json.dumps(rows) + "\n")
    entries = [("grid@100%", "grid@100%", {})] + entries
    lines = ["# additive_lucb2 on the test split", "",
             f"Test tables (seeds 1000..{1000 + args.seeds - 1}), {args.seeds} seeds per family and w, B = 4, 20 % of "
             "grid's calls. Cell: the mean with its 95 % t interval over seeds; below it the paired advantage of "
             "additive_lucb2 (regret: method − additive_lucb2; Recall@5: additive_lucb2 − method; positive: "
             "additive_lucb2 better) with its interval and wins/ties/losses of additive_lucb2; **bold** where the "
             "interval excludes 0. Tuned settings (development split only, `tuning.md`): "
             + ", ".join(f"{m} `{json.dumps(chosen[m], sort_keys=True)}`" for m in CANDIDATES)
             + "; `hier_ucb(1.5/0.5)`: the paper's best ablation; `additive_lucb`: its defaults (not run on `large`: "
             "9 ms a decision); `grid`: grid on a question subsample at the same budget; `grid@100%`: the full grid's "
             "own pick (all questions).", ""]
    lines += result_tables(rows, [(f, w) for f in fams for w in args.w], entries, "additive_lucb2",
                           chosen["additive_lucb2"])
    if args.reuse:
        lines += [f"Only {', '.join(args.rerun)} ran in this command; the other methods' rows (and their seconds) are "
                  f"those of `{args.reuse}` (their code has not changed since).", ""]
    secs = {}
    for r in rows:
        secs.setdefault(r["method"], []).append(r["s"])
    lines += ["Replay seconds per run (mean): " + ", ".join(f"{m} {np.mean(v):.2f}" for m, v in secs.items()), "",
              f"Command: `flock /tmp/ahp-bench.lock nice -n 19 .venv/bin/python eval/scripts/policies_v2.py report "
              f"--seeds {args.seeds} --w {','.join(map(str, args.w))} --families {','.join(fams)} --baselines "
              f"{args.baselines}{f' --reuse {args.reuse} --rerun ' + ','.join(args.rerun) if args.reuse else ''} --chosen "
              f"{args.chosen} --out {args.out}` ({time.perf_counter() - t0:.0f} s, {args.workers} workers; {cpu()})."]
    write(args.out, "\n".join(lines) + "\n")


def result_tables(rows: list[dict], groups: list[tuple[str, float]], entries: list[tuple[str, str, dict]],
                  ours_method: str, ours_params: dict, label_key: str = "method") -> list[str]:
    """Markdown tables (regret, Recall@5) of ``rows`` per (family, w) group and entry: the mean with its 95 % t
    interval, and below it the paired advantage of ours (regret: entry − ours; Recall@5: ours − entry) with its
    interval and ours' wins/ties/losses, bold where the interval excludes 0. ``label_key="label"``: rows name
    their entry by its label (several settings of one method); otherwise by (method, setting)."""
    from autorag_hp.evaluation.stats import paired_difference, t_interval

    by_key: dict[tuple, dict[int, dict]] = {}
    for r in rows:
        name = r["label"] if label_key == "label" else (r["method"], r["setting"])
        by_key.setdefault((r["family"], r["w"], name), {})[r["seed"]] = r
    ours_key = next(lbl for lbl, m, p in entries if m == ours_method and p == ours_params) if label_key == "label" \
        else (ours_method, json.dumps(ours_params, sort_keys=True))
    lines = []
    for measure in ("regret", "recall@5"):
        lines += [f"## {measure}", "", "| family | w | " + " | ".join(e[0] for e in entries) + " |",
                  "|---|---|" + "---|" * len(entries)]
        for f, w in groups:
            def vals(key, f=f, w=w, measure=measure, seeds=None):
                got = by_key.get((f, w, key), {})
                keep = sorted(got) if seeds is None else [s for s in sorted(got) if s in seeds]
                return np.array([got[s][measure] for s in keep]), keep
            ours, ours_seeds = vals(ours_key)
            cells = []
            for label, method, params in entries:
                key = label if label_key == "label" else (method, json.dumps(params, sort_keys=True))
                v, seeds = vals(key)
                if v.size == 0 or np.isnan(v).all():
                    cells.append("–")
                    continue
                m, lo, hi = t_interval(v)
                cell = f"{m:.3f} [{lo:.3f}, {hi:.3f}]"
                if key != ours_key:
                    # the advantage of ours (positive: it is better) on the seeds both ran; wins/ties/losses its own
                    o = np.array([by_key[(f, w, ours_key)][s][measure] for s in seeds if s in set(ours_seeds)])
                    v = np.array([by_key[(f, w, key)][s][measure] for s in seeds if s in set(ours_seeds)])
                    d = paired_difference(v, o) if measure == "regret" else paired_difference(o, v)
                    txt = f"{d.mean:+.3f} [{d.lower:+.3f}, {d.upper:+.3f}] {d.wins}/{d.ties}/{d.losses}"
                    cell += f"<br>{'**' + txt + '**' if d.resolved else txt}"
                    if len(seeds) != len(ours_seeds):
                        cell += f" ({len(v)} seeds)"
                cells.append(cell)
            lines.append(f"| {f} | {w} | " + " | ".join(cells) + " |")
        lines.append("")
    return lines


def write(path: str | None, text: str) -> None:
    if path:
        open(path, "w", encoding="utf-8").write(text)
    print(text)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("mode", choices=["tune", "report"])
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--w", type=lambda s: [float(x) for x in s.split(",")], default=[0.5, 0.9])
    ap.add_argument("--families", type=lambda s: s.split(","), default=list(FAMILIES))
    ap.add_argument("--chosen", default="eval/results/policies_v2/tuning.json")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--baselines", choices=["ours", "optuna", "smac", "gp"], default="ours",
                    help="ours: grid, random, UCB, Thompson, Hier-UCB, additive_lucb; optuna: multivariate TPE; "
                         "smac: SMAC3")
    ap.add_argument("--reuse", default=None, help="a rows file whose runs are kept for methods not in --rerun")
    ap.add_argument("--rerun", type=lambda s: s.split(","), default=["additive_lucb2"])
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    tune(args) if args.mode == "tune" else report(args)


if __name__ == "__main__":
    main()
