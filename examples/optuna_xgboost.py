"""Optuna + XGBoost regression: 100 TPE trials, validation MSE, best parameters, the two Optuna plots.

Search space (as the classic example has it): ``n_estimators`` categorical {50, 100, 200}, ``max_depth``
int 3–15, ``learning_rate`` log-uniform 0.01–0.3. Data: scikit-learn's bundled diabetes regression set
(442 patients, 10 features; no download), 75/25 train/validation split.

    .venv/bin/python examples/optuna_xgboost.py            # writes eval/results/optuna_xgboost/
    .venv/bin/python examples/optuna_xgboost.py --trials 20 --out /tmp/xgb

Shared study across processes/machines: add ``--storage postgresql://postgres@127.0.0.1:5432/test --study
xgb`` and start the script several times; each run adds its trials to the same study.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from autorag_hp.training import Categorical, Float, Int, OptunaTuner  # noqa: E402

SPACE = {
    "n_estimators": Categorical([50, 100, 200]),
    "max_depth": Int(3, 15),
    "learning_rate": Float(0.01, 0.3, log=True),
}


def load_data(seed: int = 0):
    from sklearn.datasets import load_diabetes
    from sklearn.model_selection import train_test_split

    X, y = load_diabetes(return_X_y=True)
    return train_test_split(X, y, test_size=0.25, random_state=seed)


def make_objective(X_tr, X_va, y_tr, y_va, seed: int = 0):
    from sklearn.metrics import mean_squared_error
    from xgboost import XGBRegressor

    def objective(params: dict) -> float:
        model = XGBRegressor(**params, random_state=seed, n_jobs=1, tree_method="hist")
        model.fit(X_tr, y_tr)
        return float(mean_squared_error(y_va, model.predict(X_va)))

    return objective


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=100)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="eval/results/optuna_xgboost")
    ap.add_argument("--storage", default=None, help="optional study storage URL (sqlite:///..., postgresql://...)")
    ap.add_argument("--study", default=None, help="study name (required with --storage)")
    args = ap.parse_args(argv)

    X_tr, X_va, y_tr, y_va = load_data(args.seed)
    objective = make_objective(X_tr, X_va, y_tr, y_va, args.seed)
    baseline = objective({"n_estimators": 100, "max_depth": 6, "learning_rate": 0.3})  # XGBoost's defaults
    tuner = OptunaTuner(objective, SPACE, sampler="tpe", seed=args.seed, storage=args.storage,
                        study_name=args.study)
    t0 = time.perf_counter()
    tuner.optimize(args.trials)
    seconds = time.perf_counter() - t0
    plots = tuner.export_plots(args.out, prefix="xgboost", plotlyjs="cdn")  # small files; "inline" = offline
    best = tuner.best_params
    summary = {
        "trials": len(tuner.study.trials),
        "best_validation_mse": tuner.best_value,
        "best_params": best,
        "default_params_validation_mse": baseline,
        "seconds": seconds,
        "plots": {k: os.path.basename(v) for k, v in plots.items()},
    }
    with open(os.path.join(args.out, "results.json"), "w") as fh:
        json.dump(summary, fh, indent=1)
    cmd = "python examples/optuna_xgboost.py" + (f" --trials {args.trials}" if args.trials != 100 else "") + (
        f" --seed {args.seed}" if args.seed else "")
    md = [
        "# Optuna (TPE) + XGBoost regression",
        "",
        f"Command: `{cmd}` (from the repository root, with `.venv/bin/python`).",
        "",
        "Data: scikit-learn's diabetes set (442 × 10), 75/25 train/validation split (random_state "
        f"{args.seed}). Space: n_estimators ∈ {{50, 100, 200}}, max_depth ∈ [3, 15], "
        "learning_rate log-uniform [0.01, 0.3].",
        "",
        "| | validation MSE |",
        "|---|---:|",
        f"| XGBoost defaults (100 trees, depth 6, lr 0.3) | {baseline:.1f} |",
        f"| best of {summary['trials']} TPE trials | {tuner.best_value:.1f} |",
        "",
        "Best parameters: " + ", ".join(f"`{k}={v:.4g}`" if isinstance(v, float) else f"`{k}={v}`"
                                        for k, v in best.items()),
        "",
        f"Wall time: {seconds:.0f} s (one process, on a 2-core machine shared with other jobs).",
        "The validation set has 111 rows, so the best MSE is an optimistic estimate (selected on it).",
        "",
        "![optimization history](xgboost_history.png) ![parameter importances](xgboost_importances.png)",
        "",
        "Interactive versions: `xgboost_history.html`, `xgboost_importances.html` (plotly).",
        "",
    ]
    with open(os.path.join(args.out, "results.md"), "w") as fh:
        fh.write("\n".join(md))
    print("\n".join(md))
    return 0


if __name__ == "__main__":
    sys.exit(main())
