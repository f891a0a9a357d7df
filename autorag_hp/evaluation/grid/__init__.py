"""The grid runner: every configuration × every question → one row (answer, every metric, tokens, latency).

Work is cut into *units*: one question × one *retrieval group* (the configurations equal on the pipeline's
``retrieval_keys``, e.g. ``chunk_size``, ``chunk_overlap``, ``embedding``, ``top_k``). A unit retrieves once
and then, per configuration, renders the prompt and generates; a temperature-0 prompt already answered (in
this run, by another worker, or before a restart: the table's answer cache) is reused instead of calling the
LLM again.

Three ways to run, one worker code path (:mod:`.executors`): one process (``workers=1``); a local pool
(``workers=N``: N spawned processes, each loading the pipeline once); distributed (``storage=URL``: units are
trials of an Optuna study in an RDB storage, PostgreSQL for several machines, handed out to any number of
processes on any machines running the same command).

Every mode resumes: cells already in the table are skipped; a killed run loses at most the cell in flight.
Every run that computes cells records this machine's CPU fingerprint in the table's meta (``cpus``): LLM
answers are bit-identical only on the same CPU kind (see :func:`autorag_hp.evaluation.cpu_kinds.made_on`).

The pipeline is duck-typed: ``.space``, ``.questions()``, and either the stages ``retrieve(question, config)``,
``render_prompt(question, contexts, config)``, ``generate(messages, config)`` (for work sharing) or just
``run(question, config) -> Answer``. ``retrieval_keys`` names the config keys that decide ``retrieve``; a
pipeline that does not say shares no retrieval between configurations. An optional ``uses_llm(config) -> bool``
tells whether ``generate`` calls an LLM (an extractive generator does not), for counting LLM calls.

Modules: :mod:`.plan` (units), :mod:`.runner` (one process computes a unit), :mod:`.executors` (inline,
local pool, Optuna-coordinated workers behind one interface), :mod:`.run` (:func:`run_grid`).

>>> summary = run_grid("python_docs_faq", "grid.sqlite", questions=100, workers=2)  # doctest: +SKIP
"""

from autorag_hp.evaluation.grid.run import run_grid

__all__ = ["run_grid"]
