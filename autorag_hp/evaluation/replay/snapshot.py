"""A frozen snapshot of the block of a grid table that a replay reads, so a benchmark can be re-run."""

from __future__ import annotations

from pathlib import Path

from autorag_hp.evaluation.replay.table import ReplayTable, open_rows
from autorag_hp.space import Config


def write_snapshot(source: str | Path, dest: str | Path, table: ReplayTable, *, name: str | None = None) -> Path:
    """Freeze the block of ``source`` that ``table`` uses (its configurations × complete questions) as a
    ``.jsonl.gz`` export of what the replay reads (configuration, question id, metrics, tokens, latency; no
    answer, question or context text), so a benchmark on a table still being computed can be re-run."""
    import gzip
    import json

    s = str(source)
    rows, meta = open_rows(s, name)
    keep_q = set(table.questions)
    ids = {table.space.config_at(i).id for i in range(table.space.size)}
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    n = 0
    with gzip.open(dest, "wt", encoding="utf-8", compresslevel=9) as f:
        f.write(json.dumps({"_meta": {**meta, "snapshot_of": s, "note": table.note}}) + "\n")
        for r in rows:
            if str(r["question_id"]) in keep_q and Config(r["config"]).id in ids:
                slim = {k: r.get(k) for k in ("config_id", "question_id", "config", "metrics", "prompt_tokens",
                                              "completion_tokens", "latency_s", "llm_calls", "answer_reused")}
                f.write(json.dumps({**slim, "question": "", "answer": "", "contexts": []}, sort_keys=True) + "\n")
                n += 1
    if n != table.grid_calls:
        raise ValueError(f"snapshot holds {n} rows, expected {table.grid_calls}")
    return dest
