"""Data-parallel training of ONE trial over several CPU processes with ``torch.distributed`` (gloo).

Every rank builds the same model (same seed), draws the same global batch and trains on its slice of it;
``DistributedDataParallel`` averages the gradients, so ``world_size`` ranks with a global batch ``B`` take the
same steps as one process with batch ``B`` (up to floating-point summation order). Use it inside an
objective when a single trial is too slow for one process: the tuner's workers run trials in parallel, the
trial's ranks run its batches in parallel.

Backends: ``gloo`` (CPU, in every PyTorch build) is the default. The stock PyTorch wheels from PyPI and
download.pytorch.org have **no MPI backend** (``torch.distributed.is_mpi_available()`` is False); MPI needs a
PyTorch built from source against an MPI library. ``nccl`` is for CUDA GPUs only.

Example (two local processes):
    >>> from autorag_hp.training.distributed import ddp_train_lm
    >>> from autorag_hp.training.lm import LMConfig
    >>> out = ddp_train_lm(LMConfig(width=32, n_layers=1, seq_len=32), 2**-6, world_size=2, steps=5,
    ...                    batch_size=8, max_bytes=100_000)
    >>> out["world_size"], len(out["param_checksums"])
    (2, 2)

Across machines, start one process per rank yourself with ``init_method="env://"`` (MASTER_ADDR/PORT) and
call :func:`train_rank`.
"""

from __future__ import annotations

import math
import os
import socket
import time
from typing import Any

from autorag_hp.deps import require

from .lm import ByteBatches, LMConfig, build_lm, make_optimizer

BACKENDS = ("gloo", "mpi", "nccl")


