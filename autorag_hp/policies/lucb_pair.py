"""LUCB's pair of arms to compare, with the tie-breaking jitter drawn only when it can change the answer."""

from __future__ import annotations

import numpy as np

_JITTER = 1e-12  # the tie-breaking noise's range; a gap of 4 × that cannot be reversed by it


def lucb_pair(mean: np.ndarray, sd: np.ndarray, beta: float, k: int, rng) -> tuple[int, int]:
    """LUCB's two arms: ``a`` = the one of the ``k`` highest means with the lowest ``mean − β sd``, ``b`` = the one
    outside with the highest ``mean + β sd``, ties broken by a jitter in ``[0, 10⁻¹²)`` from ``rng``.

    The jitter is drawn only when it can matter, i.e. when some comparison that decides ``a`` or ``b`` is
    within ``4 × 10⁻¹²`` (an ``O(n)`` check by partial sorts); otherwise the answer is the one the jittered
    sort would give, without drawing ``n`` numbers and sorting them (the scores are rounded to 10⁻⁹)."""
    n, gap = mean.size, 4 * _JITTER
    part = np.partition(-mean, [k - 1, k])
    if part[k] - part[k - 1] > gap:  # the top k is certain
        inside = np.flatnonzero(mean >= -part[k - 1])
        low = mean[inside] - beta * sd[inside]
        a = 0 if k == 1 else int(np.argmin(low))
        if k == 1 or np.partition(low, 1)[1] - low[a] > gap:
            up = mean + beta * sd
            up[inside] = -np.inf
            b = int(np.argmax(up))
            if n - k == 1 or up[b] - np.partition(up, n - 2)[n - 2] > gap:
                return int(inside[a]), b
    jitter = rng.uniform(0.0, _JITTER, n)
    order = np.argsort(-(mean + jitter), kind="stable")
    inside, outside = order[:k], order[k:]
    lo = inside[int(np.argmin(mean[inside] - beta * sd[inside] + jitter[inside]))]
    hi = outside[int(np.argmax(mean[outside] + beta * sd[outside] + jitter[outside]))]
    return int(lo), int(hi)
