"""Grid search: every configuration once, in an order shuffled by the seed, then exhausted."""

from __future__ import annotations

from typing import Any

import numpy as np

from autorag_hp.errors import SpaceExhaustedError
from autorag_hp.policies.base import Policy, Selection


class GridPolicy(Policy):
    """Suggests each configuration exactly once, in ``permutation(seed)`` order (``shuffle=False``: space order).

    After the last one :attr:`exhausted` is True and :meth:`select` raises :class:`SpaceExhaustedError`.
    A configuration already decided by anyone (another process, an imported log) is skipped.
    """

    name = "grid"

    def __init__(self, space, seed: int = 0, shuffle: bool = True):
        super().__init__(space, seed)
        self.shuffle = bool(shuffle)
        size = self.space.size
        self._order = np.random.default_rng([seed]).permutation(size) if self.shuffle else np.arange(size)
        self._done = np.zeros(size, dtype=bool)
        self._pos = 0

    def params(self) -> dict[str, Any]:
        return {"shuffle": self.shuffle}

    def _advance(self) -> None:
        while self._pos < self._done.size and self._done[self._order[self._pos]]:
            self._pos += 1

    @property
    def exhausted(self) -> bool:
        return self._pos >= self._done.size

    def _select(self, rng: np.random.Generator) -> Selection:
        if self.exhausted:
            raise SpaceExhaustedError(
                f"grid search has suggested all {self.space.size} configurations; read tuner.best() or widen the space"
            )
        return Selection(self.space.config_at(int(self._order[self._pos])))

    def _on_decision(self, idx: int, config, decision) -> None:
        self._done[idx] = True
        self._advance()

    def _extra_state(self) -> dict[str, Any]:
        return {"done": [self.space.config_at(int(i)).id for i in np.flatnonzero(self._done)]}

    def _load_extra_state(self, extra: dict[str, Any]) -> None:
        ids = set(extra.get("done", []))
        self._done[:] = [self.space.config_at(i).id in ids for i in range(self.space.size)]
        self._pos = 0
        self._advance()
