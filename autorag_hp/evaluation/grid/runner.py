"""Computing units in one process: retrieve once per unit, then per configuration render, generate, score.

A temperature-0 prompt already answered (in this process, by another worker, or before a restart: the table's
answer cache) is reused instead of calling the LLM again; its key is the rendered prompt plus the settings
that are neither retrieval nor prompt keys. Each cell is written in its own transaction.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from autorag_hp.evaluation.grid.plan import Unit, canonical_json
from autorag_hp.evaluation.metrics import DEFAULT_METRICS, resolve_metrics
from autorag_hp.evaluation.table import GridTable, worker_name
from autorag_hp.types import Answer, Context

#: Config keys that only choose the prompt template: the rendered prompt, already in the answer key, covers them.
PROMPT_KEYS: tuple[str, ...] = ("prompt", "prompt_template")


class UnitRunner:
    """Computes units in one process: the pipeline, the metrics and the table connection live here."""

    def __init__(self, pipeline: Any, table: GridTable, metrics: Sequence[str] | None = None,
                 retrieval_keys: Iterable[str] | None = None):
        self.pipeline = pipeline
        self.table = table
        self.metrics = resolve_metrics(metrics if metrics is not None else DEFAULT_METRICS)
        self.retrieval_keys = tuple(retrieval_keys or ())
        self.staged = all(hasattr(pipeline, a) for a in ("retrieve", "render_prompt", "generate"))
        self.worker = worker_name()
        self._memo: dict[str, dict[str, Any]] = {}
        self.llm_calls = 0
        self.cells = 0

    def _uses_llm(self, config) -> int:
        f = getattr(self.pipeline, "uses_llm", None)
        if callable(f):
            return int(bool(f(config)))
        gen = getattr(self.pipeline, "generator", None)  # the RAG pipeline's generator says llm_calls = 0 / 1
        return int(getattr(gen, "llm_calls", 1)) if gen is not None else 1

    def _gen_key(self, messages: Any, config) -> str:
        gen = {k: config[k] for k in config if k not in self.retrieval_keys and k not in PROMPT_KEYS}
        return hashlib.sha1(canonical_json([messages, gen]).encode("utf-8")).hexdigest()

    def run_unit(self, unit: Unit, done: set[tuple[str, str]] | None = None,
                 still_mine: Callable[[], bool] | None = None) -> tuple[int, int]:
        """Compute the cells of ``unit`` not in ``done`` (default: not in the table). Returns (cells, llm_calls).

        ``still_mine`` is asked before each cell; when it says False (the unit was handed to someone else,
        e.g. this worker was presumed dead), the unit is abandoned.
        """
        if done is None:
            done = self.table.done_keys()
        pending = [c for c in unit.configs if (c.id, unit.qid) not in done]
        if not pending:
            return 0, 0
        cells = calls = 0
        item = unit.item
        contexts: list[Context] = []
        t_ret = 0.0
        if self.staged:
            t0 = time.perf_counter()
            contexts = list(self.pipeline.retrieve(item.question, pending[0]))
            t_ret = time.perf_counter() - t0
        for cfg in pending:
            if still_mine is not None and not still_mine():
                break
            reused = False
            n_llm = 0
            if self.staged:
                messages = self.pipeline.render_prompt(item.question, contexts, cfg)
                deterministic = float(cfg.get("temperature", 0.0) or 0.0) == 0.0
                key = self._gen_key(messages, cfg)
                hit = (self._memo.get(key) or self.table.cached_answer(key)) if deterministic else None
                if hit is not None:
                    text, pt, ct, gl = hit["text"], hit["prompt_tokens"], hit["completion_tokens"], hit["latency_s"]
                    reused = True
                else:
                    g = self.pipeline.generate(messages, cfg)
                    text, pt, ct, gl = g.text.strip(), g.prompt_tokens, g.completion_tokens, g.latency_s
                    n_llm = self._uses_llm(cfg)
                    if deterministic:
                        rec = {"text": text, "prompt_tokens": pt, "completion_tokens": ct, "latency_s": gl}
                        self._memo[key] = rec
                        self.table.cache_answer(key, **rec)
                answer = Answer(text, tuple(contexts), int(pt), int(ct), t_ret + float(gl), n_llm)
            else:
                answer = self.pipeline.run(item.question, cfg)
                n_llm = int(answer.llm_calls)
            row = {
                "config_id": cfg.id,
                "question_id": unit.qid,
                "config": dict(cfg),
                "question": item.question,
                "reference": item.answer,
                "answer": answer.text,
                "contexts": [[c.source, c.score] for c in answer.contexts],
                "metrics": {m.name: m(answer, item) for m in self.metrics},
                "prompt_tokens": answer.prompt_tokens,
                "completion_tokens": answer.completion_tokens,
                "latency_s": answer.latency_s,
                "llm_calls": n_llm,
                "answer_reused": reused,
                "worker": self.worker,
            }
            self.table.add_rows([row], log=True)  # one transaction per cell: a kill loses at most this cell
            cells += 1
            calls += n_llm
        self.cells += cells
        self.llm_calls += calls
        return cells, calls
