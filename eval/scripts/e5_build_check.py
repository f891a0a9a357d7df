"""Check of the projected e5 build time in eval/results/index_build_full.md: build e5 at chunk_size 1024 for real.

    AUTORAG_HP_THREADS=2 .venv/bin/python eval/scripts/e5_build_check.py   (uses the cache the index bench filled)
"""
import os, time
os.environ.setdefault("AUTORAG_HP_THREADS", "2")
from autorag_hp.rag.pipeline import load_pipeline
from autorag_hp.rag.embeddings import get_embeddings
pipe = load_pipeline("pipelines/python_docs.yaml", generator="extractive", cache_dir="/root/ahp_full2", progress=False)
get_embeddings("e5").encode(["warm up"])
n = len(pipe.index.chunks(1024, 64))
t = time.perf_counter()
pipe.index.retriever(1024, 64, "e5")
s = time.perf_counter() - t
print(f"e5 chunk_size=1024: {n} chunks built in {s:.1f} s ({n/s:.1f} chunks/s); load average {os.getloadavg()[0]:.1f}")
