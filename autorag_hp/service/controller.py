"""The service's controller: the pipeline, the tuner and the rules that join them (HTTP-free, testable alone).

question → :meth:`Controller.ask` → ``Tuner.suggest()`` → ``pipeline.run(question, config)`` → answer; with a
reference answer the controller scores it at once (``reward.from_answer``) and reports; otherwise the trial
waits for :meth:`Controller.feedback` until ``feedback_window`` seconds pass, then expires and blocks nothing.

Several replicas may share one PostgreSQL storage: the tuner's policy state is a fold over the shared event
log, so every decision is drawn from what all replicas wrote, another replica's events at most
``sync_interval`` seconds late (its own at once; no lock is shared between replicas); a report is committed before the HTTP
answer leaves, and a trial is reported at most once (the storage rejects a second report).

Pipeline changes (``on_change``): the pipeline is identified by a *tag* (default: a digest of the pipeline's
name, generator, corpus and fixed config). ``continue`` keeps one study whatever the tag (the learned state
carries over, as the AutoRAG-HP paper's §4.4 recommends; each trial records its tag); ``reset`` uses one
study per tag, so a changed pipeline starts from nothing and the old study stays readable.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import secrets
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from autorag_hp.service.auth import KeyRing, MalformedTicketError, Principal, TicketError
from autorag_hp.service.reads import StudyReader

log = logging.getLogger("autorag_hp.service")


class ServiceError(Exception):
    """An error the HTTP layer turns into a status code and a JSON body."""

    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def incident(what: str, exc: BaseException) -> str:
    """Log ``exc`` with its traceback under a fresh incident id and return the id: error bodies name the id,
    never the exception's own text (which may carry paths, SQL or data)."""
    ref = secrets.token_hex(6)
    log.error("%s [incident %s]", what, ref, exc_info=exc)
    return ref


@dataclass
class ServiceSettings:
    """Everything ``autorag-hp serve`` can set. See ``autorag-hp serve --help``."""

    pipeline: str = "python_docs_faq"  # a bundled name or a YAML path (autorag_hp.specs)
    storage: str | None = "sqlite:///tuning.db"
    generator: str | None = None
    space: dict[str, Any] | None = None
    config: dict[str, Any] = field(default_factory=dict)
    policy: str = "hier_ucb"
    policy_params: dict[str, Any] = field(default_factory=dict)
    seed: int = 0
    batch_size: int = 1
    study: str = "online"
    feedback_window: float = 3600.0
    sync_interval: float = 0.05  # seconds: how stale another replica's events may be when this one decides
    explore: float = 1.0
    fallback: dict[str, Any] | None = None
    min_count: float = 3.0
    discount: float = 1.0
    on_change: str = "continue"
    pipeline_tag: str | None = None
    reward: Any = None
    reward_range: tuple[float, float] = (-1.0, 1.0)
    max_body_bytes: int = 16384
    max_question_chars: int | None = None
    max_reference_chars: int = 8000
    body_timeout: float = 30.0  # seconds a request's whole body may take to arrive (408 after)
    metrics_auth: bool = False  # True: GET /metrics needs the admin key
    warm: bool = False
    replica: str = field(default_factory=lambda: f"{socket.gethostname()}:{os.getpid()}")

    def __post_init__(self) -> None:
        if self.on_change not in ("continue", "reset"):
            raise ValueError(f"on_change must be 'continue' or 'reset', got {self.on_change!r}")
        lo, hi = self.reward_range
        if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
            raise ValueError(f"reward_range must be two finite numbers lo < hi, got {self.reward_range!r}")
        if self.max_body_bytes < 256:
            raise ValueError("max_body_bytes must be at least 256")
        if not (math.isfinite(self.body_timeout) and self.body_timeout > 0):
            raise ValueError(f"body_timeout must be a positive number of seconds, got {self.body_timeout!r}")


