"""The grid table: one row per (configuration, question), in SQLite (a file) or PostgreSQL (for many machines).

A table carries the fingerprint of the search space it was computed for; opening it with a different space
raises :class:`TableMismatchError` (so two grids never mix). Rows are insert-once (primary key
``(table, config_id, question_id)``): writing a row twice keeps the first, which makes resumption and
distributed workers safe. Besides rows it holds

- ``grid_answers``: answers of temperature-0 prompts, keyed by a hash of the rendered prompt and the
  generation settings, so identical prompts are answered once across configurations, workers and restarts;
- ``grid_log``: one line per computed cell (worker, time) — how exactly-once is checked;
- ``grid_claims``: which Optuna trial owns a unit of work (distributed mode);
- ``grid_runs``: one line per runner invocation (wall time, cells, LLM calls).

Its meta also says which CPU kinds computed it (``meta()["cpus"]``: one
:func:`~autorag_hp.generators.accel.cpu_fingerprint` per kind, recorded by every run that computed cells, an
``{"capability": None, ...}`` entry for rows imported from an export that recorded none); what a kind is and
when two match is :mod:`autorag_hp.evaluation.cpu_kinds`.

A table is written to and read back from files by :mod:`autorag_hp.evaluation.table_export`::

    table = GridTable.open("grid.sqlite", space=space)      # or "postgresql://postgres@127.0.0.1/test"
    table.export("eval/results/grid.jsonl.gz")
"""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from autorag_hp.errors import AutoRAGHPError
from autorag_hp.evaluation.cpu_kinds import cpu_key
from autorag_hp.storage.urls import create_schema, database_url, open_engine


class TableMismatchError(AutoRAGHPError, ValueError):
    """The table was computed for a different search space (or pipeline) than the one given."""


_md = sa.MetaData()


def _required(name: str, type_: Any) -> sa.Column:
    return sa.Column(name, type_, nullable=False)


def _keyed(name: str, *columns: sa.Column) -> sa.Table:
    """A table whose primary key starts with the grid's name (several grids can share a database)."""
    return sa.Table(name, _md, sa.Column("table_name", sa.String(200), primary_key=True), *columns)


def _appended(name: str, *columns: sa.Column) -> sa.Table:
    """An append-only record: an autoincrement id, the grid's name (indexed), then ``columns``."""
    return sa.Table(name, _md, sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
                    sa.Column("table_name", sa.String(200), nullable=False, index=True), *columns,
                    sqlite_autoincrement=True)


def _generation_cost() -> list[sa.Column]:
    """What one generation cost: stored with each row and with each cached answer."""
    return [_required("prompt_tokens", sa.Integer), _required("completion_tokens", sa.Integer),
            _required("latency_s", sa.Float)]


META = _keyed("grid_meta", sa.Column("key", sa.String(100), primary_key=True), _required("value", sa.Text))
ROWS = _keyed(  # column order is the order of an export's CSV columns
    "grid_rows",
    sa.Column("config_id", sa.String(64), primary_key=True),
    sa.Column("question_id", sa.String(200), primary_key=True),
    *(_required(n, sa.Text) for n in ("config", "question")),
    sa.Column("reference", sa.Text),
    *(_required(n, sa.Text) for n in ("answer", "contexts", "metrics")),
    *_generation_cost(),
    _required("llm_calls", sa.Integer),
    _required("answer_reused", sa.Integer),
    _required("worker", sa.String(200)),
    _required("created_at", sa.Float),
)
ANSWERS = _keyed("grid_answers", sa.Column("prompt_key", sa.String(64), primary_key=True),
                 _required("text", sa.Text), *_generation_cost())
CLAIMS = _keyed("grid_claims", sa.Column("unit", sa.Integer, primary_key=True), _required("owner", sa.Integer))
LOG = _appended("grid_log", _required("config_id", sa.String(64)), _required("question_id", sa.String(200)),
                _required("worker", sa.String(200)), _required("at", sa.Float))
RUNS = _appended(
    "grid_runs",
    *(_required(n, sa.Float) for n in ("started_at", "wall_s")),
    *(_required(n, sa.Integer) for n in ("cells", "llm_calls", "workers")),
    _required("host", sa.String(200)),
)


