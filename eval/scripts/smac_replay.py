"""SMAC3 (``smac``: random-forest surrogate, its intensifier racing challengers against the incumbent on
instances) played against a reward matrix with the replay's budget, as a library baseline.

Not a :class:`~autorag_hp.policies.base.Policy` (SMAC's ask/tell keeps its own state): the adapter gives SMAC the
same table, the same call budget and the same truth as :func:`autorag_hp.evaluation.replay.replay`.

* Space: one ``Categorical`` per parameter (its values' indices); instances: the questions the method may play
  (``deterministic=True``: a (configuration, question) cell is evaluated once, as the table holds one answer).
* A trial is one (configuration, question) cell = one call; cost = −reward (SMAC minimizes). The budget is the
  replay's number of calls; SMAC stops earlier when its configuration selector finds no new configuration
  (``ConfigurationSpaceExhaustedException``, common on small spaces): its incumbent is then final.
* Deployed (``best(1)``): SMAC's incumbent; the top 5 for Recall@5: the incumbent, then the other evaluated
  configurations by their mean cost over the instances they ran (SMAC's ``average_cost``).
* Facade: ``HyperparameterOptimizationFacade`` with its defaults except ``max_config_calls`` = the number of
  instances (default 3: an incumbent would never be judged on more than 3 questions) and the selector's
  ``retries`` (16 → 200, so it stops for exhaustion later).
"""

from __future__ import annotations

import random
import shutil
import tempfile

import numpy as np


def smac_replay(R: np.ndarray, space, calls: int, seed: int, truth: np.ndarray) -> dict[str, float]:
    import logging
    import warnings

    from ConfigSpace import Categorical, ConfigurationSpace
    from smac import HyperparameterOptimizationFacade as HPO
    from smac import Scenario
    from smac.runhistory.dataclasses import TrialValue

    from autorag_hp.evaluation.replay import recall_at
    from autorag_hp.evaluation.stats import normalized_regret

    logging.getLogger("smac").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore")
    random.seed(seed)  # in case SMAC or a library under it draws from the global generators (runs still are not
    np.random.seed(seed)  # exactly reproducible: 26 of 30 and 111 of 120 matched a rerun; the cause is not found)
    params = space.params
    cs = ConfigurationSpace(seed=seed)
    cs.add([Categorical(f"p{j}", [str(v) for v in range(len(p.values))]) for j, p in enumerate(params)])
    radix = [len(p.values) for p in params]
    insts = [str(q) for q in range(R.shape[1])]
    out = tempfile.mkdtemp(prefix="smac_replay_")
    try:
        sc = Scenario(cs, deterministic=True, n_trials=calls, instances=insts, seed=seed, output_directory=out,
                      name="replay")
        smac = HPO(sc, lambda config, instance, seed=0: 0.0, overwrite=True, logging_level=40,
                   intensifier=HPO.get_intensifier(sc, max_config_calls=len(insts)),
                   config_selector=HPO.get_config_selector(sc, retries=200))

        def index(cfg) -> int:
            return int(np.ravel_multi_index([int(cfg[f"p{j}"]) for j in range(len(params))], radix))

        used = 0
        while used < calls:
            try:
                info = smac.ask()
            except Exception as exc:  # noqa: BLE001 - SMAC's own end of search (exhausted space)
                if type(exc).__name__ != "ConfigurationSpaceExhaustedException":
                    raise
                break
            smac.tell(info, TrialValue(cost=-float(R[index(info.config), int(info.instance)])))
            used += 1
        rh = smac.runhistory
        inc = smac.intensifier.get_incumbent()
        seen = sorted(((rh.average_cost(c), index(c)) for c in rh.get_configs()), key=lambda t: (t[0], t[1]))
        top = ([index(inc)] if inc is not None else []) + [i for _, i in seen if inc is None or i != index(inc)]
    finally:
        shutil.rmtree(out, ignore_errors=True)
    return {"regret": normalized_regret(truth, top[0]), "recall@5": recall_at(np.array(top[:5]), truth, 5),
            "calls": float(used)}
