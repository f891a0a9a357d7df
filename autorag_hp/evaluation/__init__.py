"""Evaluation: metrics (native + ragas), rewards, and the grid runner that computes ground-truth tables.

Kept light: submodules load on first attribute access, so ``import autorag_hp.evaluation`` pulls in no
ragas, optuna or torch.
"""

from __future__ import annotations

from autorag_hp.deps import lazy_exports

_LAZY = {
    "compute_metrics": "autorag_hp.evaluation.metrics",
    "get_metric": "autorag_hp.evaluation.metrics",
    "available_metrics": "autorag_hp.evaluation.metrics",
    "Metric": "autorag_hp.evaluation.metrics",
    "UnknownMetricError": "autorag_hp.evaluation.metrics",
    "evaluator": "autorag_hp.evaluation.evaluators",
    "ragas_llm_metrics": "autorag_hp.evaluation.ragas_metrics",
    "reward_from_spec": "autorag_hp.evaluation.rewards",
    "Reward": "autorag_hp.evaluation.rewards",
    "PaperReward": "autorag_hp.evaluation.rewards",
    "WeightedSumReward": "autorag_hp.evaluation.rewards",
    "FeedbackReward": "autorag_hp.evaluation.rewards",
    "LatencyPenalty": "autorag_hp.evaluation.rewards",
    "GridTable": "autorag_hp.evaluation.table",
    "TableMismatchError": "autorag_hp.evaluation.table",
    "run_grid": "autorag_hp.evaluation.grid",
}

__all__ = sorted(_LAZY)
__getattr__, __dir__ = lazy_exports(__name__, _LAZY)