def to_url(target: str | os.PathLike) -> str:
    """A path becomes ``sqlite:///path``; ``postgresql://`` URLs get the psycopg 3 driver (:func:`database_url`)."""
    return database_url(target, paths=True)


def with_imported_runs(totals: Mapping[str, Any], imported: Mapping[str, Any] | None) -> dict[str, Any]:
    """``GridTable.totals()`` plus the runs whose rows were imported (``--import``, meta ``imported_runs``): rows
    and LLM calls already count every row, wall time and runs count only the table's own runs until added here."""
    imported = imported or {}
    return {**totals, "wall_s": (totals.get("wall_s") or 0) + (imported.get("wall_s") or 0),
            "runs": (totals.get("runs") or 0) + (imported.get("runs") or 0)}


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


# ------------------------------------------------------------------------------------------ recorded CPU kinds
CPU_META_PREFIX = "cpu:"  # one meta key per CPU kind: concurrent machines each insert theirs, none is lost


class GridTable:
    """Rows of one grid in a SQL database. Safe to share between processes (each opens its own)."""

    def __init__(self, url: str, name: str = "grid"):
        self.url = to_url(url)
        self.name = name
        self.engine = open_engine(self.url, pool_per_connection=True)  # many worker processes share the file
        self.dialect = self.engine.dialect.name
        create_schema(self.engine, _md)  # concurrent first opens would race on CREATE TABLE

    # ------------------------------------------------------------------------------------------ opening
    @classmethod
    def open(
        cls,
        url: str | os.PathLike,
        name: str = "grid",
        *,
        space: Any = None,
        meta: Mapping[str, Any] | None = None,
    ) -> GridTable:
        """Open (creating if new) the table ``name`` at ``url``.

        With ``space``, a new table records its fingerprint, and an existing one must match it.
        ``meta`` values are recorded when absent; a recorded ``pipeline`` / ``questions`` that differs raises too.
        """
        t = cls(str(url), name)
        if space is not None:
            t.check_space(space)
        for k, v in (meta or {}).items():
            old = t.get_meta(k)
            if old is None:
                t.set_meta(k, v)
            elif k in ("pipeline", "questions", "metrics") and old != v:
                raise TableMismatchError(
                    f"table {name!r} at {t.url} was computed with {k}={old!r}, not {v!r}; "
                    "use another --out (or --table) for a different grid"
                )
        return t

    def check_space(self, space: Any) -> None:
        fp = getattr(space, "fingerprint", None)
        spec = space.to_dict() if hasattr(space, "to_dict") else None
        old = self.get_meta("space_fingerprint")
        if old is None:
            self.insert_meta({"space_fingerprint": fp, "space": spec})
            old = self.get_meta("space_fingerprint")
        if old != fp:
            raise TableMismatchError(
                f"table {self.name!r} at {self.url} holds a grid over a different search space "
                f"(fingerprint {old}, space {json.dumps(self.get_meta('space'))}) than the one given "
                f"(fingerprint {fp}, space {json.dumps(spec)}); write to another --out, or pass the same space"
            )

    # ------------------------------------------------------------------------------------------ meta
    def insert_meta(self, values: Mapping[str, Any]) -> None:
        """Record each value whose key has none yet (the first writer wins: safe across processes)."""
        with self.engine.begin() as c:
            for k, v in values.items():
                self._insert_ignore(c, META, {"table_name": self.name, "key": k, "value": json.dumps(v)})

    def get_meta(self, key: str, default: Any = None) -> Any:
        with self.engine.connect() as c:
            v = c.execute(
                sa.select(META.c.value).where(META.c.table_name == self.name, META.c.key == key)
            ).scalar()
        return default if v is None else json.loads(v)

    def set_meta(self, key: str, value: Any) -> None:
        with self.engine.begin() as c:
            c.execute(META.delete().where(META.c.table_name == self.name, META.c.key == key))
            c.execute(META.insert().values(table_name=self.name, key=key, value=json.dumps(value)))

    def meta(self) -> dict[str, Any]:
        """Every meta value; the recorded CPU kinds are gathered into ``"cpus"`` (a list, sorted by key)."""
        with self.engine.connect() as c:
            rows = c.execute(sa.select(META.c.key, META.c.value).where(META.c.table_name == self.name)).all()
        out = {k: json.loads(v) for k, v in rows if not k.startswith(CPU_META_PREFIX)}
        cpus = {cpu_key(fp): fp for fp in out.get("cpus") or []}  # a copy's (export to .sqlite) folded list
        cpus.update({k[len(CPU_META_PREFIX):]: json.loads(v) for k, v in rows if k.startswith(CPU_META_PREFIX)})
        if cpus:
            out["cpus"] = [cpus[k] for k in sorted(cpus)]
        return out

    def record_cpu(self, fingerprint: Mapping[str, Any]) -> None:
        """Record that rows of this table are computed on this CPU kind (idempotent, safe across machines)."""
        self.insert_meta({CPU_META_PREFIX + cpu_key(fingerprint): dict(fingerprint)})

    def cpus(self) -> list[dict[str, Any]]:
        """The CPU kinds recorded for this table (see :func:`made_on`)."""
        return self.meta().get("cpus", [])

    # ------------------------------------------------------------------------------------------ rows
    def _insert_ignore(self, conn, table: sa.Table, values: Mapping[str, Any] | list) -> int:
        if self.dialect == "postgresql":
            from sqlalchemy.dialects.postgresql import insert
        else:
            from sqlalchemy.dialects.sqlite import insert
        # RETURNING, not rowcount: psycopg reports rowcount -1 for INSERT ... ON CONFLICT DO NOTHING
        key = table.primary_key.columns.values()[0]
        return len(conn.execute(insert(table).values(values).on_conflict_do_nothing().returning(key)).all())

    def add_rows(self, rows: Iterable[Mapping[str, Any]], *, log: bool = False) -> int:
        """Insert rows (dicts as :mod:`autorag_hp.evaluation.grid.runner` builds them); existing keys are kept.

        With ``log``, each row is also appended to the computation log in the same transaction. Returns #new.
        """
        recs = []
        for r in rows:
            recs.append({
                "table_name": self.name,
                "config_id": r["config_id"],
                "question_id": r["question_id"],
                "config": json.dumps(r["config"], sort_keys=True),
                "question": r["question"],
                "reference": r.get("reference"),
                "answer": r["answer"],
                "contexts": json.dumps(r.get("contexts", [])),
                "metrics": json.dumps(r.get("metrics", {})),
                "prompt_tokens": int(r.get("prompt_tokens", 0)),
                "completion_tokens": int(r.get("completion_tokens", 0)),
                "latency_s": float(r.get("latency_s", 0.0)),
                "llm_calls": int(r.get("llm_calls", 0)),
                "answer_reused": int(bool(r.get("answer_reused", False))),
                "worker": r.get("worker") or worker_name(),
                "created_at": float(r.get("created_at") or time.time()),
            })
        if not recs:
            return 0
        with self.engine.begin() as c:
            n = self._insert_ignore(c, ROWS, recs)
            if log:
                c.execute(LOG.insert(), [{"table_name": self.name, "config_id": r["config_id"],
                                          "question_id": r["question_id"], "worker": r["worker"],
                                          "at": r["created_at"]} for r in recs])
            return n

    def done_keys(self) -> set[tuple[str, str]]:
        with self.engine.connect() as c:
            return {tuple(x) for x in c.execute(
                sa.select(ROWS.c.config_id, ROWS.c.question_id).where(ROWS.c.table_name == self.name)
            ).all()}

    def count(self) -> int:
        with self.engine.connect() as c:
            return int(c.execute(
                sa.select(sa.func.count()).select_from(ROWS).where(ROWS.c.table_name == self.name)
            ).scalar())

    def rows(self) -> Iterator[dict[str, Any]]:
        """Every row, decoded (config / contexts / metrics as Python objects), in key order."""
        q = sa.select(ROWS).where(ROWS.c.table_name == self.name).order_by(ROWS.c.config_id, ROWS.c.question_id)
        with self.engine.connect() as c:
            for r in c.execute(q).mappings():
                d = dict(r)
                d.pop("table_name")
                for k in ("config", "contexts", "metrics"):
                    d[k] = json.loads(d[k])
                yield d

    def totals(self) -> dict[str, float]:
        with self.engine.connect() as c:
            r = c.execute(sa.select(
                sa.func.count(), sa.func.coalesce(sa.func.sum(ROWS.c.llm_calls), 0),
                sa.func.coalesce(sa.func.sum(ROWS.c.answer_reused), 0),
            ).where(ROWS.c.table_name == self.name)).one()
            runs = c.execute(sa.select(
                sa.func.coalesce(sa.func.sum(RUNS.c.wall_s), 0.0), sa.func.count()
            ).where(RUNS.c.table_name == self.name)).one()
        return {"rows": int(r[0]), "llm_calls": int(r[1]), "answers_reused": int(r[2]),
                "wall_s": float(runs[0]), "runs": int(runs[1])}

    # ------------------------------------------------------------------------------------------ answer cache
    def cached_answer(self, key: str) -> dict[str, Any] | None:
        with self.engine.connect() as c:
            r = c.execute(sa.select(ANSWERS).where(
                ANSWERS.c.table_name == self.name, ANSWERS.c.prompt_key == key)).mappings().first()
        return dict(r) if r else None

    def cache_answer(self, key: str, text: str, prompt_tokens: int, completion_tokens: int, latency_s: float) -> None:
        with self.engine.begin() as c:
            self._insert_ignore(c, ANSWERS, {
                "table_name": self.name, "prompt_key": key, "text": text, "prompt_tokens": int(prompt_tokens),
                "completion_tokens": int(completion_tokens), "latency_s": float(latency_s)})

    # ------------------------------------------------------------------------------------------ log, runs
    def computation_log(self) -> list[tuple[str, str, str]]:
        with self.engine.connect() as c:
            return [tuple(x) for x in c.execute(
                sa.select(LOG.c.config_id, LOG.c.question_id, LOG.c.worker).where(LOG.c.table_name == self.name)
            ).all()]

    def start_run(self, started_at: float, workers: int) -> int:
        """Record a runner invocation now (wall time 0); :meth:`update_run` keeps it current. Returns its id."""
        with self.engine.begin() as c:
            res = c.execute(RUNS.insert().values(table_name=self.name, started_at=started_at, wall_s=0.0, cells=0,
                                                 llm_calls=0, workers=workers, host=socket.gethostname()))
            return int(res.inserted_primary_key[0])

    def update_run(self, run_id: int, wall_s: float, cells: int, llm_calls: int) -> None:
        with self.engine.begin() as c:
            c.execute(RUNS.update().where(RUNS.c.id == run_id).values(wall_s=wall_s, cells=cells, llm_calls=llm_calls))

    # ------------------------------------------------------------------------------------------ claims
    def claim(self, unit: int, owner: int, owner_alive) -> bool:
        """Claim ``unit`` for trial ``owner``; take it over when ``owner_alive(previous_owner)`` is False."""
        with self.engine.begin() as c:
            if self._insert_ignore(c, CLAIMS, {"table_name": self.name, "unit": unit, "owner": owner}):
                return True
            prev = c.execute(sa.select(CLAIMS.c.owner).where(
                CLAIMS.c.table_name == self.name, CLAIMS.c.unit == unit)).scalar()
        if prev == owner:
            return True
        if owner_alive(prev):
            return False
        with self.engine.begin() as c:  # compare-and-swap: only one taker wins
            n = c.execute(CLAIMS.update().where(
                CLAIMS.c.table_name == self.name, CLAIMS.c.unit == unit, CLAIMS.c.owner == prev
            ).values(owner=owner)).rowcount
        return n == 1

    def claim_owner(self, unit: int) -> int | None:
        with self.engine.connect() as c:
            return c.execute(sa.select(CLAIMS.c.owner).where(
                CLAIMS.c.table_name == self.name, CLAIMS.c.unit == unit)).scalar()

    # ------------------------------------------------------------------------------------------ export
    def export(self, path: str | os.PathLike) -> Path:
        """Write every row to ``.jsonl.gz`` / ``.csv.gz`` (or a ``.sqlite`` copy); see
        :func:`autorag_hp.evaluation.table_export.write_export`."""
        from autorag_hp.evaluation.table_export import write_export

        return write_export(self, path)


def table_names(url: str | os.PathLike) -> list[str]:
    """The names of the grid tables held at ``url`` (a database or a ``.sqlite`` file)."""
    eng = sa.create_engine(to_url(url))
    with eng.connect() as c:
        names = [r[0] for r in c.execute(sa.select(META.c.table_name).distinct())]
    eng.dispose()
    return names
