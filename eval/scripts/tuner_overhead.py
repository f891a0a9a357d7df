"""The tuner's own cost per ask, without HTTP: ``suggest -> pipeline.run -> report`` against ``pipeline.run`` alone,
and the asks per second of P processes x T threads sharing one study (issue 15 §1).

    python eval/scripts/tuner_overhead.py --storage postgresql://postgres@127.0.0.1:5432/test --out o.json
    python eval/scripts/tuner_overhead.py --storage ... --processes 2 --threads 8 --asks 400 --out t.json

The pipeline is the service's load-test pipeline (python_docs_faq, extractive generator, BM25, 9 configurations),
so "direct" is what the service would cost without a tuner. With ``PYTHONPATH`` pointing at another checkout the
same script measures that code (the before/after runs in eval/results/service/s1_after/).
"""

from __future__ import annotations

import argparse
import inspect
import json
import multiprocessing as mp
import statistics
import time


def _tuner(storage: str, study: str, seed: int, sync_interval: float):
    from autorag_hp.policies.online import OnlinePolicy
    from autorag_hp.service.process import LOAD_SPACE
    from autorag_hp.space import SearchSpace
    from autorag_hp.tuner import Tuner

    space = SearchSpace(LOAD_SPACE)
    policy = OnlinePolicy(space, seed=seed, inner="hier_ucb", explore=0.5)
    kw = {"sync_interval": sync_interval} if "sync_interval" in inspect.signature(Tuner).parameters else {}
    return Tuner(space, policy=policy, storage=storage, seed=seed, study=study, trial_timeout=120.0, **kw)


def _pipeline():
    from autorag_hp.rag import load_pipeline

    pipe = load_pipeline("python_docs_faq", generator="extractive")
    return pipe, [q.question for q in pipe.questions()]


def overhead(args) -> dict:
    from autorag_hp.commands.loadtest import ms, pct

    pipe, qs = _pipeline()
    tuner = _tuner(args.storage, f"ovh-{time.time_ns()}", 0, args.sync_interval)
    cfgs = [{"embedding": "bm25", **c.to_dict()} for c in tuner.space.configs()]
    for c in cfgs:
        pipe.run(qs[0], c)
    direct, tuned, inner = [], [], []
    for i in range(args.asks):
        q = qs[i % len(qs)]
        t0 = time.perf_counter()
        pipe.run(q, cfgs[i % len(cfgs)])
        direct.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        trial = tuner.suggest(question=q)
        t1 = time.perf_counter()
        answer = pipe.run(q, {"embedding": "bm25", **trial.config.to_dict()})
        t2 = time.perf_counter()
        tuner.report(trial.id, 1.0 if answer.text else 0.0)
        t3 = time.perf_counter()
        tuned.append(t3 - t0)
        inner.append((t1 - t0) + (t3 - t2))
    held = tuner.storage.lock_held() if hasattr(tuner.storage, "lock_held") else None
    tuner.close()
    return {"asks": args.asks, "direct_p50_ms": ms(pct(direct, 50)), "tuned_p50_ms": ms(pct(tuned, 50)),
            "overhead_p50_ms": ms(pct(tuned, 50) - pct(direct, 50)),
            "tuner_suggest_plus_report_ms": {"p50": ms(pct(inner, 50)), "p99": ms(pct(inner, 99)),
                                             "mean": ms(statistics.fmean(inner))},
            "lock_held": held}


def _worker(args, study: str, seed: int, start, out) -> None:
    import threading

    import torch

    torch.set_num_threads(1)
    pipe, qs = _pipeline()
    tuner = _tuner(args.storage, study, seed, args.sync_interval)
    for c in tuner.space.configs():
        pipe.run(qs[0], {"embedding": "bm25", **c.to_dict()})
    errors: list[str] = []

    def work(k: int) -> None:
        try:
            for i in range(args.asks):
                q = qs[(k * 31 + i) % len(qs)]
                trial = tuner.suggest(question=q)
                answer = pipe.run(q, {"embedding": "bm25", **trial.config.to_dict()})
                tuner.report(trial.id, 1.0 if answer.text else 0.0)
        except Exception as exc:  # noqa: BLE001 - counted and shown
            errors.append(repr(exc))

    start.wait()
    t0 = time.perf_counter()
    threads = [threading.Thread(target=work, args=(k,)) for k in range(args.threads)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    wall = time.perf_counter() - t0
    held = tuner.storage.lock_held() if hasattr(tuner.storage, "lock_held") else None
    out.put({"asks": args.asks * args.threads - len(errors), "wall_s": wall, "errors": errors[:3], "lock_held": held})
    tuner.close()


def throughput(args) -> dict:
    ctx = mp.get_context("spawn")
    study = f"thr-{time.time_ns()}"
    _tuner(args.storage, study, 0, args.sync_interval).close()  # the study exists before the workers start
    start, out = ctx.Barrier(args.processes + 1), ctx.Queue()
    procs = [ctx.Process(target=_worker, args=(args, study, s, start, out)) for s in range(args.processes)]
    for p in procs:
        p.start()
    start.wait()
    t0 = time.perf_counter()
    res = [out.get(timeout=900) for _ in procs]
    wall = time.perf_counter() - t0
    for p in procs:
        p.join()
    asks = sum(r["asks"] for r in res)
    return {"processes": args.processes, "threads": args.threads, "asks": asks, "wall_s": round(wall, 3),
            "asks_per_s": round(asks / wall, 1), "per_process": res}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--storage", default="postgresql://postgres@127.0.0.1:5432/test")
    ap.add_argument("--asks", type=int, default=400, help="asks per thread (overhead mode: in all)")
    ap.add_argument("--processes", type=int, default=0, help="0: the sequential overhead run")
    ap.add_argument("--threads", type=int, default=8)
    ap.add_argument("--sync-interval", type=float, default=0.05)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    from autorag_hp.commands.loadtest import machine

    res = overhead(args) if args.processes == 0 else throughput(args)
    res.update({"storage": args.storage.split("@")[-1], "sync_interval": args.sync_interval, "machine": machine(),
                "code": __import__("autorag_hp").__file__})
    text = json.dumps(res, indent=2)
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()
