"""``autorag-hp bench-generator``: speed and quality of the local generator on this CPU.

For each variant (fp32, int8 = W8A8 per-token, int8-weight = W8 + bf16 activations, bf16 weights; optionally
bf16 autocast) in one run: prefill tokens/s on a ~300-token RAG
prompt, decode tokens/s, end-to-end latency for that prompt + 32 new tokens, with plain ``transformers``
``generate`` on the same fp32 model as the baseline (our overhead ratio = baseline latency / ours). Quality:
greedy outputs of each variant equal to fp32 on N FAQ prompts, and perplexity on held-out text (the Python
tutorial from the Debian package ``python3.11-doc``), relative to fp32.

    autorag-hp bench-generator --out eval/results/generator_bench.md --threads 1
"""

from __future__ import annotations

import argparse
import glob
import math
import os
import platform
import re
import statistics
import sys
import time
from pathlib import Path

DOC_ROOT = "/usr/share/doc/python3.11/html/_sources"
VARIANTS = {
    "fp32": {"dtype": "float32"},
    "int8": {"quantize": "int8"},
    "int8-weight": {"quantize": "int8-weight", "dtype": "bfloat16"},
    "bf16": {"dtype": "bfloat16", "bf16_mode": "weights"},
    "bf16-autocast": {"dtype": "bfloat16", "bf16_mode": "autocast"},
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", default="eval/results/generator_bench.md", help="markdown report path")
    parser.add_argument("--model", default=None, help="model dir or .gguf (default: bundled SmolLM2-135M-Instruct)")
    parser.add_argument("--variants", default="fp32,int8,int8-weight,bf16",
                        help=f"comma-separated subset of {','.join(VARIANTS)}")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: physical cores)")
    parser.add_argument("--prompt-tokens", type=int, default=300, help="length of the RAG prompt")
    parser.add_argument("--new-tokens", type=int, default=32, help="new tokens per generation")
    parser.add_argument("--repeats", type=int, default=3, help="timed repeats per measurement (median)")
    parser.add_argument("--quality-prompts", type=int, default=50, help="FAQ prompts for the greedy-equality check")
    parser.add_argument("--quality-variants", default="int8,int8-weight,bf16",
                        help="variants whose greedy outputs are compared with fp32 (slow ones can be left out)")
    parser.add_argument("--ppl-tokens", type=int, default=4096, help="held-out tokens for perplexity")
    parser.add_argument("--docs", default=DOC_ROOT, help="python3.11-doc _sources folder (apt-get install python3.11-doc)")


# ------------------------------------------------------------------------------------------------ data


def _faq_items(doc_root: str) -> list[tuple[str, str]]:
    """(question, answer text) pairs from the FAQ: headings ending in '?' and the prose under them."""
    items = []
    for path in sorted(glob.glob(os.path.join(doc_root, "faq", "*.rst.txt"))):
        lines = Path(path).read_text(encoding="utf-8", errors="replace").splitlines()
        heads = [i for i in range(len(lines) - 1)
                 if lines[i].strip() and re.fullmatch(r"([=\-~^*])\1{2,}", lines[i + 1].strip() or "x")]
        for j, i in enumerate(heads):
            q = lines[i].strip()
            if not q.endswith("?"):
                continue
            end = heads[j + 1] if j + 1 < len(heads) else len(lines)
            body = " ".join(s.strip() for s in lines[i + 2 : end] if s.strip() and not s.startswith(".."))
            if len(body) > 80:
                items.append((q, body))
    return items


def _heldout_text(doc_root: str) -> tuple[str, str]:
    files = sorted(glob.glob(os.path.join(doc_root, "tutorial", "*.rst.txt")))
    if files:
        return "\n\n".join(Path(f).read_text(encoding="utf-8", errors="replace") for f in files), \
            f"{doc_root}/tutorial/*.rst.txt (python3.11-doc)"
    # Fallback: any sizeable text file in the environment.
    for pat in (os.path.join(sys.prefix, "lib", "python3.11", "site-packages", "*", "LICENSE*"),):
        for f in sorted(glob.glob(pat)):
            if os.path.getsize(f) > 20000:
                return Path(f).read_text(errors="replace"), f
    raise SystemExit("no held-out text: install python3.11-doc (apt-get install -y python3.11-doc) or pass --docs")


