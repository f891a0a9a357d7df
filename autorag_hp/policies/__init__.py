"""Policies, one file each; :data:`REGISTRY` maps names to classes.

>>> from autorag_hp.space import SearchSpace
>>> pol = make_policy("ucb", SearchSpace({"top_k": [1, 3]}), seed=0, alpha=0.5)
>>> pol.params()
{'alpha': 0.5}
"""

from __future__ import annotations

from typing import Any

from autorag_hp.errors import UnknownPolicyError
from autorag_hp.policies.base import Policy, Selection
from autorag_hp.policies.epsilon_greedy import EpsilonGreedyPolicy
from autorag_hp.policies.grid import GridPolicy
from autorag_hp.policies.hier_ts import HierTSPolicy
from autorag_hp.policies.hier_ucb import HierUCBPolicy
from autorag_hp.policies.online import OnlinePolicy
from autorag_hp.policies.random import RandomPolicy
from autorag_hp.policies.thompson import ThompsonPolicy
from autorag_hp.policies.ucb import UCBPolicy

REGISTRY: dict[str, type[Policy]] = {}


def register(cls: type[Policy]) -> type[Policy]:
    """Register a policy class under its ``name`` (usable as a decorator)."""
    REGISTRY[cls.name] = cls
    return cls


for _cls in (RandomPolicy, GridPolicy, UCBPolicy, ThompsonPolicy, EpsilonGreedyPolicy, HierUCBPolicy, HierTSPolicy,
             OnlinePolicy):
    register(_cls)
from autorag_hp.policies.additive_lucb import AdditiveLUCBPolicy  # noqa: E402  (issue 5: benchmark policies)
from autorag_hp.policies.additive_lucb2 import AdditiveLUCB2Policy  # noqa: E402  (issue 18: its second generation)
from autorag_hp.policies.optuna_tpe import OptunaTPEPolicy  # noqa: E402  (optuna is imported only when it selects)

for _cls in (OptunaTPEPolicy, AdditiveLUCBPolicy, AdditiveLUCB2Policy):
    register(_cls)


def available() -> list[str]:
    return sorted(REGISTRY)


def make_policy(name: str, space, seed: int = 0, **params: Any) -> Policy:
    """Instantiate the policy registered as ``name``. Unknown names and parameters give a clear error."""
    try:
        cls = REGISTRY[name]
    except (KeyError, TypeError):
        raise UnknownPolicyError(f"unknown policy {name!r}; available: {', '.join(available())}") from None
    try:
        return cls(space, seed=seed, **params)
    except TypeError as exc:
        raise UnknownPolicyError(f"policy {name!r} does not accept parameters {sorted(params)}: {exc}") from None


__all__ = ["Policy", "Selection", "REGISTRY", "register", "available", "make_policy"] + [
    c.__name__ for c in (RandomPolicy, GridPolicy, UCBPolicy, ThompsonPolicy, EpsilonGreedyPolicy, HierUCBPolicy, HierTSPolicy,
                         OnlinePolicy)
]
