"""A stored study behind the service's read endpoints and dashboard, with no pipeline loaded (no model, no
index): what ``autorag-hp dashboard`` serves.

:class:`StudyView` is the service's read side (:class:`~autorag_hp.service.reads.StudyReader`: ``best``, ``arms``,
``trials``, ``status``, ``dashboard``, the functions the :class:`~autorag_hp.service.controller.Controller` extends,
so the page shows exactly what ``serve`` shows) over a :class:`~autorag_hp.tuner.Tuner` opened from what the study
stored (:meth:`Storage.study_meta`: its space, policy, policy parameters, seed and batch size). The tuner only
reads: it never suggests, expires nor writes a snapshot, and ``create_app(..., read_only=True)`` has no route that
asks or reports. A study made by a policy
other than ``online`` (``autorag-hp tune``) is folded through the online policy wrapping it with ``explore=1``,
the setting under which the wrapper passes every decision to it unchanged: every decision then counts as the
inner policy's own choice ("explored").

>>> from autorag_hp import Tuner
>>> tuner = Tuner({"top_k": [1, 3]}, policy="ucb", seed=0, storage="memory")
>>> t = tuner.suggest(); tuner.report(t.id, 1.0)
>>> view = StudyView(tuner.storage, tuner.study)
>>> view.best(1)[0]["count"], view.space.size
(1, 2)
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from autorag_hp.service.controller import ServiceError, ServiceSettings
from autorag_hp.service.reads import StudyReader
from autorag_hp.storage import Storage

PIPELINE = "none (read-only view of a stored study)"


class StudyView(StudyReader):
    """The read side of a service (:class:`StudyReader`) over ``study`` in ``storage`` (a :class:`Storage` or a URL)."""

    def __init__(self, storage: Storage | str, study: str, keys=None, *, clock: Callable[[], float] = time.time):
        from autorag_hp.policies.online import OnlinePolicy
        from autorag_hp.reporting.study import open_existing
        from autorag_hp.space import SearchSpace
        from autorag_hp.tuner import Tuner

        store = open_existing(storage)
        meta = store.study_meta(study)
        space = SearchSpace(meta["space"])
        seed, params = int(meta.get("seed", 0)), dict(meta.get("policy_params") or {})
        if meta.get("policy") == OnlinePolicy.name:
            policy = OnlinePolicy(space, seed=seed, **params)
        else:
            policy = OnlinePolicy(space, seed=seed, inner=meta["policy"], inner_params=params, explore=1.0)
        tuner = Tuner(space, policy=policy, storage=store, seed=seed, batch_size=int(meta["batch_size"]),
                      study=study, clock=clock, snapshot_every=None)
        settings = ServiceSettings(pipeline=PIPELINE, storage=store.url, study=study, policy=policy.inner_name,
                                   policy_params=policy.inner_params, seed=seed, batch_size=tuner.batch_size,
                                   explore=policy.explore, min_count=policy.min_count, discount=policy.discount,
                                   replica="read-only")
        super().__init__(settings, tuner, keys, tag=policy.tag or "-", clock=clock)
        self.max_question_chars = 1  # nothing is asked here (create_app sizes its ask model with it)
        self.meta = meta

    def shown_settings(self) -> dict[str, Any]:
        return {"policy": self.settings.policy, "batch_size": self.settings.batch_size,
                "explore": self.settings.explore, "min_count": self.settings.min_count,
                "discount": self.settings.discount, "pipeline": PIPELINE, "read_only": True}

    def ask(self, question: str, reference: str | None, who) -> dict[str, Any]:
        raise ServiceError(405, "read_only", "this is a read-only view of a stored study; ask the service that tunes it")

    def feedback(self, ticket: str, value: float, who) -> dict[str, Any]:
        raise ServiceError(405, "read_only", "this is a read-only view of a stored study; send feedback to its service")
