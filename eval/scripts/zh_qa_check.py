"""Quality checks and retrieval recall of the bundled Chinese benchmark ``debian_reference_zh``.

Data: every gold source is a corpus document; every reference answer occurs verbatim in its gold section (else it
is counted as paraphrased); no question occurs in the indexed text (with or without punctuation) and none equals
its section's heading. Retrieval (no LLM): recall@1/3/5 and MRR@5 of the gold section for BM25 (jieba words), e5
and hybrid (e5 + BM25, reciprocal-rank fusion) at each chunk size of the spec, through the pipeline a user gets.

    flock /tmp/ahp-bench.lock nice -n 19 .venv/bin/python eval/scripts/zh_qa_check.py \
        --out eval/results/zh_qa/check.md

Exits non-zero when a data check fails. ``--embeddings bm25`` skips the dense models (seconds instead of minutes).
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import shlex
import sys
import time
from pathlib import Path

from autorag_hp.rag.pipeline import load_pipeline

SPEC = "debian_reference_zh"
_PUNCT = re.compile(r"[\s\W_]+", re.UNICODE)


def _bare(text: str) -> str:
    return _PUNCT.sub("", text)


def data_checks(pipe) -> tuple[list[str], bool]:
    docs = {d.id: d for d in pipe.docs}
    qs = pipe.questions()
    corpus = "\n".join(d.text for d in pipe.docs)
    bare_corpus = _bare(corpus)
    missing = [q.id for q in qs if not q.sources or any(s not in docs for s in q.sources)]
    paraphrased = [q.id for q in qs if q.sources and q.sources[0] in docs and q.answer not in docs[q.sources[0]].text]
    leaked = [q.id for q in qs if q.question in corpus or _bare(q.question) in bare_corpus]
    heading = [q.id for q in qs if q.sources and q.sources[0] in docs
               and _bare(q.question) == _bare(str(docs[q.sources[0]].meta.get("section", "")))]
    dup = len(qs) - len({q.question for q in qs})
    elsewhere = [q.id for q in qs if sum(q.answer in d.text for d in pipe.docs) > 1]
    chapters = sorted({s.split("#")[0] for q in qs for s in q.sources})
    sections = {q.sources[0] for q in qs}
    alen = sorted(len(q.answer) for q in qs)
    lines = [
        f"Corpus: {len(docs)} sections, {sum(len(d.text) for d in pipe.docs):,} characters. Questions: {len(qs)} over "
        f"{len(sections)} sections of {len(chapters)} chapters ({', '.join(chapters)}); answer length median "
        f"{alen[len(alen) // 2]} characters (min {alen[0]}, max {alen[-1]}).", "",
        "| check | failures |", "|---|---:|",
        f"| gold source missing from the corpus | {len(missing)} |",
        f"| answer not verbatim in its gold section (paraphrased) | {len(paraphrased)} |",
        f"| question text occurs in the corpus (as is, or without punctuation/spaces) | {len(leaked)} |",
        f"| question equals its section heading | {len(heading)} |",
        f"| duplicate questions | {dup} |", "",
        f"Not a failure: {len(elsewhere)} of the {len(qs)} answer spans also occur in some other section (a command "
        "or file name the Reference mentions more than once); recall below still counts only the gold section.", "",
    ]
    for name, ids in (("missing", missing), ("paraphrased", paraphrased), ("leaked", leaked), ("heading", heading)):
        if ids:
            lines.append(f"{name}: {', '.join(ids)}")
    return lines, not (missing or leaked or heading or dup)


def recall(pipe, embeddings: list[str], sizes: list[int]) -> list[str]:
    qs = pipe.questions()
    ks = (1, 3, 5)
    lines = ["| embedding | chunk_size | chunks | R@1 | R@3 | R@5 | MRR@5 | index build s | s/question |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for emb in embeddings:
        for cs in sizes:
            t = time.perf_counter()
            pipe.retrieve("预热", {"embedding": emb, "chunk_size": cs})  # builds (or loads) the index
            build = time.perf_counter() - t
            hits, rr = dict.fromkeys(ks, 0), 0.0
            t = time.perf_counter()
            for q in qs:
                ranked = [c.source for c in pipe.retrieve(q, {"embedding": emb, "chunk_size": cs, "top_k": max(ks)})]
                for k in ks:
                    hits[k] += q.sources[0] in ranked[:k]
                rr += 1.0 / (ranked.index(q.sources[0]) + 1) if q.sources[0] in ranked else 0.0
            per_q = (time.perf_counter() - t) / len(qs)
            cfg = pipe.resolve_config({"embedding": emb, "chunk_size": cs})
            n = len(pipe.index.chunks(cfg["chunk_size"], cfg["chunk_overlap"]))
            r = {k: hits[k] / len(qs) for k in ks}
            lines.append(f"| {emb} | {cs} | {n} | {r[1]:.3f} | {r[3]:.3f} | {r[5]:.3f} | {rr / len(qs):.3f} | "
                         f"{build:.1f} | {per_q:.3f} |")
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--spec", default=SPEC)
    ap.add_argument("--embeddings", default="bm25,e5,hybrid")
    ap.add_argument("--chunk-sizes", default="128,256,512")
    ap.add_argument("--cache", default=None, help="index/embedding cache folder (default: a fresh temporary one)")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    import tempfile

    from autorag_hp.generators.capabilities import cpu_fingerprint

    cache = args.cache or tempfile.mkdtemp(prefix="zh-qa-")
    pipe = load_pipeline(args.spec, generator="extractive", cache_dir=cache)
    fp = cpu_fingerprint()
    cmd = "flock /tmp/ahp-bench.lock nice -n 19 .venv/bin/python eval/scripts/zh_qa_check.py " + " ".join(
        shlex.quote(a) for a in sys.argv[1:])
    lines = ["# Chinese benchmark `debian_reference_zh`: data checks and retrieval recall", "", "```", cmd, "```", "",
             f"CPU: {fp['cpu']}, {os.cpu_count()} vCPUs, torch CPU capability {fp['capability']}, kernel flags "
             f"{', '.join(fp['flags']) or 'none'}; load average at start {os.getloadavg()[0]:.1f} (shared machine); "
             f"Python {platform.python_version()}, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}. "
             + (f"Fresh cache `{cache}`: index build times include embedding every chunk." if not args.cache else
                f"Cache `{cache}` as given: an index built before is loaded, so its build time is a load time."),
             "", "## Data", ""]
    checks, ok = data_checks(pipe)
    lines += checks
    lines += ["", "## Retrieval recall of the gold section (no LLM)", "",
              "A hit at k when the gold section is the source of one of the top-k chunks. Chunk sizes in characters, "
              "overlap as the spec's defaults give it.", ""]
    lines += recall(pipe, args.embeddings.split(","), [int(s) for s in args.chunk_sizes.split(",")])
    text = "\n".join(lines) + "\n"
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text, encoding="utf-8")
    print(text)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
