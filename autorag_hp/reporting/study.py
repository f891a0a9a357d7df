"""A stored study read back for reports and exports: its trials, space, best configurations and summaries.

:func:`load_study` reads a study from any storage through the public :class:`~autorag_hp.storage.Storage`
contract (keyset pages of :meth:`Storage.trial_page`, oldest first); :func:`from_tuner` takes a live
:class:`~autorag_hp.tuner.Tuner` (``tune --report``). Both give a :class:`StudyData`, which the report
(:mod:`autorag_hp.reporting.render`), the terminal table of ``autorag-hp show`` and the Optuna / MLflow exports
read. The summaries are defined here once:

* **Arm means** (:meth:`StudyData.arm_means`): for each parameter and value, the mean reward of the reported
  trials that used that value, with a 95 % Student-t interval (:func:`autorag_hp.evaluation.stats.t_interval`)
  over those trials' rewards (a marginal: the other parameters vary underneath).
* **Exploration** (:meth:`StudyData.decisions`): one row per decision (a trial in slot 0 of its batch). A
  decision *explored* when its policy says so (``explore`` in its info: the online and epsilon-greedy
  policies); otherwise when it chose a configuration other than the *incumbent*, the configuration of highest
  observed mean over the trials reported before it was made (ties: more rewards, then configuration id); the
  first decision, with nothing reported yet, explored.
* **Best configurations**: from a Tuner, :meth:`Tuner.best` (the policy's own rule, what ``tune`` prints);
  from a storage, the reported trials folded into a policy's statistics and ranked by
  :func:`autorag_hp.ranking.rank` with the ``"posterior"`` rule (the storage does not say which policy ranked
  them), one sample per distinct (configuration, question) cell as everywhere.

>>> from autorag_hp import Tuner
>>> tuner = Tuner({"top_k": [1, 3], "prompt": ["a", "b"]}, policy="ucb", seed=0)
>>> for _ in range(6):
...     t = tuner.suggest()
...     tuner.report(t.id, float(t.config["top_k"]))
>>> data = load_study(tuner.storage, tuner.study)
>>> [(row.value, row.count) for row in data.arm_means()["top_k"]]
[(1, 3), (3, 3)]
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from autorag_hp.decision import Decision
from autorag_hp.space import Config, SearchSpace
from autorag_hp.storage import EXPIRED, PENDING, REPORTED, Storage, TrialRecord, open_storage

if TYPE_CHECKING:  # pragma: no cover
    from autorag_hp.ranking import Estimate
    from autorag_hp.tuner import Tuner

PAGE = 1000  # trials per keyset page when reading a study


@dataclass(frozen=True)
class ArmMean:
    """One parameter value's mean reward over the reported trials that used it, with its 95 % t interval
    (``lower`` / ``upper`` NaN with fewer than two rewards)."""

    param: str
    value: Any
    count: int
    mean: float
    lower: float
    upper: float


@dataclass(frozen=True)
class DecisionRow:
    """One decision: its number, the trial that made it, its configuration, and whether it explored."""

    number: int
    trial_id: str
    config: Config
    explored: bool
    created_at: float


@dataclass
class StudyData:
    """A study as read back: ``trials`` in creation order, the ``space`` (stored, or inferred from the trials'
    configurations: ``space_inferred``), ``best`` configurations ranked by ``rule``, where it came from."""

    name: str
    source: str
    space: SearchSpace
    trials: list[TrialRecord]
    best: list[Estimate]
    rule: str
    policy: str | None = None
    space_inferred: bool = False
    notes: list[str] = field(default_factory=list)
    _decisions: list[DecisionRow] | None = field(default=None, init=False, repr=False, compare=False)

    # --- views ------------------------------------------------------------------------------------------
    def reported(self) -> list[TrialRecord]:
        return [t for t in self.trials if t.state == REPORTED]

    def counts(self) -> dict[str, int]:
        out = {PENDING: 0, REPORTED: 0, EXPIRED: 0}
        for t in self.trials:
            out[t.state] = out.get(t.state, 0) + 1
        return out

    def configs(self) -> Iterator[tuple[TrialRecord, Config]]:
        cache: dict[str, Config] = {}
        for t in self.trials:
            cfg = cache.get(t.config)
            if cfg is None:
                cfg = cache[t.config] = Config.from_json(t.config)
            yield t, cfg

    def arm_means(self, level: float = 0.95) -> dict[str, list[ArmMean]]:
        """Per parameter, one :class:`ArmMean` per value of the space (in the space's order; values no reported
        trial used have count 0 and NaN mean)."""
        from autorag_hp.evaluation.stats import t_interval

        rewards: dict[str, list[float]] = {}  # per configuration first: a Config per configuration, not per trial
        for t in self.trials:
            if t.state == REPORTED:
                rewards.setdefault(t.config, []).append(float(t.reward))
        by: dict[tuple[str, str], list[float]] = {}
        for text, values in rewards.items():
            for name, value in Config.from_json(text).items():
                by.setdefault((name, _canon(name, value)), []).extend(values)
        out: dict[str, list[ArmMean]] = {}
        for name in self.space.names:
            rows = []
            for value in self.space[name].values:
                got = by.get((name, _canon(name, value)), [])
                mean, lo, hi = t_interval(got, level)
                rows.append(ArmMean(name, value, len(got), mean, lo, hi))
            out[name] = rows
        return out

    def decisions(self) -> list[DecisionRow]:
        """One row per decision, in the order they were made (see the module doc for ``explored``); computed once."""
        if self._decisions is None:
            self._decisions = self._find_decisions()
        return self._decisions

    def _find_decisions(self) -> list[DecisionRow]:
        done = sorted((t for t in self.trials if t.state == REPORTED and t.reported_at is not None),
                      key=lambda t: (t.reported_at, t.created_at))
        sums: dict[str, list[float]] = {}  # config json -> [count, sum, -id]: max() of _rank is the incumbent
        incumbent: str | None = None
        j = 0
        out: list[DecisionRow] = []
        for t, cfg in self.configs():
            d = Decision.from_info(t.info)
            if d.slot != 0:
                continue
            while j < len(done) and done[j].reported_at <= t.created_at:
                r = done[j]
                acc = sums.setdefault(r.config, [0.0, 0.0, -int(r.config_id, 16)])
                before = _rank(acc) if acc[0] else None
                acc[0] += 1.0
                acc[1] += float(r.reward)
                if r.config == incumbent:
                    if _rank(acc) < before:  # it fell: any configuration may lead now
                        incumbent = max(sums, key=lambda c: _rank(sums[c]))
                elif incumbent is None or _rank(acc) > _rank(sums[incumbent]):
                    incumbent = r.config
                j += 1
            said = d.policy.get("explore")
            explored = bool(said) if said is not None else t.config != incumbent
            number = d.number if d.number is not None else len(out)
            out.append(DecisionRow(number, t.trial_id, cfg, explored, t.created_at))
        return out

    def exploration_share(self) -> float:
        rows = self.decisions()
        return sum(r.explored for r in rows) / len(rows) if rows else math.nan


def _canon(name: str, value: Any) -> str:
    """One parameter value's identity (1, 1.0 and True differ), as a configuration's canonical JSON has it."""
    return Config({name: value}).to_json()


def _rank(acc: list[float]) -> tuple[float, float, float]:
    """Incumbent order: higher mean, then more rewards, then the lower configuration id."""
    return acc[1] / acc[0], acc[0], acc[2]


# --- loading ------------------------------------------------------------------------------------------------
def read_trials(storage: Storage, study: str, *, page: int = PAGE) -> list[TrialRecord]:
    """Every trial of ``study`` in creation order, read by keyset pages from the storage's index."""
    out: list[TrialRecord] = []
    after = None
    while True:
        got = storage.trial_page(study, after=after, limit=page, newest_first=False)
        out.extend(got.trials)
        if got.next is None:
            return out
        after = got.next


