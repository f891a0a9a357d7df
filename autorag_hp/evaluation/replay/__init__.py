"""Replay benchmark: evaluate tuning policies against a precomputed grid table in seconds.

A grid table holds one row per (configuration, question). A :class:`ReplayTable` turns it into a
``configurations × questions`` matrix per reward (e.g. the paper's ``w·acc − (1−w)·tokens/t_max`` at one
``w``); :func:`replay` then plays a policy against it:

* a **question stream**: the table's questions in a new random order per seed (re-shuffled at each pass);
* each decision the policy picks a configuration and pays **one LLM call per (configuration, question)** it
  looks at: a batch of ``B`` consecutive questions of the stream; it sees the rewards of those cells only;
* at every checkpoint (a share of grid search's calls, ``C × Q``) we record, from the policy's state:
  Recall@k for k in ``ks``, the mean reward served so far (what online users got), and the true grid score
  (mean reward over all questions) of the configuration the policy would deploy (its top-1).

Ground truth. Grid's ranking is the mean reward of each configuration over *all* questions of the table.
Recall@k = |method's top-k ∩ grid's top-k| / k, where a configuration counts as a hit when its grid score
is at least grid's k-th best score (identical to set overlap unless grid scores tie at the boundary, where
the overlap would depend on an arbitrary tie-break).

Which top-k. What the method *deploys*: the recommendation of :mod:`autorag_hp.ranking` under ``rule``
(default ``"policy"``: exactly what :meth:`Tuner.best` returns for that policy on the same event log;
``"mean"`` is the raw observed mean, ``"posterior"`` / ``"lcb"`` the shrunk mean and the lower bound). Each
reward is reported with its question (``info["question"]``), so a (configuration, question) cell that the
stream revisits after it wraps around is averaged into one sample, as ``Tuner.suggest(question=...)`` does
live; the revisit is still charged as a call (a served user's question costs one).

Held-out truth. With ``truth=`` (``run_bench(holdout=...)``) the method tunes on some questions and is judged
on others: grid's ranking, ``recall@k``, ``deployed`` and ``regret`` (normalized: 0 = the truly best
configuration, 1 = a median one) come from the held-out questions, so agreeing with grid's noise on the
questions the method saw earns nothing.

Grid as a method. ``"grid"`` in a replay is grid search over a question *subsample*: at a budget of ``b``
calls every configuration has been evaluated on the first ``b / C`` questions of the stream; at 100 % it is
the full grid (Recall = 1 by definition). It is the cost reference, and a strong baseline at small budgets.

Speed. Policies are driven directly through the :class:`Policy` API (``select`` / ``observe_decision`` /
``update`` with weight ``1/B``, exactly the calls :class:`~autorag_hp.tuner.Tuner` makes), on a numpy reward
matrix; ``tests/test_replay.py`` checks that driving the same policy through a Tuner gives the same numbers.

>>> from autorag_hp.space import SearchSpace
>>> table = SyntheticTable.make(SearchSpace({"a": [0, 1, 2], "b": [0, 1, 2]}), seed=0).replay_table(40)
>>> R = table.reward_matrix(0.5)
>>> res = replay(R, table.space, "hier_ucb", batch=4, seed=0, fractions=[0.2, 1.0])
>>> sorted(res)
['calls', 'deployed', 'recall@3', 'recall@5', 'regret', 'served']
"""

from autorag_hp.evaluation.replay.bench import BenchResult, holdout_split, run_bench, split_method
from autorag_hp.evaluation.replay.live import live_run
from autorag_hp.evaluation.replay.loop import DEFAULT_FRACTIONS, question_stream, replay
from autorag_hp.evaluation.replay.snapshot import write_snapshot
from autorag_hp.evaluation.replay.synthetic import SyntheticTable
from autorag_hp.evaluation.replay.table import ReplayTable, open_rows
from autorag_hp.evaluation.replay.truth import grid_scores, recall_at

__all__ = [
    "DEFAULT_FRACTIONS",
    "BenchResult",
    "ReplayTable",
    "SyntheticTable",
    "grid_scores",
    "holdout_split",
    "live_run",
    "open_rows",
    "question_stream",
    "recall_at",
    "replay",
    "run_bench",
    "split_method",
    "write_snapshot",
]
