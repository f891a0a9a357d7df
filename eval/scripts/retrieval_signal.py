"""Would free retrieval-only signals help prune arms on the ground-truth grid?  (issue 5, section 4 idea)

Recall of the gold source needs no LLM call, so a tuner could rank retrieval settings by it before paying for
generation. That only helps if configurations that retrieve the gold section more often also earn more reward.
This measures the rank correlation, per configuration, between mean source recall and (a) answer accuracy,
(b) the paper's reward at each w, on the same table and reward as the replay benchmark.

    .venv/bin/python eval/scripts/retrieval_signal.py > eval/results/bench/retrieval_signal.md
"""

from __future__ import annotations

import collections
import gzip
import json
import sys
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr

TABLE = Path(sys.argv[1] if len(sys.argv) > 1 else "eval/results/grid_python_docs.jsonl.gz")
rows = [json.loads(line) for line in gzip.open(TABLE, "rt", encoding="utf-8")][1:]
thr = float(np.median([r["metrics"]["token_f1"] for r in rows]))
by: dict[str, list] = collections.defaultdict(list)
for r in rows:
    m = r["metrics"]
    by[r["config_id"]].append((m["source_recall"], 1.0 if m["token_f1"] >= thr else -1.0, m["total_tokens"],
                               r["config"]["top_k"]))
ids = sorted(by)
recall = np.array([np.mean([x[0] for x in by[i]]) for i in ids])
acc = np.array([np.mean([x[1] for x in by[i]]) for i in ids])
print("# Free retrieval-only signal vs reward on the ground-truth grid\n")
print(f"Table `{TABLE}`: {len(ids)} configurations × {len(rows) // len(ids)} questions; acc = +1 when token_f1 ≥ "
      f"{thr:.5f} (the median, as in the replay benchmark), reward = w·acc − (1−w)·tokens/1000.\n")
print("Command: `.venv/bin/python eval/scripts/retrieval_signal.py > eval/results/bench/retrieval_signal.md`\n")
print("| per-configuration means | Spearman ρ |\n|---|---:|")
print(f"| source recall vs accuracy (all) | {spearmanr(recall, acc)[0]:+.2f} |")
for k in sorted({x[3] for v in by.values() for x in v}):
    sel = [j for j, i in enumerate(ids) if by[i][0][3] == k]
    print(f"| source recall vs accuracy (top_k = {k}) | {spearmanr(recall[sel], acc[sel])[0]:+.2f} |")
for w in (0.1, 0.5, 0.9):
    score = np.array([np.mean([w * x[1] - (1 - w) * x[2] / 1000 for x in by[i]]) for i in ids])
    print(f"| source recall vs reward, w = {w:g} | {spearmanr(recall, score)[0]:+.2f} |")
print("\nReading: with SmolLM2-135M (the grid's legacy int8) as the reader, finding the gold section does not make the answer better, so "
      "pruning retrieval arms by free recall would discard nothing useful and could discard the winners "
      "(top_k = 1 has the lowest recall and the best reward). We did not build that method on this table.")
