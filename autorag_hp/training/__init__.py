"""autorag_hp.training: tuners for model training — Optuna, grid search and µTransfer (mup).

Heavy dependencies (optuna, torch, mup, scikit-learn) are imported only when a tuner is used, so
``import autorag_hp.training`` is instant. Install them with ``pip install -e '.[training]'`` (torch and mup
as the Makefile does: the CPU torch build, and ``mup`` with ``--no-deps``).

Example:
    >>> from autorag_hp.training import GridTuner, OptunaTuner, Float
    >>> from autorag_hp.training.objectives import quadratic
    >>> OptunaTuner(quadratic, {"x": Float(-5, 5), "y": Float(-5, 5)}, seed=0).optimize(
    ...     40, show_progress=False).best_value < 1.0
    True
"""

from __future__ import annotations

from autorag_hp.deps import lazy_exports

_EXPORTS = {
    "OptunaTuner": ".optuna_tuner",
    "GridTuner": ".grid_search",
    "GridResult": ".grid_search",
    "MuTransfer": ".mutransfer",
    "coord_check": ".mutransfer",
    "plot_coord_check": ".mutransfer",
    "Float": ".dimensions",
    "Int": ".dimensions",
    "Categorical": ".dimensions",
    "ddp_train_lm": ".distributed",
    "LMConfig": ".lm",
}

__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
