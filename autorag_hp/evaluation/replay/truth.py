"""Ground truth of a replay: grid search's score of every configuration, and Recall@k against its top k."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def grid_scores(R: np.ndarray) -> np.ndarray:
    """Grid search's score of each configuration: its mean reward over all questions."""
    return R.mean(axis=1)


def recall_at(top: Sequence[int] | np.ndarray, scores: np.ndarray, k: int) -> float:
    """Share of grid's top-``k`` found in ``top`` (first ``k`` entries); ties at grid's k-th score count."""
    top = np.asarray(top, dtype=int)[:k]
    if top.size == 0:
        return 0.0
    kth = np.sort(scores)[::-1][min(k, scores.size) - 1]
    return float((scores[top] >= kth - 1e-12).sum()) / k
