"""What the service shows of a study: ``best``, ``arms``, ``trials``, ``status`` and the dashboard, read through a
:class:`~autorag_hp.tuner.Tuner` and nothing else (no pipeline, no model, no index).

:class:`StudyReader` is that read side. The :class:`~autorag_hp.service.controller.Controller` extends it with a
pipeline and the two calls that change state (ask, feedback); :class:`~autorag_hp.service.readonly.StudyView`
builds one over a stored study for ``autorag-hp dashboard``. Both run these same functions, so the read-only page
shows exactly what ``serve`` shows.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from autorag_hp.service.auth import KeyRing, Principal

if TYPE_CHECKING:
    from autorag_hp.service.controller import ServiceSettings
    from autorag_hp.tuner import Tuner

#: The settings the dashboard shows (see :meth:`StudyReader.shown_settings`).
SHOWN_SETTINGS = ("policy", "batch_size", "feedback_window", "explore", "min_count", "discount", "on_change", "pipeline")


class StudyReader:
    """The read side of a study: ``tuner``'s study (its space, its policy: an
    :class:`~autorag_hp.policies.online.OnlinePolicy`), described by ``settings``, identified by ``tag``, its pages
    guarded by ``keys``. Thread-safe as the tuner is."""

    def __init__(self, settings: ServiceSettings, tuner: Tuner, keys: KeyRing | None = None, *, tag: str,
                 clock: Callable[[], float] = time.time):
        self.settings = settings
        self.keys = keys or KeyRing.open()
        self.clock = clock
        self.tuner = tuner
        self.space, self.policy, self.study = tuner.space, tuner.policy, tuner.study
        self.tag = tag
        self.started = clock()
        self.counters = {"asks": 0, "scored": 0, "feedback": 0}  # what this replica answered (status, /metrics)

    def best(self, k: int = 5) -> list[dict[str, Any]]:
        """What to deploy, exactly as :meth:`Tuner.best` ranks it (:mod:`autorag_hp.ranking`)."""
        return [r.to_dict() for r in self.tuner.best(k)]

    def arms(self) -> dict[str, Any]:
        """Per (hyper-parameter, value): samples, mean and 95 % interval of every reward whose configuration had
        that value (the ranking's samples, summed over configurations), and the policy's own weighted statistics."""
        import numpy as np

        from autorag_hp.ranking import interval

        self.tuner.sync()
        stats = self.policy.sample_stats()
        pooled_var, _ = stats.pooled()
        bounds = (stats.lo, stats.hi) if math.isfinite(stats.lo) else None
        digits = np.array([self.space.digits(self.space.config_at(int(i))) for i in stats.tried], dtype=int)
        digits = digits.reshape(len(stats.tried), len(self.space.params))
        policy_arms = self.policy.arm_stats()
        out = {}
        for j, p in enumerate(self.space.params):
            vals = []
            for v_idx, v in enumerate(p.values):
                rows = stats.tried[digits[:, j] == v_idx] if digits.size else stats.tried[:0]
                n, s1, s2 = (float(a[rows].sum()) for a in (stats.n, stats.s, stats.ss))
                lo, hi, _, note = interval(n, s1, s2, pooled_var=pooled_var, bounds=bounds)
                pol = policy_arms.get(p.name, {}).get("values", {}).get(json.dumps(v))
                vals.append({"value": v, "count": int(round(n)), "mean": s1 / n if n else None, "lower": lo,
                             "upper": hi, "note": note or None, "policy_pulls": None if pol is None else pol[0],
                             "policy_mean": None if pol is None else pol[1]})
            hi_arm = policy_arms.get(p.name, {})
            out[p.name] = {"values": vals, "policy_pulls": hi_arm.get("n"), "policy_mean": hi_arm.get("mean")}
        best = self.policy.best_config()
        return {"arms": out, "current_best": None if best is None else best.to_dict(),
                "fallback": None if self.policy.fallback is None else self.policy.fallback.to_dict()}

    @staticmethod
    def visible_owner(who: Principal) -> str | None:
        """Whose trials ``who`` may list: its own client's; ``None`` (every client's) for the admin."""
        return None if who.can("admin") else who.client

    def trials(self, who: Principal, state: str | None = None, limit: int = 100, after: int | None = None,
               newest_first: bool = True) -> dict[str, Any]:
        """One page of the trials ``who`` may see (:meth:`visible_owner`), newest first by default, from the
        storage's index (the same cost at any history length); ``next`` is the ``after`` cursor of the next page."""
        from autorag_hp.decision import Decision

        page = self.tuner.trial_page(state=state, owner=self.visible_owner(who), after=after, limit=limit,
                                     newest_first=newest_first)
        out = []
        for r in page.trials:
            said = Decision.from_info(r.info).policy
            out.append({"trial_id": r.trial_id, "state": r.state, "config": json.loads(r.config), "reward": r.reward,
                        "created_at": r.created_at, "reported_at": r.reported_at, "expires_at": r.expires_at,
                        "explore": said.get("explore"), "pipeline": said.get("pipeline")})
        return {"trials": out, "next": None if page.next is None else str(page.next)}

    def status(self) -> dict[str, Any]:
        self.tuner.sync()
        pol = self.policy
        return {"study": self.study, "pipeline_tag": self.tag, "replica": self.settings.replica,
                "decisions": pol.t, "explored": pol.explored, "exploited": pol.exploited,
                "explore_cap": pol.explore, "explore_share": _fin(pol.explore_share),
                "uptime_s": self.clock() - self.started, **self.counters,
                "lock_held": self.tuner.storage.lock_held()}  # this replica's time under the study-wide lock

    def shown_settings(self) -> dict[str, Any]:
        """The settings the dashboard shows (:data:`SHOWN_SETTINGS`)."""
        return {k: v for k, v in asdict(self.settings).items() if k in SHOWN_SETTINGS}

    def dashboard(self, who: Principal, bins: int = 60, window: int = 20000) -> dict[str, Any]:
        """Everything the dashboard page draws, in one call. The trial-level parts come from the trials ``who`` may
        see (:meth:`visible_owner`): reward over time from the newest ``window`` reported ones, the recent
        exploration share from the newest 500 decisions; the statistics (best, arms, status) are the study's, as
        ``/v1/best`` and ``/v1/arms`` show them."""
        from autorag_hp.decision import Decision
        from autorag_hp.storage import REPORTED

        status = self.status()
        owner = self.visible_owner(who)
        reported = self.tuner.trial_page(state=REPORTED, owner=owner, limit=window).trials
        reports = sorted((r.reported_at, r.reward) for r in reported)
        newest = self.tuner.trial_page(owner=owner, limit=500 * self.tuner.batch_size).trials
        made = [Decision.from_info(r.info) for r in reversed(newest)]
        recent = [d.policy.get("explore", True) for d in made if d.slot == 0][-500:]
        series = []
        if reports:
            t_lo, t_hi = reports[0][0], reports[-1][0]
            width = max((t_hi - t_lo) / bins, 1e-9)
            buckets: dict[int, list[float]] = {}
            for t, r in reports:
                buckets.setdefault(min(bins - 1, int((t - t_lo) / width)), []).append(r)
            cum_n, cum_s = 0, 0.0
            for b in sorted(buckets):
                rs = buckets[b]
                cum_n += len(rs)
                cum_s += sum(rs)
                series.append({"t": t_lo + (b + 0.5) * width, "mean": sum(rs) / len(rs), "count": len(rs),
                               "cumulative_mean": cum_s / cum_n})
        return {
            **status,
            "recent_explore_share": (sum(1 for x in recent if x) / len(recent)) if recent else None,
            "reward_over_time": series,
            "reports_in_window": len(reports),
            "best": self.best(10),
            **self.arms(),
            "settings": self.shown_settings(),
        }

    def healthy(self) -> None:
        """Raise if the storage cannot be read (the HTTP layer answers 503)."""
        self.tuner.storage.events(self.study, after=self.tuner.last_seq, limit=1)

    def close(self) -> None:
        self.tuner.close()


def _fin(x: float | None) -> float | None:
    return x if x is not None and isinstance(x, int | float) and math.isfinite(x) else None
