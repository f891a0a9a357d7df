"""Computing units in one process: retrieve once per unit, then per configuration render, generate, score.

A temperature-0 prompt already answered (in this process, by another worker, or before a restart: the table's
answer cache) is reused instead of calling the LLM again; its key is the rendered prompt plus the settings
that are neither retrieval nor prompt keys. Each cell is written in its own transaction.

:meth:`UnitRunner.run_units` computes several units together with batched generation (``--generate-batch N``): all their
prompts are rendered first, then answered N at a time by the generator's ``generate_batch``, grouped by their
generation settings (one padded forward pass per batch: a small model's decode on a CPU is bound by reading its
weights, so N answers cost little more than one).
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
            row = self._row(unit, cfg, answer, reused)
            self.table.add_rows([row], log=True)  # one transaction per cell: a kill loses at most this cell
            cells += 1
            calls += n_llm
        self.cells += cells
        self.llm_calls += calls
        return cells, calls

    def _row(self, unit: Unit, cfg, answer: Answer, reused: bool) -> dict[str, Any]:
        item = unit.item
        return {
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
            "llm_calls": answer.llm_calls,
            "answer_reused": reused,
            "worker": self.worker,
        }

    def run_units(self, units: Sequence[Unit], done: set[tuple[str, str]] | None = None,
                  batch: int = 8) -> tuple[int, int]:
        """The cells of ``units`` not in ``done``, their LLM answers ``batch`` at a time (see the module docstring).

        Prompts are grouped by their generation settings (temperature, max_new_tokens, ...), sorted by length
        within a group (less padding) and answered by ``pipeline.generate_batch``; a temperature-0 prompt already
        answered (or twice in these units) is answered once, as in :meth:`run_unit`. The ``latency_s`` of a
        batched answer is its share of the batch's wall time. Without a batching pipeline or with ``batch <= 1``
        this is :meth:`run_unit` per unit. Returns (cells, llm_calls)."""
        if done is None:
            done = self.table.done_keys()
        if batch <= 1 or not self.staged or not callable(getattr(self.pipeline, "generate_batch", None)):
            totals = [self.run_unit(u, done) for u in units]
            return sum(c for c, _ in totals), sum(k for _, k in totals)
        cells: list[tuple[Unit, Any, list[Context], float, Any, str, bool]] = []
        for unit in units:
            pending = [c for c in unit.configs if (c.id, unit.qid) not in done]
            if not pending:
                continue
            t0 = time.perf_counter()
            contexts = list(self.pipeline.retrieve(unit.item.question, pending[0]))
            t_ret = time.perf_counter() - t0
            for cfg in pending:
                messages = self.pipeline.render_prompt(unit.item.question, contexts, cfg)
                deterministic = float(cfg.get("temperature", 0.0) or 0.0) == 0.0
                cells.append((unit, cfg, contexts, t_ret, messages, self._gen_key(messages, cfg), deterministic))
        answers: dict[int, tuple[dict[str, Any], bool, int]] = {}  # cell -> (answer record, reused, llm calls)
        groups: dict[str, list[int]] = {}
        first: dict[str, int] = {}  # temperature-0 key -> the cell that computes it
        for i, (_, cfg, _, _, _, key, det) in enumerate(cells):
            if det:
                hit = self._memo.get(key) or self.table.cached_answer(key)
                if hit is not None:
                    answers[i] = (hit, True, 0)
                    continue
                if key in first:
                    continue
                first[key] = i
            settings = {k: cfg[k] for k in cfg if k not in self.retrieval_keys and k not in PROMPT_KEYS}
            groups.setdefault(canonical_json(settings), []).append(i)
        for idxs in groups.values():
            idxs.sort(key=lambda i: len(canonical_json(cells[i][4])))
            for s in range(0, len(idxs), batch):
                chunk = idxs[s:s + batch]
                outs = self.pipeline.generate_batch([cells[i][4] for i in chunk], cells[chunk[0]][1])
                for i, g in zip(chunk, outs, strict=True):
                    rec = {"text": g.text.strip(), "prompt_tokens": g.prompt_tokens,
                           "completion_tokens": g.completion_tokens, "latency_s": g.latency_s / len(chunk)}
                    answers[i] = (rec, False, self._uses_llm(cells[i][1]))
                    if cells[i][6]:
                        self._memo[cells[i][5]] = rec
                        self.table.cache_answer(cells[i][5], **rec)
        n_cells = n_calls = 0
        for i, (unit, cfg, contexts, t_ret, _, key, _) in enumerate(cells):
            rec, reused, n_llm = answers.get(i) or (self._memo[key], True, 0)  # a repeat of an earlier cell
            answer = Answer(rec["text"], tuple(contexts), int(rec["prompt_tokens"]), int(rec["completion_tokens"]),
                            t_ret + float(rec["latency_s"]), n_llm)
            self.table.add_rows([self._row(unit, cfg, answer, reused)], log=True)
            n_cells, n_calls = n_cells + 1, n_calls + n_llm
        self.cells += n_cells
        self.llm_calls += n_calls
        return n_cells, n_calls