def infer_space(trials: list[TrialRecord]) -> SearchSpace:
    """The space the trials' configurations span: every parameter they set, with the values they used (numbers
    ascending, other values in order of first use)."""
    values: dict[str, dict[str, Any]] = {}
    for text in dict.fromkeys(t.config for t in trials):  # each configuration once, in order of first use
        for name, value in Config.from_json(text).items():
            values.setdefault(name, {}).setdefault(_canon(name, value), value)
    spec = {}
    for name, seen in values.items():
        vals = list(seen.values())
        if all(isinstance(v, int | float) and not isinstance(v, bool) for v in vals):
            vals.sort()
        spec[name] = vals
    return SearchSpace(spec)


def masked(url: str) -> str:
    """A URL with its password masked (``postgresql://user:***@host/db``); other text as it is."""
    if "://" not in url or "@" not in url:
        return url
    import sqlalchemy as sa

    try:
        return sa.engine.make_url(url).render_as_string(hide_password=True)
    except sa.exc.ArgumentError:
        return url


def open_existing(storage: Storage | str) -> Storage:
    """:func:`open_storage` for reading: a SQLite URL whose file does not exist is an error (opening it would
    create an empty database under a mistyped name), not an empty storage."""
    if isinstance(storage, str) and storage.startswith("sqlite:"):
        import sqlalchemy as sa

        from autorag_hp.errors import InvalidStorageError

        path = sa.engine.make_url(storage).database
        if path and path != ":memory:" and not path.startswith("file:") and not Path(path).exists():
            raise InvalidStorageError(f"no SQLite database at {Path(path).resolve()} ({storage}); check the path")
    return open_storage(storage)


def load_study(storage: Storage | str, study: str = "default", *, top: int = 5) -> StudyData:
    """Read ``study`` from ``storage`` (a Storage or a URL) as :class:`StudyData`; a clear error naming the
    studies there when it has no such study, or when the study has no trials yet."""
    from autorag_hp.errors import UnknownStudyError
    from autorag_hp.policies import make_policy
    from autorag_hp.ranking import rank

    st = open_existing(storage)
    names = st.studies()
    if study not in names:
        raise UnknownStudyError(f"no study {study!r} in {masked(st.url)}; studies there: {', '.join(names) or 'none'}")
    trials = read_trials(st, study)
    if not trials:
        raise UnknownStudyError(f"study {study!r} in {masked(st.url)} has no trials yet; nothing to show")
    stored = st.study_meta(study).get("space")  # the space the study was opened with: untried values included
    space = SearchSpace(stored) if stored else infer_space(trials)
    fold = make_policy("random", space, seed=0)
    for t, cfg in StudyData(study, st.url, space, trials, [], "posterior").configs():
        if t.state == REPORTED:
            d = Decision.from_info(t.info)
            fold.update(cfg, float(t.reward), d.weight, d)
    best = rank(space, fold.sample_stats(), top, rule="posterior")
    note = ("the space is inferred from the trials' configurations (values never tried are not listed); the best "
            "configurations are ranked by the posterior rule, not the policy's own")
    return StudyData(study, masked(st.url), space, trials, best, "posterior", None, True, [note])


def from_tuner(tuner: Tuner, *, top: int = 5) -> StudyData:
    """A live tuner's study: its own space and :meth:`Tuner.best` (the policy's rule)."""
    trials = read_trials(tuner.storage, tuner.study)
    return StudyData(tuner.study, masked(tuner.storage.url), tuner.space, trials, tuner.best(top), "policy",
                     tuner.policy.name, False, [])