def check_backend(backend: str) -> None:
    """Raise a clear error when ``backend`` is unknown or missing from this PyTorch build."""
    torch = require("torch", "autorag_hp.training")
    dist = torch.distributed
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    if not dist.is_available():
        raise RuntimeError("this PyTorch build has no torch.distributed")
    available = {"gloo": dist.is_gloo_available(), "mpi": dist.is_mpi_available(), "nccl": dist.is_nccl_available()}
    if not available[backend]:
        hint = {
            "mpi": "stock PyTorch wheels have no MPI backend (build PyTorch from source against MPI); use 'gloo'",
            "nccl": "NCCL needs a CUDA build of PyTorch and GPUs; use 'gloo' on CPUs",
            "gloo": "this PyTorch build lacks gloo",
        }[backend]
        raise RuntimeError(f"torch.distributed backend {backend!r} is not available: {hint}")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def train_rank(rank: int, world_size: int, init_method: str, job: dict[str, Any]) -> dict[str, Any]:
    """The body of one rank: join the group, train with DDP, return this rank's summary."""
    torch = require("torch", "autorag_hp.training")
    dist = torch.distributed
    torch.set_num_threads(int(job.get("threads", 1)))
    dist.init_process_group(job.get("backend", "gloo"), init_method=init_method, rank=rank, world_size=world_size)
    try:
        from torch.nn.parallel import DistributedDataParallel as DDP

        from .lm_sweep import split_docs

        cfg: LMConfig = job["cfg"]
        steps, batch_size, seed, lr = job["steps"], job["batch_size"], job["seed"], job["lr"]
        if batch_size % world_size:
            raise ValueError(f"global batch {batch_size} must be divisible by world_size {world_size}")
        local = batch_size // world_size
        train, _ = split_docs(job.get("max_bytes"))
        model = DDP(build_lm(cfg, seed=seed))
        opt = make_optimizer(model.module, lr, cfg.parametrization, job.get("optimizer", "adam"))
        base_lrs = [g["lr"] for g in opt.param_groups]
        n_warm = max(1, int(0.1 * steps))
        batches = ByteBatches(train, cfg.seq_len, batch_size, seed=seed + 1)  # same global batch on every rank
        F = torch.nn.functional
        losses = []
        t0 = time.perf_counter()
        for step in range(steps):
            mult = (step + 1) / n_warm if step < n_warm else 0.1 + 0.45 * (
                1 + math.cos(math.pi * (step - n_warm) / max(1, steps - n_warm))
            )
            for g, b in zip(opt.param_groups, base_lrs):
                g["lr"] = b * mult
            x, y = next(batches)
            x, y = x[rank * local:(rank + 1) * local], y[rank * local:(rank + 1) * local]
            loss = F.cross_entropy(model(x).reshape(-1, cfg.vocab), y.reshape(-1))
            opt.zero_grad(set_to_none=True)
            loss.backward()  # DDP all-reduces (averages) the gradients here
            opt.step()
            mean_loss = loss.detach().clone()
            dist.all_reduce(mean_loss)
            losses.append(mean_loss.item() / world_size)
        checksum = float(sum(p.detach().double().sum().item() for p in model.module.parameters()))
        return {
            "rank": rank,
            "first_loss": losses[0],
            "final_loss": sum(losses[-max(1, steps // 10):]) / max(1, min(len(losses), max(1, steps // 10))),
            "checksum": checksum,
            "seconds": time.perf_counter() - t0,
            "pid": os.getpid(),
        }
    finally:
        dist.destroy_process_group()


def _rank_main(rank: int, world_size: int, init_method: str, job: dict, queue) -> None:
    try:
        queue.put(train_rank(rank, world_size, init_method, job))
    except BaseException as exc:  # noqa: BLE001 - reported to the parent, which raises
        queue.put({"rank": rank, "error": f"{type(exc).__name__}: {exc}"})


def ddp_train_lm(
    cfg: LMConfig,
    lr: float,
    *,
    world_size: int = 2,
    steps: int = 100,
    batch_size: int = 16,
    seed: int = 0,
    max_bytes: int | None = None,
    backend: str = "gloo",
    threads_per_rank: int = 1,
    optimizer: str = "adam",
    timeout_s: float = 600.0,
) -> dict[str, Any]:
    """Train one :class:`~autorag_hp.training.lm.TinyLM` trial data-parallel over ``world_size`` local processes.

    Returns ``{"final_loss", "first_loss", "world_size", "param_checksums" (one per rank: equal when the
    replicas agree), "seconds", "pids"}``. ``world_size=1`` runs in this process (the reference).
    """
    import multiprocessing as mp

    check_backend(backend)
    if world_size < 1:
        raise ValueError(f"world_size must be >= 1, got {world_size}")
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    job = dict(cfg=cfg, lr=lr, steps=steps, batch_size=batch_size, seed=seed, max_bytes=max_bytes,
               backend=backend, threads=threads_per_rank, optimizer=optimizer)
    init_method = f"tcp://127.0.0.1:{free_port()}"
    t0 = time.perf_counter()
    if world_size == 1:
        results = [train_rank(0, 1, init_method, job)]
    else:
        ctx = mp.get_context("spawn")
        queue = ctx.SimpleQueue()
        procs = [ctx.Process(target=_rank_main, args=(r, world_size, init_method, job, queue), name=f"ddp-rank-{r}")
                 for r in range(world_size)]
        for p in procs:
            p.start()
        results = []
        deadline = time.monotonic() + timeout_s
        while len(results) < world_size:
            if not queue.empty():
                results.append(queue.get())
                continue
            if time.monotonic() > deadline or (all(not p.is_alive() for p in procs) and queue.empty()):
                break
            time.sleep(0.05)
        for p in procs:
            p.join(timeout=10)
            if p.is_alive():
                p.terminate()
        errors = [r["error"] for r in results if "error" in r]
        if errors or len(results) < world_size:
            raise RuntimeError(f"distributed trial failed: {errors or 'a rank exited without a result'}")
    results.sort(key=lambda r: r["rank"])
    return {
        "final_loss": results[0]["final_loss"],
        "first_loss": results[0]["first_loss"],
        "world_size": world_size,
        "param_checksums": [r["checksum"] for r in results],
        "seconds": time.perf_counter() - t0,
        "pids": [r["pid"] for r in results],
    }