def _rag_messages(gen, items, target_tokens: int, question_idx: int = 0) -> list[dict]:
    """A RAG prompt of about ``target_tokens`` tokens: FAQ passages as numbered context + one question."""
    q = items[question_idx][0]
    system = "Answer the question using only the context. Be concise."
    passages: list[str] = []
    k = question_idx
    while True:
        body = items[k % len(items)][1]
        passages.append(f"[{len(passages) + 1}] {body}")
        msgs = [{"role": "system", "content": system},
                {"role": "user", "content": "Context:\n" + "\n".join(passages) + f"\n\nQuestion: {q}"}]
        n = gen.count_tokens(gen.format_prompt(msgs))
        if n >= target_tokens:
            break
        k += 1
    # Trim words off the last passage until we are at (or just under) the target.
    words = passages[-1].split(" ")
    lo, hi = 1, len(words)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        passages[-1] = " ".join(words[:mid])
        msgs[1]["content"] = "Context:\n" + "\n".join(passages) + f"\n\nQuestion: {q}"
        if gen.count_tokens(gen.format_prompt(msgs)) <= target_tokens:
            lo = mid
        else:
            hi = mid - 1
    passages[-1] = " ".join(words[:lo])
    msgs[1]["content"] = "Context:\n" + "\n".join(passages) + f"\n\nQuestion: {q}"
    return msgs


def _short_messages(item) -> list[dict]:
    q, body = item
    return [{"role": "user", "content": f"Context: {body[:600]}\n\nQuestion: {q}"}]


# ------------------------------------------------------------------------------------------------ timing


def _median_time(fn, repeats: int) -> tuple[float, float]:
    """Median (wall seconds, CPU seconds of this process) over ``repeats`` calls after one warm-up.

    CPU time is robust to other jobs on a shared machine (it counts only our own work); with several torch
    threads it sums them, so compare CPU-time rates only at equal thread counts."""
    fn()  # warm-up (oneDNN primitive creation, allocator)
    walls, cpus = [], []
    for _ in range(repeats):
        c0, t0 = time.process_time(), time.perf_counter()
        fn()
        walls.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
    return statistics.median(walls), statistics.median(cpus)


def _speed(gen, msgs, new_tokens: int, repeats: int, model=None) -> dict:
    """Prefill tok/s, decode tok/s and latency on ``gen``'s model (or on ``model``, same tokenizer)."""
    import torch

    enc = gen._encode([gen.format_prompt(msgs)])
    n_prompt = int(enc["input_ids"].shape[1])
    autocast = model is None and gen.plan.dtype == "bfloat16" and gen.plan.bf16_mode == "autocast"
    model = gen.model if model is None else model

    def scope():
        import contextlib

        stack = contextlib.ExitStack()
        stack.enter_context(torch.inference_mode())
        if autocast:
            stack.enter_context(torch.autocast("cpu", dtype=torch.bfloat16))
        return stack

    def prefill():
        with scope():
            model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"], use_cache=True)

    def gen_n(n):
        def run():
            with scope():
                model.generate(**enc, max_new_tokens=n, min_new_tokens=n, do_sample=False,
                               pad_token_id=gen.tokenizer.pad_token_id)
        return run

    (pw, pc), (w1, c1), (wn, cn) = (_median_time(prefill, repeats), _median_time(gen_n(1), repeats),
                                    _median_time(gen_n(new_tokens), repeats))
    return {
        "prompt_tokens": n_prompt,
        "prefill_tok_s": n_prompt / pw,
        "decode_tok_s": (new_tokens - 1) / max(wn - w1, 1e-9),
        "gen_latency_s": wn,
        "prefill_tok_cpu_s": n_prompt / pc,
        "decode_tok_cpu_s": (new_tokens - 1) / max(cn - c1, 1e-9),
        "gen_cpu_s": cn,
    }


def _latency_vs_baseline(gen, plain, msgs, new_tokens: int, repeats: int) -> dict:
    """Median latency of LocalGenerator.generate and of plain transformers generate (same weights, same
    tokens), measured in alternation so load changes hit both alike."""
    import torch

    tok = gen.tokenizer

    def ours():
        return gen.generate(msgs, max_new_tokens=new_tokens)

    def baseline():
        with torch.inference_mode():
            enc = tok.apply_chat_template(msgs, add_generation_prompt=True, return_tensors="pt", return_dict=True)
            out = plain.generate(**enc, max_new_tokens=new_tokens, do_sample=False, pad_token_id=tok.pad_token_id)
            return tok.decode(out[0, enc["input_ids"].shape[1]:], skip_special_tokens=True)

    ours(), baseline()
    t = {"ours": [], "base": [], "ours_cpu": [], "base_cpu": []}
    for _ in range(repeats):
        c0, t0 = time.process_time(), time.perf_counter()
        g = ours()
        t["ours"].append(time.perf_counter() - t0)
        t["ours_cpu"].append(time.process_time() - c0)
        c0, t0 = time.process_time(), time.perf_counter()
        text = baseline()
        t["base"].append(time.perf_counter() - t0)
        t["base_cpu"].append(time.process_time() - c0)
    if text.strip() != g.text:
        print("warning: baseline and LocalGenerator outputs differ", file=sys.stderr)
    res = {k: statistics.median(v) for k, v in t.items()}
    res["new_tokens"] = g.completion_tokens
    return res


