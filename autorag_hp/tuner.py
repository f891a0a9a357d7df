"""The ask/tell tuner: ``suggest()`` a configuration, ``report()`` its reward, read ``best()``.

>>> from autorag_hp import SearchSpace, Tuner
>>> tuner = Tuner(SearchSpace({"top_k": [1, 3, 5], "prompt": ["concise", "cite"]}), policy="hier_ucb", seed=0)
>>> trial = tuner.suggest()
>>> tuner.report(trial.id, 0.5)
>>> [row.count for row in tuner.best(1)]
[1]

How it works. The storage's event log is the source of truth and the policy's state a fold over it: the tuner
applies its own events as it makes them (a suggestion when chosen, a report when stored) and, before a decision,
those other processes sharing the storage wrote since its last read (:mod:`autorag_hp.fold`). A reopened tuner has
the same statistics, and a single process with a seed makes the same decisions as one that never stopped. Other
processes' events arrive up to ``sync_interval`` seconds late (default 0: a read before every decision). No lock
is held across a storage round trip: the tuner's covers its in-memory state only, and the storage shares none
between processes (PostgreSQL) or only SQLite's write lock for a local transaction.

Batches. With ``batch_size=B`` (the paper's B = 4) B consecutive suggestions share one configuration and
form one decision. Each of the B rewards is credited to the policy with weight 1/B as it arrives, so a
complete batch counts as one pull with the batch's mean reward, a partly reported one counts fractionally,
and a trial that never reports delays nothing. :meth:`best` ranks configurations on every individual reward
(one sample per distinct question when trials name their question).

Snapshots. Every ``snapshot_every`` events (default: 1,000 on SQL storage, none in memory) the tuner stores its
folded state (the policy's ``state_dict``, the open batch, its place in the log) with the event that makes it due,
in the same transaction. Opening the study reads the newest snapshot of its *version* (a digest of the format,
the policy's name, parameters, seed and initial state, and the space) and folds the events after it; one of
another version, or that does not load, is ignored. Restoring is exact: the same state and next decisions.

Concurrency. Any number of trials may be outstanding. Reports may arrive late, out of order, or never (with
``trial_timeout`` seconds set, a trial expires and its late report is rejected); a second report of a trial
raises :class:`TrialAlreadyReportedError` and changes nothing. All methods are thread-safe.
"""

from __future__ import annotations

import hashlib
import json
import math
import numbers
import secrets
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from autorag_hp.decision import Decision
from autorag_hp.errors import TrialAlreadyReportedError
from autorag_hp.fold import LogFollower
from autorag_hp.policies import Policy, make_policy
from autorag_hp.ranking import Estimate, check_rule, rank
from autorag_hp.space import Config, SearchSpace
from autorag_hp.storage import EXPIRE, PENDING, REPORT, SUGGEST, Event, Storage, TrialRecord, open_storage
from autorag_hp.storage.base import Snapshot, TrialPage
from autorag_hp.trial import Trial, check_reward, question_key

SNAPSHOT_FORMAT = 2  # bump when what a snapshot holds changes: older snapshots are then ignored
SNAPSHOT_EVERY = 1000  # events between snapshots on a storage that outlives the process (snapshot_every="auto")


