"""The ask/tell tuner: ``suggest()`` a configuration, ``report()`` its reward, read ``best()``.

>>> from autorag_hp import SearchSpace, Tuner
>>> tuner = Tuner(SearchSpace({"top_k": [1, 3, 5], "prompt": ["concise", "cite"]}), policy="hier_ucb", seed=0)
>>> trial = tuner.suggest()
>>> tuner.report(trial.id, 0.5)
>>> [row.count for row in tuner.best(1)]
[1]

How it works. The storage's event log is the source of truth and the policy's state is a fold over it:
before each decision the tuner reads the events it has not seen (its own and those of other processes
sharing the storage) and applies them in log order. A tuner reopened on the same storage therefore has the
same statistics, and, with the same seed, makes the same next decision as one that never stopped.

Batches. With ``batch_size=B`` (the paper's B = 4) B consecutive suggestions share one configuration and
form one decision. Each of the B rewards is credited to the policy with weight 1/B as it arrives, so a
complete batch counts as one pull with the batch's mean reward, a partly reported one counts fractionally,
and a trial that never reports delays nothing. :meth:`best` ranks configurations on every individual reward
(one sample per distinct question when trials name their question).

Snapshots. Every ``snapshot_every`` events (by default 1,000 on a storage that outlives the process; none in
memory, where nothing restarts) the tuner stores its folded state (the policy's
``state_dict``, the open batch, the last event folded) with the event that makes it due, in the same
transaction. A tuner opening the study reads the newest snapshot of its *version* (a digest of the snapshot
format, the policy's name, parameters, seed and initial state, and the space's fingerprint) and folds only the
events after it; a snapshot of another version, or one that does not load, is ignored and the state is folded
from the log, as without snapshots. Restoring is exact: the same state and the same next decisions.

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
from typing import Any, NamedTuple

from autorag_hp.decision import Decision
from autorag_hp.errors import InvalidRewardError
from autorag_hp.policies import Policy, make_policy
from autorag_hp.ranking import Estimate, check_rule, rank
from autorag_hp.space import Config, SearchSpace
from autorag_hp.storage import EXPIRE, PENDING, REPORT, SUGGEST, Event, Storage, TrialRecord, open_storage
from autorag_hp.storage.base import Snapshot, TrialPage

SNAPSHOT_FORMAT = 1  # bump when what a snapshot holds changes: older snapshots are then ignored
SNAPSHOT_EVERY = 1000  # events between snapshots on a storage that outlives the process (snapshot_every="auto")


class Trial(NamedTuple):
    """One suggestion: evaluate ``config`` on one question and report the reward under ``id``.

    ``decision`` / ``slot`` are the decision's number and the trial's slot in its batch; ``info`` is the stored
    flat form and :attr:`record` the typed :class:`~autorag_hp.decision.Decision`. A Trial is what the tuner
    hands out; what the storage keeps of it (state, reward, times) is its
    :class:`~autorag_hp.storage.TrialRecord`, read back with :meth:`Tuner.trial` / :meth:`Tuner.trials` (the
    split Optuna makes between ``Trial`` and ``FrozenTrial``)."""

    id: str
    config: Config
    decision: int
    slot: int
    info: dict[str, Any] = {}  # noqa: RUF012 - never mutated
    created_at: float = 0.0
    expires_at: float | None = None

    @property
    def record(self) -> Decision:
        """The typed decision: the tuner's fields apart from the policy's own ``policy`` info."""
        return Decision.from_info(self.info)


BestRow = Estimate  # the row :meth:`Tuner.best` returns (kept under its old name)


def question_key(question: Any) -> str:
    """The digest a trial records of its question (12 hex digits of SHA-1 of the stripped text)."""
    if not isinstance(question, str) or not question.strip():
        raise TypeError(f"question must be a non-empty string (its text or a stable id), got {question!r}")
    return hashlib.sha1(question.strip().encode("utf-8")).hexdigest()[:12]


def _check_reward(reward: Any) -> float:
    if type(reward) is float:  # the common case, without the ABC check
        if math.isfinite(reward):
            return reward
        raise InvalidRewardError(f"reward must be finite, got {reward!r}; map failures to a finite penalty instead")
    if isinstance(reward, bool) or not isinstance(reward, numbers.Real):
        raise InvalidRewardError(f"reward must be a real number, got {type(reward).__name__} {reward!r}")
    value = float(reward)
    if not math.isfinite(value):
        raise InvalidRewardError(f"reward must be finite, got {value!r}; map failures to a finite penalty instead")
    return value


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
    ):
        self.space = space if isinstance(space, SearchSpace) else SearchSpace(space)
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
        if trial_timeout is not None and not (isinstance(trial_timeout, numbers.Real) and trial_timeout > 0):
            raise ValueError(f"trial_timeout must be a positive number of seconds or None, got {trial_timeout!r}")
        if not isinstance(study, str) or not study:
            raise ValueError("study must be a non-empty string")
        if snapshot_every not in (None, "auto") and (isinstance(snapshot_every, bool) or not isinstance(snapshot_every, int)
                                                     or snapshot_every < 0):
            raise ValueError(f"snapshot_every must be a number of events >= 0, None or 'auto', got {snapshot_every!r}")
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
        self._lock = threading.RLock()
        self._seq = 0
        self._batch: tuple[Config, Decision] | None = None
        self._configs: dict[str, Config] = {}
        self._next_expiry_check = -math.inf
        if snapshot_every == "auto":
            snapshot_every = None if self.storage.url == "memory" else SNAPSHOT_EVERY
        self.snapshot_every: int | None = snapshot_every or None
        self._initial_state = self.policy.state_dict()
        ident = json.dumps([SNAPSHOT_FORMAT, self.space.fingerprint, self._initial_state], sort_keys=True, default=str)
        self.snapshot_version = hashlib.sha256(ident.encode()).hexdigest()[:32]
        self._snap_seq = 0  # the newest snapshot this tuner read or wrote
        if self.snapshot_every:
            self._restore(self.storage.snapshot(study, self.snapshot_version))
        self._sync()
        if self.snapshot_every and self._seq - self._snap_seq >= self.snapshot_every:
            self.save_snapshot()  # the next start reads this one instead of folding the same tail again

    @property
    def last_seq(self) -> int:
        """The sequence number of the last storage event this tuner has folded into its state (0: none)."""
        return self._seq

    @property
    def open_batch(self) -> tuple[Config, Decision] | None:
        """The last decision's configuration and record while its batch still has slots to hand out."""
        with self._lock:
            return self._batch if self._batch is not None and self._batch[1].batch_open else None

    # --- snapshots ----------------------------------------------------------------------------------------
    def snapshot(self) -> Snapshot:
        """The folded state as of :attr:`last_seq` (what start-up restores instead of folding the log up to it)."""
        with self._lock:
            batch = None if self._batch is None else [self._batch[0].to_json(), self._batch[1].to_info()]
            state = {"format": SNAPSHOT_FORMAT, "policy": self.policy.state_dict(), "batch": batch}
            return Snapshot(self.snapshot_version, self._seq, json.dumps(state, separators=(",", ":"), default=str))

    def save_snapshot(self) -> None:
        """Store :meth:`snapshot` now (it is also stored every ``snapshot_every`` events with an event)."""
        with self._lock:
            snap = self.snapshot()
            self.storage.save_snapshot(self.study, snap)
            self._snap_seq = snap.seq

    def _due_snapshot(self) -> Snapshot | None:
        if self.snapshot_every and self._seq - self._snap_seq >= self.snapshot_every:
            return self.snapshot()
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
        except Exception:  # noqa: BLE001 - a snapshot that does not load is rebuilt from the log
            self.policy.load_state_dict(self._initial_state)
            return
        self._batch, self._seq, self._snap_seq = batch, int(snap.seq), int(snap.seq)

    # --- the event fold ---------------------------------------------------------------------------------
    def _config(self, text: str) -> Config:
        cfg = self._configs.get(text)
        if cfg is None:
            cfg = self.space.validate(Config.from_json(text))
            self._configs[text] = cfg
        return cfg

    def _apply(self, seq: int, kind: str, config: str | Config, reward: float | None,
               info: Decision | Mapping[str, Any]) -> None:
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
        self._seq = seq

    def _sync(self) -> None:
        for ev in self.storage.events(self.study, after=self._seq):
            self._apply(ev.seq, ev.kind, ev.config, ev.reward, ev.info)

    def _maybe_expire(self, now: float) -> None:
        if self.trial_timeout is None or now < self._next_expiry_check:
            return
        self.storage.expire(self.study, now)
        self._next_expiry_check = now + min(self.trial_timeout / 4.0, 1.0)

    # --- ask / tell -------------------------------------------------------------------------------------
    def suggest(self, question: str | None = None, *, owner: str | None = None) -> Trial:
        """Hand out the next trial. Raises :class:`SpaceExhaustedError` when the policy has nothing left.

        ``question`` (optional: its text or a stable id) identifies what the trial will answer; the trial
        records only a digest of it. The ranking then counts one sample per distinct (configuration, question)
        cell, so a question asked again does not narrow the interval as if it were new evidence. ``owner``
        (optional): who asked, recorded on the trial (:meth:`trial_page` can list one owner's trials)."""
        with self._lock:
            now = self.clock()
            self._maybe_expire(now)
            self._sync()
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
            snap = self._due_snapshot()
            seq = self.storage.suggest(self.study, rec, snap)
            if snap is not None:
                self._snap_seq = snap.seq
            if seq == self._seq + 1:
                self._apply(seq, SUGGEST, cfg, None, d)
            else:
                self._sync()
            return Trial(rec.trial_id, cfg, d.number, d.slot, info, now, expires)

    ask = suggest

    def report(self, trial_id: str, reward: float) -> None:
        """Record ``reward`` (a finite real number) for the trial. Nothing is stored if it raises."""
        if not isinstance(trial_id, str) or not trial_id:
            raise TypeError(f"trial_id must be a non-empty string, got {type(trial_id).__name__} {trial_id!r}")
        value = _check_reward(reward)
        with self._lock:
            now = self.clock()
            snap = self._due_snapshot()
            seq, tr = self.storage.report(self.study, trial_id, value, now, snap)
            if snap is not None:
                self._snap_seq = snap.seq
            if seq == self._seq + 1:
                self._apply(seq, REPORT, tr.config, value, tr.info)

    tell = report

    def expire(self) -> int:
        """Expire every overdue trial now; return how many. (Also done lazily by :meth:`suggest`.)"""
        with self._lock:
            out = self.storage.expire(self.study, self.clock())
            self._sync()
            return len(out)

    def sync(self) -> None:
        """Apply events written by other tuners sharing the storage."""
        with self._lock:
            self._sync()

    # --- results ----------------------------------------------------------------------------------------
    def best(self, k: int | None = 5, *, rule: str = "policy", bounds: tuple[float, float] | None = None) -> list[Estimate]:
        """What to deploy: the top ``k`` configurations (all with ``None``), best first, each with its observed
        mean, a 95 % interval and the score it was ranked by (:mod:`autorag_hp.ranking`).

        ``rule``: ``"policy"`` (default: the policy's own recommendation), ``"posterior"`` (shrunk mean),
        ``"lcb"`` (lower confidence bound) or ``"mean"`` (raw observed mean). ``bounds``: the reward's range,
        to clip intervals to (default: the range of the rewards seen). A question reported again for the same
        configuration (``suggest(question=...)``) is averaged into one sample, not counted twice.
        """
        check_rule(rule)
        with self._lock:
            self._sync()
            return rank(self.space, self.policy.sample_stats(), k, rule=rule, policy=self.policy, bounds=bounds)

    def trials(self, state: str | None = None) -> list[TrialRecord]:
        """Every trial (optionally only those in ``state``), in creation order: reads the whole study; a listing
        should page with :meth:`trial_page`."""
        return self.storage.trials(self.study, state)

    def trial_page(self, *, state: str | None = None, owner: str | None = None, after: int | None = None,
                   limit: int = 100, newest_first: bool = True) -> TrialPage:
        """One page of trials from the storage's index (:meth:`Storage.trial_page`); pass a page's ``next`` as
        ``after`` for the following one."""
        return self.storage.trial_page(self.study, state=state, owner=owner, after=after, limit=limit,
                                       newest_first=newest_first)

    def trial(self, trial_id: str) -> TrialRecord:
        return self.storage.trial(self.study, trial_id)

    @property
    def n_decisions(self) -> int:
        return self.policy.t

    @property
    def exhausted(self) -> bool:
        with self._lock:
            self._sync()
            batch_open = self._batch is not None and self._batch[1].batch_open
            return self.policy.exhausted and not batch_open

    def state_dict(self) -> dict[str, Any]:
        with self._lock:
            self._sync()
            return self.policy.state_dict()

    # --- the log ----------------------------------------------------------------------------------------
    def export_events(self) -> Iterator[str]:
        """The event log as JSON lines."""
        for ev in self.storage.events(self.study):
            yield ev.to_json()

    def import_events(self, lines: Iterable[str]) -> int:
        """Append events (JSON lines from :meth:`export_events`) to this study and apply them."""
        events = [Event.from_json(line) for line in lines if line.strip()]
        for ev in events:
            self.space.validate(Config.from_json(ev.config))
        with self._lock:
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