def _perplexity(gen, ids, window: int = 512) -> float:
    import torch

    model = gen.model
    autocast = gen.plan.dtype == "bfloat16" and gen.plan.bf16_mode == "autocast"
    nll, count = 0.0, 0
    with torch.inference_mode():
        for start in range(0, ids.shape[0] - 1, window):
            chunk = ids[start : start + window + 1].unsqueeze(0)
            if chunk.shape[1] < 2:
                break
            if autocast:
                with torch.autocast("cpu", dtype=torch.bfloat16):
                    logits = model(input_ids=chunk[:, :-1]).logits
            else:
                logits = model(input_ids=chunk[:, :-1]).logits
            loss = torch.nn.functional.cross_entropy(logits[0].float(), chunk[0, 1:], reduction="sum")
            nll += float(loss)
            count += chunk.shape[1] - 1
    return math.exp(nll / count)


# ------------------------------------------------------------------------------------------------ main


def run(args: argparse.Namespace) -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from tqdm.auto import tqdm

    t_start = time.perf_counter()
    import torch
    from transformers import AutoModelForCausalLM

    from autorag_hp.generators import LocalGenerator
    from autorag_hp.generators.accel import cpu_capabilities, cpu_tier, plan_acceleration

    names = [v.strip() for v in args.variants.split(",") if v.strip()]
    bad = [v for v in names if v not in VARIANTS]
    if bad or "fp32" not in names:
        raise SystemExit(f"--variants must include fp32 and only use {list(VARIANTS)}; got {names}")
    quality_names = [v for v in args.quality_variants.split(",") if v.strip() and v in names and v != "fp32"]
    if not os.path.isdir(os.path.join(args.docs, "faq")):
        raise SystemExit(f"{args.docs}/faq not found: apt-get install -y python3.11-doc, or pass --docs")
    items = _faq_items(args.docs)
    heldout, heldout_src = _heldout_text(args.docs)
    caps = cpu_capabilities()
    auto_plan = plan_acceleration(caps, threads=args.threads)
    threads = auto_plan.threads
    torch.set_num_threads(threads)

    gens = {}
    for name in tqdm(names, desc="loading variants", file=sys.stderr):
        gens[name] = LocalGenerator(args.model, threads=threads, **VARIANTS[name])
    fp32 = gens["fp32"]
    plain = AutoModelForCausalLM.from_pretrained(str(fp32.model_dir), dtype=torch.float32).eval()
    msgs = _rag_messages(fp32, items, args.prompt_tokens)

    speed = {}
    for name in tqdm(names, desc="speed (prefill, decode, latency)", file=sys.stderr):
        speed[name] = _speed(gens[name], msgs, args.new_tokens, args.repeats)
    latency = _latency_vs_baseline(fp32, plain, msgs, args.new_tokens, args.repeats)
    base_speed = _speed(fp32, msgs, args.new_tokens, args.repeats, model=plain)

    # Quality: greedy equality with fp32 on N FAQ prompts (batches of 10, same batching for every variant).
    qitems = items[: args.quality_prompts]
    prompts = [_short_messages(it) for it in qitems]
    outs = {}
    for name in tqdm(["fp32", *quality_names] if prompts else [], desc="quality: greedy outputs", file=sys.stderr):
        texts = []
        for i in range(0, len(prompts), 10):
            texts += [g.text for g in gens[name].generate_batch(prompts[i : i + 10], max_new_tokens=args.new_tokens)]
        outs[name] = texts
    ids = fp32.tokenizer(heldout, return_tensors="pt", add_special_tokens=False)["input_ids"][0][: args.ppl_tokens]
    ppl = {name: _perplexity(gens[name], ids) for name in tqdm(names, desc="perplexity", file=sys.stderr)}

    # ---------------------------------------------------------------------------------------------- report
    cmd = "autorag-hp " + " ".join(["bench-generator", *sys.argv[2:]]) if sys.argv[1:2] == ["bench-generator"] \
        else "autorag-hp bench-generator " + " ".join(sys.argv[1:])
    load = os.getloadavg()
    flags = [k for k in ("amx_bf16", "amx_int8", "avx512_bf16", "avx512_vnni", "avx512_f", "avx2") if caps.get(k)]
    lines = [
        "# Local generator benchmark",
        "",
        "```",
        cmd,
        "```",
        "",
        f"- Model: `{Path(fp32.source).name}` (converted copy `{fp32.model_dir.name}`); torch {torch.__version__}, "
        f"Python {platform.python_version()}",
        f"- CPU: {caps.get('cpu_name', platform.processor())}, tier `{cpu_tier(caps)}`, flags: {', '.join(flags)}; "
        f"{caps.get('num_physical_cores', '?')} physical cores; torch threads = {threads}",
        f"- `dtype='auto'` picks **{auto_plan.dtype}** here ({'; '.join(auto_plan.reasons)})",
        f"- Load average at the end: {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} (shared machine: other jobs "
        "ran at the same time, so absolute numbers are noisy; variants were measured in the same run)",
        "- No CPU with AMX was available: the AMX path is covered only by tests with faked capability tables.",
        f"- Prompt: {speed['fp32']['prompt_tokens']} tokens (FAQ passages + a question, chat template), "
        f"{args.new_tokens} new tokens (greedy, forced length), median of {args.repeats} after one warm-up",
        "",
        "## Speed",
        "",
        "Wall-clock columns suffer from the other jobs on this machine; the CPU-time columns (tokens per "
        "CPU-second of this process) count only our own work and are the fairer comparison here.",
        "",
        "| variant | prefill tok/s (wall) | decode tok/s (wall) | latency, s (wall) | prefill tok/CPU-s | "
        "decode tok/CPU-s | CPU-s per request | speed-up vs fp32 (CPU-s) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    ref = speed["fp32"]["gen_cpu_s"]
    rows = [(n, speed[n]) for n in names] + [("plain transformers fp32 (baseline)", base_speed)]
    for name, s in rows:
        lines.append(f"| {name} | {s['prefill_tok_s']:.0f} | {s['decode_tok_s']:.1f} | {s['gen_latency_s']:.2f} | "
                     f"{s['prefill_tok_cpu_s']:.0f} | {s['decode_tok_cpu_s']:.1f} | {s['gen_cpu_s']:.2f} | "
                     f"{ref / s['gen_cpu_s']:.2f}x |")
    ratio = latency["base"] / latency["ours"]
    ratio_cpu = latency["base_cpu"] / latency["ours_cpu"]
    lines += [
        "",
        f"Overhead of `LocalGenerator.generate` (chat template, tokenize, lock, decode, counts) against plain "
        f"`tokenizer.apply_chat_template` + `model.generate` + `decode` on the same fp32 weights, same "
        f"{latency['new_tokens']} new tokens, alternating calls, median of {args.repeats}: "
        f"wall ours {latency['ours']:.3f} s vs baseline {latency['base']:.3f} s (ratio {ratio:.3f}); "
        f"CPU ours {latency['ours_cpu']:.3f} s vs baseline {latency['base_cpu']:.3f} s "
        f"(**ratio baseline/ours = {ratio_cpu:.3f}**, target >= 0.95: {'met' if ratio_cpu >= 0.95 else 'NOT met'}).",
        "",
        "## Quality",
        "",
        f"Greedy outputs ({args.new_tokens} new tokens) on the first {len(prompts)} FAQ questions (python3.11-doc "
        "`faq/*.rst.txt`, question + the start of its answer as context), compared with fp32:",
        "",
        "| variant | identical to fp32 | perplexity | vs fp32 |",
        "|---|---:|---:|---:|",
    ]
    for name in names:
        same = "—" if name not in outs else f"{sum(a == b for a, b in zip(outs[name], outs['fp32']))}/{len(prompts)}"
        if name == "fp32":
            same = "(reference)"
        rel = (ppl[name] / ppl["fp32"] - 1) * 100
        lines.append(f"| {name} | {same} | {ppl[name]:.3f} | {rel:+.2f} % |")
    lines += [
        "",
        f"Perplexity on {int(ids.shape[0])} held-out tokens of `{heldout_src}` (windows of 512 tokens). "
        "Target: within 2 % of fp32.",
        "",
        f"Total run time: {time.perf_counter() - t_start:.0f} s.",
        "",
    ]
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines))
    print("\n".join(lines))
    print(f"wrote {out}", file=sys.stderr)
    return 0
