"""Bayesian optimization (Hyperopt's TPE) against grid search (scikit-learn GridSearchCV) on an SVC.

Data: scikit-learn's bundled handwritten digits (1797 8×8 images, 10 classes; no download), standardized,
a stratified 75/25 split; the search scores each configuration by 3-fold cross-validated accuracy on the
75 % and the winner is also scored once on the held-out 25 %.

Space: C log-uniform [1e-2, 1e3], gamma log-uniform [1e-5, 1e0] (RBF kernel). The grid is 8 × 8 = 64 points
log-evenly spaced over the same ranges; TPE gets the same 64 evaluations, over several seeds.

    .venv/bin/python examples/hyperopt_vs_grid.py            # writes eval/results/hyperopt_vs_grid/
    .venv/bin/python examples/hyperopt_vs_grid.py --evals 30 --seeds 0 --out /tmp/hvg

Output: best CV score against number of evaluations and against wall time, as a table and a plot.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np

C_RANGE = (1e-2, 1e3)
GAMMA_RANGE = (1e-5, 1e0)
CV = 3


def load_data(seed: int = 0):
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler

    X, y = load_digits(return_X_y=True)
    X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=0.25, stratify=y, random_state=seed)
    sc = StandardScaler().fit(X_tr)
    return sc.transform(X_tr), sc.transform(X_te), y_tr, y_te


def run_grid(X, y, points: int):
    """GridSearchCV, one process; per-candidate time = its fit+score time summed over the folds."""
    from sklearn.model_selection import GridSearchCV, StratifiedKFold
    from sklearn.svm import SVC

    grid = {"C": np.geomspace(*C_RANGE, points), "gamma": np.geomspace(*GAMMA_RANGE, points)}
    t0 = time.perf_counter()
    gs = GridSearchCV(SVC(kernel="rbf"), grid, cv=StratifiedKFold(CV, shuffle=True, random_state=0), n_jobs=1,
                      verbose=1)
    gs.fit(X, y)
    wall = time.perf_counter() - t0
    r = gs.cv_results_
    per = (np.asarray(r["mean_fit_time"]) + np.asarray(r["mean_score_time"])) * CV
    # spread the refit and bookkeeping over the candidates so the last point equals the measured wall time
    times = np.cumsum(per) * (wall / per.sum())
    return {"scores": list(map(float, r["mean_test_score"])), "times": list(map(float, times)), "wall": wall,
            "best_params": {k: float(v) for k, v in gs.best_params_.items()}, "estimator": gs.best_estimator_}


def run_tpe(X, y, evals: int, seed: int):
    from hyperopt import STATUS_OK, Trials, fmin, hp, tpe
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    from sklearn.svm import SVC

    space = {"C": hp.loguniform("C", np.log(C_RANGE[0]), np.log(C_RANGE[1])),
             "gamma": hp.loguniform("gamma", np.log(GAMMA_RANGE[0]), np.log(GAMMA_RANGE[1]))}
    cv = StratifiedKFold(CV, shuffle=True, random_state=0)  # the same folds as the grid
    scores, times = [], []
    t0 = time.perf_counter()

    def objective(p):
        s = float(cross_val_score(SVC(kernel="rbf", C=p["C"], gamma=p["gamma"]), X, y, cv=cv).mean())
        scores.append(s)
        times.append(time.perf_counter() - t0)
        return {"loss": -s, "status": STATUS_OK}

    trials = Trials()
    best = fmin(objective, space, algo=tpe.suggest, max_evals=evals, trials=trials,
                rstate=np.random.default_rng(seed), show_progressbar=True)
    return {"scores": scores, "times": times, "wall": times[-1], "best_params": {k: float(v) for k, v in best.items()}}


def best_so_far(xs):
    return list(np.maximum.accumulate(np.asarray(xs)))


def evals_to_reach(curve, target):
    for i, v in enumerate(curve, 1):
        if v >= target - 1e-12:
            return i
    return None


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--grid-points", type=int, default=8, help="values per parameter (grid = points²)")
    ap.add_argument("--evals", type=int, default=None, help="TPE evaluations (default: the grid's size)")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--out", default="eval/results/hyperopt_vs_grid")
    ap.add_argument("--report-only", action="store_true", help="rebuild the table and plot from results.json")
    args = ap.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    evals = args.evals or args.grid_points**2

    path = os.path.join(args.out, "results.json")
    if args.report_only:
        with open(path) as fh:
            saved = json.load(fh)
        grid, tpes = saved["grid"], saved["tpe"]
        grid_test = grid.pop("test")
        evals = len(tpes[0]["scores"])
    else:
        X_tr, X_te, y_tr, y_te = load_data()
        grid = run_grid(X_tr, y_tr, args.grid_points)
        from sklearn.svm import SVC

        grid_test = float(grid.pop("estimator").score(X_te, y_te))
        tpes = []
        for s in args.seeds:
            r = run_tpe(X_tr, y_tr, evals, s)
            r["test"] = float(SVC(kernel="rbf", **r["best_params"]).fit(X_tr, y_tr).score(X_te, y_te))
            tpes.append(r)

    g_curve = best_so_far(grid["scores"])
    t_curves = np.array([best_so_far(r["scores"]) for r in tpes])
    t_mean = t_curves.mean(0)
    grid_best = g_curve[-1]
    checkpoints = [n for n in (5, 10, 16, 25, 32, 48, 64, 100) if n <= min(len(g_curve), evals)]
    if len(g_curve) not in checkpoints and len(g_curve) <= evals:
        checkpoints.append(len(g_curve))

    # ---- table
    rows = ["| evaluations | grid search best CV acc | TPE best CV acc (mean of seeds) | TPE min–max |",
            "|---:|---:|---:|---:|"]
    for n in checkpoints:
        rows.append(f"| {n} | {g_curve[n - 1]:.4f} | {t_mean[n - 1]:.4f} | {t_curves[:, n - 1].min():.4f}–"
                    f"{t_curves[:, n - 1].max():.4f} |")
    reach = [evals_to_reach(c, grid_best) for c in t_curves]
    reach_995 = [evals_to_reach(c, 0.995 * grid_best) for c in t_curves]
    g_reach_995 = evals_to_reach(g_curve, 0.995 * grid_best)
    t_wall = float(np.mean([r["wall"] for r in tpes]))

    def t_at_time(sec):
        vals = []
        for r in tpes:
            bs = best_so_far(r["scores"])
            idx = [i for i, t in enumerate(r["times"]) if t <= sec]
            vals.append(bs[idx[-1]] if idx else np.nan)
        return float(np.nanmean(vals)) if not all(np.isnan(vals)) else float("nan")

    def g_at_time(sec):
        idx = [i for i, t in enumerate(grid["times"]) if t <= sec]
        return g_curve[idx[-1]] if idx else float("nan")

    time_marks = [grid["wall"] * f for f in (0.1, 0.25, 0.5, 1.0)]
    trows = ["| wall time (s) | grid search best CV acc | TPE best CV acc (mean) |", "|---:|---:|---:|"]
    for sec in time_marks:
        trows.append(f"| {sec:.1f} | {g_at_time(sec):.4f} | {t_at_time(sec):.4f} |")

    # ---- plot
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a1, a2, a3) = plt.subplots(1, 3, figsize=(15, 4))
    a1.plot(range(1, len(g_curve) + 1), g_curve, "k-", lw=2, label="GridSearchCV (grid order)")
    for i, c in enumerate(t_curves):
        a1.plot(range(1, len(c) + 1), c, "-", color="tab:blue", alpha=0.35, label="Hyperopt TPE (each seed)" if i == 0
                else None)
    a1.plot(range(1, len(t_mean) + 1), t_mean, "-", color="tab:blue", lw=2, label="Hyperopt TPE (mean)")
    a1.set_xlabel("evaluations (3-fold CV each)")
    a1.set_ylabel("best CV accuracy so far")
    a2.plot(grid["times"], g_curve, "k-", lw=2, label="GridSearchCV")
    for i, r in enumerate(tpes):
        a2.plot(r["times"], best_so_far(r["scores"]), "-", color="tab:blue", alpha=0.6,
                label="Hyperopt TPE" if i == 0 else None)
    a2.set_xlabel("wall time (s)")
    a3.plot(range(1, len(g_curve) + 1), g_curve, "k-", lw=2, label="GridSearchCV")
    a3.plot(range(1, len(t_mean) + 1), t_mean, "-", color="tab:blue", lw=2, label="Hyperopt TPE (mean)")
    a3.set_ylim(grid_best - 0.02, grid_best + 0.004)
    a3.set_xlabel("evaluations (zoom on the top 2 points of accuracy)")
    a3.grid(alpha=0.3)
    a3.legend(fontsize=8, loc="lower right")
    lo = min(0.9, float(np.min(t_curves[:, min(4, evals - 1)])), float(g_curve[min(4, len(g_curve) - 1)]))
    for a in (a1, a2):
        a.set_ylim(max(lo - 0.01, 0.0), 1.0)
        a.grid(alpha=0.3)
        a.legend(fontsize=8, loc="lower right")
    fig.suptitle(f"SVC (RBF) on digits: TPE vs {args.grid_points}×{args.grid_points} grid, {len(args.seeds)} TPE seeds",
                 fontsize=10)
    fig.tight_layout()
    fig.savefig(os.path.join(args.out, "best_vs_evals_and_time.png"), dpi=120)
    plt.close(fig)

    # ---- verdict from the numbers
    first_cp = checkpoints[0]
    early = "TPE" if t_mean[first_cp - 1] > g_curve[first_cp - 1] else "grid search"
    diff = t_mean[evals - 1] - grid_best
    final = ("a tie (the two differ by less than 0.1 point of accuracy, well inside CV noise)"
             if abs(diff) < 1e-3 else ("TPE" if diff > 0 else "grid search"))
    lines = [
        "# Bayesian optimization (Hyperopt TPE) vs grid search (GridSearchCV), SVC on digits",
        "",
        "Command (repository root): `.venv/bin/python examples/hyperopt_vs_grid.py"
        + (f" --grid-points {args.grid_points}" if args.grid_points != 8 else "")
        + (f" --evals {args.evals}" if args.evals else "")
        + (f" --seeds {' '.join(map(str, args.seeds))}" if args.seeds != [0, 1, 2] else "") + "`",
        "",
        f"Data: scikit-learn digits (1797 × 64), standardized, stratified 75/25 split; score = {CV}-fold CV "
        "accuracy on the 75 % (the same folds for both). Space: C ∈ [1e-2, 1e3], gamma ∈ [1e-5, 1] (both "
        f"log scale). Grid: {args.grid_points}×{args.grid_points} log-even = {len(g_curve)} points; TPE: "
        f"{evals} evaluations × seeds {args.seeds}. Both run back to back in one process on a 2-core machine "
        "shared with other jobs, so wall times are indicative.",
        "",
        "![best vs evaluations and wall time](best_vs_evals_and_time.png)",
        "",
        "## Best CV accuracy against evaluations",
        "",
        *rows,
        "",
        "## Best CV accuracy against wall time",
        "",
        *trows,
        "",
        "## Summary",
        "",
        "| | grid search | Hyperopt TPE (mean of seeds) |",
        "|---|---:|---:|",
        f"| best CV accuracy | {grid_best:.4f} | {t_mean[evals - 1]:.4f} |",
        f"| held-out test accuracy of the winner | {grid_test:.4f} | {np.mean([r['test'] for r in tpes]):.4f} |",
        f"| evaluations to reach 99.5 % of the grid's best | {g_reach_995} | "
        f"{', '.join(str(x) for x in reach_995)} (per seed) |",
        f"| evaluations to match the grid's best | {len(g_curve)} (at most) | "
        f"{', '.join(str(x) if x else 'not reached' for x in reach)} (per seed) |",
        f"| wall time of the whole search (s) | {grid['wall']:.1f} | {t_wall:.1f} |",
        f"| best parameters | C={grid['best_params']['C']:.3g}, gamma={grid['best_params']['gamma']:.3g} | "
        + "; ".join(f"C={r['best_params']['C']:.3g}, gamma={r['best_params']['gamma']:.3g}" for r in tpes) + " |",
        "",
        f"Which wins where: after {first_cp} evaluations {early} is ahead; at the full budget of {evals} "
        f"evaluations the result is {final} (best CV accuracy {t_mean[evals - 1]:.4f} vs {grid_best:.4f}). "
        f"TPE reaches 99.5 % of the grid's best after {min(x for x in reach_995 if x)}–"
        f"{max(x for x in reach_995 if x)} evaluations, grid search after {g_reach_995}. "
        "Grid search's curve depends on the order it walks the grid (here C-major, gamma-minor), so its early "
        "values are an accident of that order; TPE's come from its model. Wall time per evaluation differs too: "
        "TPE spends its evaluations near the good region (moderate gamma), where an SVC fit is cheaper than at "
        "the extremes where it fails to fit, so compare the wall-time table as well.",
        "",
    ]
    md = "\n".join(lines)
    with open(os.path.join(args.out, "results.md"), "w") as fh:
        fh.write(md)
    with open(path, "w") as fh:
        json.dump({"grid": {**grid, "test": grid_test}, "tpe": tpes, "checkpoints": checkpoints}, fh, indent=1)
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
