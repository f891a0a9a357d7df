"""A grid table's files: :func:`write_export` writes one, :func:`read_export` reads one back.

``.jsonl.gz``: first line ``{"_meta": ...}``, then one JSON row a line; ``.csv.gz``: meta in a ``# meta:``
first line, metrics flattened to ``m.<name>`` columns; ``.sqlite``: a copy of the table. In the text formats a
question's (long) reference answer is stored once, in the meta, not in each of its rows. :func:`read_export`
reads any of them (or a table file) back and, given the space, checks its fingerprint::

    table.export("eval/results/grid.jsonl.gz")                # GridTable.export calls write_export
    rows, meta = read_export("eval/results/grid.jsonl.gz", space=space)
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import os
from pathlib import Path
from typing import Any

from autorag_hp.evaluation.table import GridTable, TableMismatchError, table_names


def write_export(table: GridTable, path: str | os.PathLike) -> Path:
    """Write every row of ``table`` to ``.jsonl.gz`` / ``.csv.gz`` (or a ``.sqlite`` copy); the meta travels along."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = {**table.meta(), "table_name": table.name, "totals": table.totals()}
    rows = list(table.rows())
    if path.suffix not in (".sqlite", ".db"):
        # a question's (long) reference answer is stored once, in the meta line, not in each of its rows
        meta["references"] = {r["question_id"]: r["reference"] for r in rows}
        rows = [{k: v for k, v in r.items() if k != "reference"} for r in rows]
    tmp = path.with_name(path.name + ".tmp")
    if path.name.endswith(".jsonl.gz"):
        with gzip.open(tmp, "wt", encoding="utf-8", compresslevel=9) as f:
            f.write(json.dumps({"_meta": meta}) + "\n")
            for r in rows:
                f.write(json.dumps(r, sort_keys=True) + "\n")
    elif path.name.endswith(".csv.gz"):
        names = sorted({k for r in rows for k in r["metrics"]})
        with gzip.open(tmp, "wt", encoding="utf-8", newline="", compresslevel=9) as f:
            f.write("# meta: " + json.dumps(meta) + "\n")
            base = [k for k in (rows[0] if rows else {}) if k != "metrics"]
            w = csv.writer(f)
            w.writerow(base + [f"m.{n}" for n in names])
            for r in rows:
                w.writerow([json.dumps(r[k]) if isinstance(r[k], dict | list) else r[k] for k in base]
                           + [r["metrics"].get(n) for n in names])
    elif path.suffix in (".sqlite", ".db"):
        if tmp.exists():
            tmp.unlink()
        out = GridTable(str(tmp), table.name)
        out.insert_meta(table.meta())
        out.add_rows(rows)
        out.engine.dispose()
    else:
        raise ValueError(f"export to .jsonl.gz, .csv.gz or .sqlite, not {path.name!r}")
    os.replace(tmp, path)
    return path


def read_export(path: str | os.PathLike, *, space: Any = None) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Read rows and meta back from an export (or a table file); with ``space``, reject a different space."""
    path = Path(path)
    if path.name.endswith(".jsonl.gz"):
        with gzip.open(path, "rt", encoding="utf-8") as f:
            meta = json.loads(f.readline())["_meta"]
            rows = [json.loads(line) for line in f if line.strip()]
    elif path.name.endswith(".csv.gz"):
        with gzip.open(path, "rt", encoding="utf-8", newline="") as f:
            meta = json.loads(f.readline()[len("# meta: "):])
            rows = []
            for r in csv.DictReader(io.StringIO(f.read())):
                d: dict[str, Any] = {"metrics": {}}
                for k, v in r.items():
                    if k.startswith("m."):
                        d["metrics"][k[2:]] = float(v) if v not in ("", None) else None
                    elif k in ("config", "contexts"):
                        d[k] = json.loads(v)
                    else:
                        d[k] = v
                rows.append(d)
    else:
        names = table_names(path)
        t = GridTable(str(path), names[0] if len(names) == 1 else "grid")
        meta, rows = t.meta(), list(t.rows())
    refs = meta.pop("references", None)
    if refs is not None:
        for r in rows:
            r["reference"] = refs.get(r["question_id"])
    for r in rows:  # CSV cells are text
        for k in ("prompt_tokens", "completion_tokens", "llm_calls", "answer_reused"):
            if isinstance(r.get(k), str):
                r[k] = int(float(r[k])) if r[k] not in ("", "True", "False") else int(r[k] == "True")
        for k in ("latency_s", "created_at"):
            if isinstance(r.get(k), str) and r[k]:
                r[k] = float(r[k])
    if space is not None and meta.get("space_fingerprint") != space.fingerprint:
        raise TableMismatchError(
            f"{path} holds a grid over a different search space (fingerprint {meta.get('space_fingerprint')}, "
            f"space {json.dumps(meta.get('space'))}) than the one given (fingerprint {space.fingerprint})"
        )
    return rows, meta
