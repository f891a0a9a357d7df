"""Check of the projected e5 build time in eval/results/index_build_full.md: build e5 at chunk_size 1024 for real.

    AUTORAG_HP_THREADS=2 .venv/bin/python eval/scripts/e5_build_check.py [CACHE]   (the cache the index bench filled)
"""

from __future__ import annotations

import os
import sys
import time

from autorag_hp.rag.embeddings import get_embeddings
from autorag_hp.rag.pipeline import load_pipeline

cache = sys.argv[1] if len(sys.argv) > 1 else "/root/ahp_full2"
pipe = load_pipeline("python_docs", generator="extractive", cache_dir=cache, progress=False)
get_embeddings("e5").encode(["warm up"])
n = len(pipe.index.chunks(1024, 64))
t = time.perf_counter()
pipe.index.retriever(1024, 64, "e5")
s = time.perf_counter() - t
print(f"e5 chunk_size=1024: {n} chunks built in {s:.1f} s ({n / s:.1f} chunks/s); load average {os.getloadavg()[0]:.1f}")