class Tuner:
    """Ask/tell hyper-parameter tuner over a :class:`SearchSpace` with a bandit policy.

    Args:
        space: a :class:`SearchSpace` or its spec (grouped or flat mapping of parameter -> values).
        policy: a registered policy name (``random``, ``grid``, ``ucb``, ``thompson``, ``epsilon_greedy``,
            ``hier_ucb``, ``hier_ts``...), or a :class:`Policy` instance built on the same space.
        storage: ``None`` (memory), a URL (``sqlite:///tuning.db``, ``postgresql://user@host/db``) or a Storage.
        seed: fixes every random choice of the policy.
        batch_size: B consecutive suggestions share one configuration (one decision).
        study: the study name inside the storage; several tuners may share one.
        trial_timeout: seconds after which an unreported trial expires (``None``: never).
        policy_params: keyword arguments for the policy (e.g. ``{"alpha_high": 0.5}``).
        clock: a function returning the time in seconds (tests inject a fake one).
        snapshot_every: store the folded state every this many events, so that opening the study reads the
            newest snapshot and the events after it, not the whole log; ``None`` or 0: never (fold it all);
            ``"auto"`` (default): 1,000 on SQL storage, never on memory storage.
        sync_interval: read other processes' events at most this many seconds apart (0, the default: before every
            decision); the staleness a shared study's replicas trade for a round trip per ask.
    """

    def __init__(
        self,
        space: SearchSpace | Mapping[str, Any],
        policy: str | Policy = "hier_ucb",
        storage: Storage | str | None = None,
        *,
        seed: int = 0,
        batch_size: int = 1,
        study: str = "default",
        trial_timeout: float | None = None,
        policy_params: Mapping[str, Any] | None = None,
        clock: Callable[[], float] = time.time,
        snapshot_every: int | None | str = "auto",
        sync_interval: float = 0.0,
    ):
        self.space = space if isinstance(space, SearchSpace) else SearchSpace(space)
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
        if trial_timeout is not None and not (isinstance(trial_timeout, numbers.Real) and trial_timeout > 0):
            raise ValueError(f"trial_timeout must be a positive number of seconds or None, got {trial_timeout!r}")
        if not isinstance(study, str) or not study:
            raise ValueError("study must be a non-empty string")
        if snapshot_every not in (None, "auto") and not (type(snapshot_every) is int and snapshot_every >= 0):
            raise ValueError(f"snapshot_every must be a number of events >= 0, None or 'auto', got {snapshot_every!r}")
        if not (isinstance(sync_interval, numbers.Real) and 0 <= sync_interval < math.inf):
            raise ValueError(f"sync_interval must be a number of seconds >= 0, got {sync_interval!r}")
        if isinstance(policy, Policy):
            if policy.space != self.space:
                raise ValueError("the policy was built on a different search space than the tuner's")
            if policy_params:
                raise ValueError("policy_params only apply when the policy is given by name")
            self.policy = policy
        else:
            self.policy = make_policy(policy, self.space, seed=seed, **dict(policy_params or {}))
        self.seed = seed
        self.batch_size = batch_size
        self.trial_timeout = None if trial_timeout is None else float(trial_timeout)
        self.clock = clock
        self.study = study
        self.storage = open_storage(storage)
        self.meta = self.storage.open_study(
            study, self.space, {"policy": self.policy.name, "policy_params": self.policy.params(), "seed": seed,
                                "batch_size": batch_size}
        )
        self._lock = threading.RLock()  # the in-memory state only: never held across a storage call
        self._read_lock = threading.Lock()  # one read of the log at a time (taken before _lock, never inside it)
        self._follow = LogFollower()
        self.sync_interval = float(sync_interval)
        self._last_read = -math.inf
        self._batch: tuple[Config, Decision] | None = None
        self._configs: dict[str, Config] = {}
        self._next_expiry_check = -math.inf
        if snapshot_every == "auto":
            snapshot_every = None if self.storage.url == "memory" else SNAPSHOT_EVERY
        self.snapshot_every: int | None = snapshot_every or None
        self._initial_state = self.policy.state_dict()
        ident = json.dumps([SNAPSHOT_FORMAT, self.space.fingerprint, self._initial_state], sort_keys=True, default=str)
        self.snapshot_version = hashlib.sha256(ident.encode()).hexdigest()[:32]
        self._snap_folded = 0  # LogFollower.folded when this tuner last read or wrote a snapshot
        if self.snapshot_every:
            self._restore(self.storage.snapshot(study, self.snapshot_version))
        self._sync()
        if self.snapshot_every and self._follow.folded - self._snap_folded >= self.snapshot_every:
            self.save_snapshot()  # the next start reads this one instead of folding the same tail again

    @property
    def last_seq(self) -> int:
        """The highest sequence number among the storage events this tuner has applied (0: none)."""
        return self._follow.last

    @property
    def events_folded(self) -> int:
        """How many of the study's events this tuner has applied (a restored snapshot's included): the log's length."""
        return self._follow.folded

    @property
    def open_batch(self) -> tuple[Config, Decision] | None:
        """The last decision's configuration and record while its batch still has slots to hand out."""
        with self._lock:
            return self._batch if self._batch is not None and self._batch[1].batch_open else None

    def snapshot(self, writing: tuple[str, str] | None = None) -> Snapshot | None:
        """The folded state and its place in the log (what start-up restores instead of folding the log up to
        it); None while a write of this process is in flight (the state would not restore exactly)."""
        with self._lock:
            pos = self._follow.position(writing)
            if pos is None:
                return None
            batch = None if self._batch is None else [self._batch[0].to_json(), self._batch[1].to_info()]
            state = {"format": SNAPSHOT_FORMAT, "policy": self.policy.state_dict(), "batch": batch, "log": pos,
                     "folded": self._follow.folded}
            return Snapshot(self.snapshot_version, self._follow.after,
                            json.dumps(state, separators=(",", ":"), default=str))

    def save_snapshot(self) -> bool:
        """Store :meth:`snapshot` now (it is also stored every ``snapshot_every`` events with an event); False if
        none could be taken (a write in flight)."""
        snap = self.snapshot()
        if snap is None:
            return False
        self.storage.save_snapshot(self.study, snap)
        with self._lock:
            self._snap_folded = json.loads(snap.state)["folded"]
        return True

    def _due_snapshot(self, writing: tuple[str, str]) -> Snapshot | None:
        if self.snapshot_every and self._follow.folded - self._snap_folded >= self.snapshot_every:
            snap = self.snapshot(writing)
            if snap is not None:
                self._snap_folded = self._follow.folded
            return snap
        return None

    def _restore(self, snap: Snapshot | None) -> None:
        """Load ``snap`` if it is of this tuner's version and loads whole; otherwise leave the state as it was."""
        if snap is None or snap.version != self.snapshot_version:
            return
        try:
            data = json.loads(snap.state)
            pol = data["policy"]
            expect = json.loads(json.dumps({k: self._initial_state[k] for k in ("policy", "params", "seed", "space")},
                                           default=str))
            if data.get("format") != SNAPSHOT_FORMAT or {k: pol.get(k) for k in expect} != expect:
                return  # not this policy's state after all: never trusted
            batch = None if data["batch"] is None else (self._config(data["batch"][0]),
                                                        Decision.from_info(data["batch"][1]))
            self.policy.load_state_dict(pol)
            self._follow.restore(data["log"])
            self._follow.folded = self._snap_folded = int(data["folded"])
        except Exception:  # noqa: BLE001 - a snapshot that does not load is rebuilt from the log
            self.policy.load_state_dict(self._initial_state)
            self._follow = LogFollower()
            return
        self._batch = batch

    def _config(self, text: str) -> Config:
        cfg = self._configs.get(text)
        if cfg is None:
            cfg = self.space.validate(Config.from_json(text))
            self._configs[text] = cfg
        return cfg

    def _apply(self, kind: str, config: str | Config, reward: float | None, info: Decision | Mapping[str, Any]) -> None:
        cfg = config if isinstance(config, Config) else self._config(config)
        d = Decision.from_info(info)
        if kind == SUGGEST:
            if d.slot == 0:
                self.policy.observe_decision(cfg, d)
            self._batch = (cfg, d)
        elif kind == REPORT:
            self.policy.update(cfg, reward, d.weight, d)
        elif kind == EXPIRE:
            self.policy.release(cfg, d.weight, d)

    def _sync(self, *, fresh_enough: bool = False) -> None:
        """Read the events not applied yet and apply them (``fresh_enough``: unless the last read is less than
        ``sync_interval`` seconds old). Never called with ``_lock`` held."""
        if fresh_enough and time.monotonic() - self._last_read < self.sync_interval:
            return
        with self._read_lock:
            started = time.monotonic()
            read = self.storage.read_log(self.study, self._follow.after, self._follow.horizon)
            with self._lock:
                for ev in self._follow.take(read):
                    self._apply(ev.kind, ev.config, ev.reward, ev.info)
            self._last_read = started

    def _maybe_expire(self, now: float) -> None:
        if self.trial_timeout is None or now < self._next_expiry_check:
            return
        self.storage.expire(self.study, now)
        self._next_expiry_check = now + min(self.trial_timeout / 4.0, 1.0)

    def suggest(self, question: str | None = None, *, owner: str | None = None) -> Trial:
        """Hand out the next trial. Raises :class:`SpaceExhaustedError` when the policy has nothing left.

        ``question`` (optional: its text or a stable id) identifies what the trial will answer; the trial
        records only a digest of it. The ranking then counts one sample per distinct (configuration, question)
        cell, so a question asked again does not narrow the interval as if it were new evidence. ``owner``
        (optional): who asked, recorded on the trial (:meth:`trial_page` can list one owner's trials)."""
        now = self.clock()
        self._maybe_expire(now)
        self._sync(fresh_enough=True)
        with self._lock:
            if self._batch is not None and self._batch[1].batch_open:
                cfg, prev = self._batch
                d = prev.next_slot()
            else:
                sel = self.policy.select()
                cfg = sel.config
                d = Decision(number=self.policy.t, slot=0, batch=self.batch_size, policy=sel.info)
            d = d.asking(None if question is None else question_key(question))
            info = d.to_info()
            expires = None if self.trial_timeout is None else now + self.trial_timeout
            rec = TrialRecord(secrets.token_hex(8), cfg.to_json(), cfg.id, info, PENDING, now, expires, owner=owner)
            mine = (SUGGEST, rec.trial_id)
            self._follow.claim(*mine, applied=True)  # in the state from now: the next ask sees it in flight
            self._apply(SUGGEST, cfg, None, d)
            snap = self._due_snapshot(mine)
        try:
            seq = self.storage.suggest(self.study, rec, snap)
        except BaseException:
            with self._lock:
                if self._follow.failed(*mine) is None:  # not stored: as if it had expired at once
                    self.policy.release(cfg, d.weight, d)
            raise
        with self._lock:
            self._follow.committed(*mine, seq)
        return Trial(rec.trial_id, cfg, d.number, d.slot, info, now, expires)

    ask = suggest

    def report(self, trial_id: str, reward: float) -> None:
        """Record ``reward`` (a finite real number) for the trial. Nothing is stored if it raises."""
        if not isinstance(trial_id, str) or not trial_id:
            raise TypeError(f"trial_id must be a non-empty string, got {type(trial_id).__name__} {trial_id!r}")
        value = check_reward(reward)
        now = self.clock()
        mine = (REPORT, trial_id)
        with self._lock:
            if self._follow.claimed(*mine):
                raise TrialAlreadyReportedError(f"trial {trial_id!r} was already reported (or is being reported)")
            self._follow.claim(*mine, applied=False)
            snap = self._due_snapshot(mine)
        try:
            seq, tr = self.storage.report(self.study, trial_id, value, now, snap)
        except BaseException:
            with self._lock:
                ev = self._follow.failed(*mine)  # stored after all (a read saw it): count it
                if ev is not None:
                    self._apply(REPORT, ev.config, ev.reward, ev.info)
            raise
        with self._lock:
            self._apply(REPORT, tr.config, value, tr.info)
            self._follow.committed(*mine, seq)

    tell = report

    def optimize(self, objective: Callable[[Trial], float], n_trials: int | None = None, **kwargs: Any) -> None:
        """Optuna's ``study.optimize``: call ``objective(trial)`` and report its reward (:mod:`autorag_hp.optimize`)."""
        from autorag_hp.optimize import optimize
        optimize(self, objective, n_trials, **kwargs)

    def expire(self) -> int:
        """Expire every overdue trial now; return how many. (Also done lazily by :meth:`suggest`.)"""
        out = self.storage.expire(self.study, self.clock())
        self._sync()
        return len(out)

    def sync(self) -> None:
        """Apply events written by other tuners sharing the storage."""
        self._sync()
    def best(self, k: int | None = 5, *, rule: str = "policy", bounds: tuple[float, float] | None = None) -> list[Estimate]:
        """What to deploy: the top ``k`` configurations (all with ``None``), best first, each with its observed
        mean, a 95 % interval and the score it was ranked by (:mod:`autorag_hp.ranking`).

        ``rule``: ``"policy"`` (default: the policy's own recommendation), ``"posterior"`` (shrunk mean),
        ``"lcb"`` (lower confidence bound) or ``"mean"`` (raw observed mean). ``bounds``: the reward's range,
        to clip intervals to (default: the range of the rewards seen). A question reported again for the same
        configuration (``suggest(question=...)``) is averaged into one sample, not counted twice.
        """
        check_rule(rule)
        self._sync()
        with self._lock:
            return rank(self.space, self.policy.sample_stats(), k, rule=rule, policy=self.policy, bounds=bounds)

    def trials(self, state: str | None = None) -> list[TrialRecord]:
        """Every trial (optionally only ``state``'s), in creation order; a listing pages with :meth:`trial_page`."""
        return self.storage.trials(self.study, state)

    def trial_page(self, *, state: str | None = None, owner: str | None = None, after: int | None = None,
                   limit: int = 100, newest_first: bool = True) -> TrialPage:
        """One page of trials from the storage's index; a page's ``next`` is the following one's ``after``."""
        return self.storage.trial_page(self.study, state=state, owner=owner, after=after, limit=limit,
                                       newest_first=newest_first)

    def trial(self, trial_id: str) -> TrialRecord:
        return self.storage.trial(self.study, trial_id)

    @property
    def n_decisions(self) -> int:
        return self.policy.t

    @property
    def exhausted(self) -> bool:
        self._sync()
        with self._lock:
            batch_open = self._batch is not None and self._batch[1].batch_open
            return self.policy.exhausted and not batch_open

    def state_dict(self) -> dict[str, Any]:
        self._sync()
        with self._lock:
            return self.policy.state_dict()

    def export_events(self) -> Iterator[str]:
        """The event log as JSON lines."""
        return (ev.to_json() for ev in self.storage.events(self.study))

    def import_events(self, lines: Iterable[str]) -> int:
        """Append events (JSON lines from :meth:`export_events`) to this study and apply them."""
        events = [Event.from_json(line) for line in lines if line.strip()]
        for ev in events:
            self.space.validate(Config.from_json(ev.config))
        n = self.storage.import_events(self.study, events)
        self._sync()
        return n

    def close(self) -> None:
        self.storage.close()

    def __enter__(self) -> Tuner:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Tuner({self.space!r}, policy={self.policy!r}, storage={self.storage.url!r}, study={self.study!r})"
