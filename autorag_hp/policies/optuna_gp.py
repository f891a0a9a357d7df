"""Optuna's ``GPSampler`` (a Gaussian process over the categorical parameters, log EI) as a policy, as a baseline.

Everything but the sampler is :class:`~autorag_hp.policies.optuna_tpe.OptunaTPEPolicy`: one Optuna trial per
decision, COMPLETE with the batch's mean reward once fully reported, a fresh sampler per ask seeded from
``(seed, t)`` so ``select`` is pure. Optuna's defaults (``n_startup_trials=10``, ``deterministic_objective=False``:
the GP fits a noise variance, as these rewards need). Cost: the GP is refitted on every ask (torch, L-BFGS over
its kernel parameters): about 0.4–2 s an ask at 60–240 trials on a 2-core machine, so the benchmark runs it on
few seeds. It is deliberately not in the registry (``make_policy``): the registry's contract tests run every
registered policy through tens of decisions. Use the class, or ``replay(..., policy=OptunaGPPolicy)``.

>>> from autorag_hp.space import SearchSpace
>>> pol = OptunaGPPolicy(SearchSpace({"top_k": [1, 3, 5], "prompt": ["a", "b"]}), seed=0)
>>> pol.select().config["top_k"] in (1, 3, 5)
True
"""

from __future__ import annotations

from typing import Any

from autorag_hp.policies.optuna_tpe import OptunaTPEPolicy


class OptunaGPPolicy(OptunaTPEPolicy):
    """Optuna's GPSampler (maximizing) over the space's categorical parameters."""

    name = "optuna_gp"

    def __init__(self, space, seed: int = 0, n_startup_trials: int = 10):
        super().__init__(space, seed, n_startup_trials=n_startup_trials)

    def params(self) -> dict[str, Any]:
        return {"n_startup_trials": self.n_startup_trials}

    def _sampler(self, seed: int):
        import warnings

        import optuna

        with warnings.catch_warnings():  # GPSampler is marked experimental in some Optuna versions
            warnings.simplefilter("ignore")
            return optuna.samplers.GPSampler(seed=seed, n_startup_trials=self.n_startup_trials)