class Controller(StudyReader):
    """The study's read side (:class:`StudyReader`) plus the pipeline and the two calls that change state: ask and
    feedback. Thread-safe (the tuner locks; the pipeline's runs are independent)."""

    def __init__(self, settings: ServiceSettings, keys: KeyRing | None = None, *, pipeline: Any = None,
                 clock: Callable[[], float] = time.time):
        from autorag_hp.evaluation.rewards import DEFAULT_ONLINE_REWARD, FeedbackReward, reward_from_spec
        from autorag_hp.overrides import tuned_space
        from autorag_hp.policies.online import OnlinePolicy
        from autorag_hp.tuner import Tuner

        self.settings = s = settings  # the tag reads it
        if pipeline is None:
            from autorag_hp.rag import load_pipeline

            pipeline = load_pipeline(s.pipeline, **({"generator": s.generator} if s.generator else {}))
        self.pipeline = pipeline
        # --space / --set: a pinned key leaves the space; every value is checked against the pipeline
        self.space, self.fixed = tuned_space(s.space or None, s.config, pipeline)
        if s.warm:
            self.warm_indexes()
        self.max_question_chars = int(s.max_question_chars or getattr(pipeline, "max_question_chars", 2000))
        self.tag = s.pipeline_tag or self._auto_tag()
        self.study = s.study if s.on_change == "continue" else f"{s.study}@{self.tag}"
        self.reward = reward_from_spec(s.reward or DEFAULT_ONLINE_REWARD)
        self._thumbs = FeedbackReward("thumbs")
        self._stars = FeedbackReward("stars")
        policy = OnlinePolicy(
            self.space, seed=s.seed, inner=s.policy, inner_params=s.policy_params, explore=s.explore,
            fallback=s.fallback, min_count=s.min_count, discount=s.discount, tag=self.tag,
        )
        self.tuner = Tuner(self.space, policy=policy, storage=s.storage, seed=s.seed, batch_size=s.batch_size,
                           study=self.study, trial_timeout=s.feedback_window, clock=clock,
                           sync_interval=s.sync_interval)
        super().__init__(s, self.tuner, keys, tag=self.tag, clock=clock)
        self._lock = threading.Lock()

    def warm_indexes(self) -> list[tuple]:
        """Build (or load from the cache) every index the space can ask for, so no user waits for one."""
        return self.pipeline.build_indexes(self.space, fixed=self.fixed)

    def _auto_tag(self) -> str:
        p = self.pipeline
        gen = self.settings.generator or getattr(p, "generator_spec", None)  # any pipeline object may serve
        ident = json.dumps([getattr(p, "name", "?"), str(gen), getattr(p, "fingerprint", "?"),
                            sorted(self.fixed.items())], sort_keys=True, default=str)
        return hashlib.sha256(ident.encode()).hexdigest()[:10]

    def _count(self, key: str) -> None:
        with self._lock:
            self.counters[key] += 1

    # --- the two calls that change state ----------------------------------------------------------------
    def check_question(self, question: str) -> str:
        """The pipeline's question rule with the service's limit, as a 422 with the rule's code."""
        from autorag_hp.rag.errors import QuestionError, check_question

        try:
            return check_question(question, self.max_question_chars)
        except QuestionError as e:
            raise ServiceError(422, e.code, str(e)) from None

    def ask(self, question: str, reference: str | None, who: Principal) -> dict[str, Any]:
        from autorag_hp.types import QAItem

        t0 = time.perf_counter()
        if reference is not None and not who.can("score"):
            raise ServiceError(403, "forbidden", f"this {who.role} key cannot send a reference: scoring by reference "
                               "reports a reward at once, which needs a key with the score scope")
        q = self.check_question(question)
        if reference is not None:
            if len(reference) > self.settings.max_reference_chars:
                raise ServiceError(422, "reference_too_long", f"the reference has {len(reference)} characters; "
                                   f"the limit is {self.settings.max_reference_chars}")
            if not reference.strip():
                raise ServiceError(422, "empty_reference", "the reference answer is empty; omit it or fill it")
        trial = self.tuner.suggest(question=q, owner=who.client)
        t1 = time.perf_counter()
        try:
            answer = self.pipeline.run(q, {**self.fixed, **trial.config.to_dict()})
        except Exception as exc:  # the trial stays pending and expires: nothing is credited
            ref = incident("the pipeline failed", exc)
            raise ServiceError(500, "pipeline_failed", f"the pipeline failed (incident {ref} in the service log)") from exc
        t2 = time.perf_counter()
        reward = None
        if reference is not None:
            reward = float(self.reward.from_answer(answer, QAItem(q, answer=reference)))
            self.tuner.report(trial.id, reward)
            self._count("scored")
        t3 = time.perf_counter()
        self._count("asks")
        return {
            "answer": answer.text,
            "sources": list(answer.sources),
            "trial_id": self.keys.ticket(self.study, trial.id, who.client),
            "config": trial.config.to_dict(),
            "explore": bool(trial.record.policy.get("explore", True)),
            "reward": reward,
            "feedback_until": None if reference is not None else trial.expires_at,
            "timing_ms": {"tuner": 1e3 * ((t1 - t0) + (t3 - t2)), "pipeline": 1e3 * (t2 - t1), "total": 1e3 * (t3 - t0)},
        }

    def feedback_value(self, reward: float | None, thumbs: Any, rating: float | None) -> float:
        given = [k for k, v in (("reward", reward), ("thumbs", thumbs), ("rating", rating)) if v is not None]
        if len(given) != 1:
            raise ServiceError(422, "one_feedback_field",
                               f"give exactly one of reward, thumbs, rating (got {', '.join(given) or 'none'})")
        from autorag_hp.evaluation.rewards import InvalidRewardSpecError

        try:
            if thumbs is not None:
                return self._thumbs.convert(thumbs)
            if rating is not None:
                return self._stars.convert(rating)
        except InvalidRewardSpecError as exc:
            raise ServiceError(422, "invalid_feedback", str(exc)) from None
        value = float(reward)
        lo, hi = self.settings.reward_range
        if not math.isfinite(value):
            raise ServiceError(422, "invalid_reward", f"reward must be a finite number, got {reward!r}")
        if not lo <= value <= hi:
            raise ServiceError(422, "reward_out_of_range", f"reward must be within [{lo}, {hi}], got {value!r}")
        return value

    def feedback(self, ticket: str, value: float, who: Principal) -> dict[str, Any]:
        from autorag_hp.errors import TrialAlreadyReportedError, TrialExpiredError, UnknownTrialError

        admin = who.can("admin")

        def unknown(tid: str) -> ServiceError:
            # another client's trial (or an altered signature) and a trial that does not exist get this same answer,
            # found without reading the storage, so a key cannot probe which trial ids exist
            return ServiceError(404, "unknown_trial", f"no trial {tid!r} " + ("" if admin else "asked by your client ")
                                + f"in study {self.study!r}")

        try:
            tid = self.keys.parse_ticket(self.study, ticket, None if admin else who.client)
        except MalformedTicketError as exc:
            raise ServiceError(422, "malformed_trial_id", str(exc)) from None
        except TicketError:
            raise unknown(ticket.partition(".")[0]) from None
        try:
            self.tuner.report(tid, value)
        except UnknownTrialError:
            raise unknown(tid) from None
        except TrialAlreadyReportedError:
            raise ServiceError(409, "already_reported", f"trial {tid!r} already has its reward; one per trial") from None
        except TrialExpiredError:
            raise ServiceError(410, "trial_expired", f"trial {tid!r} expired: its feedback window of "
                               f"{self.settings.feedback_window:g} s passed") from None
        self._count("feedback")
        return {"trial_id": ticket, "reward": value, "recorded": True}
