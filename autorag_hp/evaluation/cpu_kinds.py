"""CPU kinds: which machines reproduce a grid table's floating-point LLM answers bit for bit.

A fingerprint (:func:`~autorag_hp.generators.capabilities.cpu_fingerprint`) records the CPU that computed results; its
*kind* is what the float kernels depend on (ATen capability, kernel-choosing flags, ISA caps, torch version).
Greedy LLM output is bit-identical only on the same kind: :func:`made_on` gives a table's one kind from its meta
(None when unknown or mixed) and :func:`same_cpu_kind` compares it with this machine's (:func:`this_cpu`).

>>> same_cpu_kind(unknown_cpu("imported"), this_cpu())
False
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any


def this_cpu() -> dict[str, Any]:
    """This machine's CPU fingerprint (:func:`autorag_hp.generators.capabilities.cpu_fingerprint`), or an unknown one
    when torch is not installed (a pipeline without a local model)."""
    try:
        from autorag_hp.generators.capabilities import cpu_fingerprint

        return cpu_fingerprint()
    except ImportError:
        return unknown_cpu("torch not installed")


def cpu_kind(fingerprint: Mapping[str, Any]) -> tuple:
    """What must be equal for bit-identical float output: ATen capability, kernel flags, ISA caps, torch."""
    fp = dict(fingerprint or {})
    flags = fp.get("flags")
    return (fp.get("capability"), None if flags is None else tuple(sorted(flags)),
            tuple(sorted((fp.get("isa_env") or {}).items())), fp.get("torch"))


def cpu_key(fingerprint: Mapping[str, Any]) -> str:
    """A short stable id of a fingerprint's CPU kind (plus its model name and provenance)."""
    fp = dict(fingerprint or {})
    ident = [list(map(str, x)) if isinstance(x, tuple) else x for x in cpu_kind(fp)]
    ident += [fp.get("cpu"), fp.get("source")]
    return hashlib.sha1(json.dumps(ident, sort_keys=True, default=str).encode("utf-8")).hexdigest()[:12]


def known_cpu(fingerprint: Mapping[str, Any] | None) -> bool:
    """True when a fingerprint names a full CPU kind (capability and flags recorded)."""
    return bool(fingerprint) and fingerprint.get("capability") is not None and fingerprint.get("flags") is not None


def made_on(meta: Mapping[str, Any]) -> dict[str, Any] | None:
    """The one CPU kind that computed every row of a table, from its meta; None when unknown or mixed."""
    cpus = list(meta.get("cpus") or [])
    if not cpus or not all(known_cpu(c) for c in cpus) or len({cpu_kind(c) for c in cpus}) != 1:
        return None
    return dict(cpus[0])


def same_cpu_kind(recorded: Mapping[str, Any] | None, here: Mapping[str, Any] | None = None) -> bool:
    """Whether float results recorded on ``recorded`` (a fingerprint, or None = unknown) should be reproduced
    bit for bit here. ``here``: default this machine's :func:`~autorag_hp.generators.capabilities.cpu_fingerprint`.
    An unknown or partial fingerprint never matches."""
    if not known_cpu(recorded):
        return False
    if here is None:
        from autorag_hp.generators.capabilities import cpu_fingerprint

        here = cpu_fingerprint()
    return known_cpu(here) and cpu_kind(recorded) == cpu_kind(here)


def describe_cpu(fp: Mapping[str, Any] | None) -> str:
    """A fingerprint in words, as speed figures and CPU-kind notes name it: ``AMD EPYC (AVX512; avx2, ...)``."""
    if not fp or fp.get("capability") is None:
        return f"unknown ({fp.get('cpu', '?')})" if fp else "not recorded"
    return f"{fp.get('cpu')} ({fp['capability']}; {', '.join(fp.get('flags') or []) or 'no kernel flags'})"


def unknown_cpu(source: str) -> dict[str, Any]:
    """The fingerprint of rows whose CPU was not recorded (e.g. imported from an older export)."""
    return {"capability": None, "flags": None, "torch": None, "cpu": "unknown", "source": source}
