"""``autorag-hp bench-generator``: speed and quality of the local generator on this CPU.

For each variant (fp32, ``auto`` = what ``quantize="auto"``/``dtype="auto"`` choose here, int8 = W8A8 per-token,
int8-weight = W8 + bf16 activations, bf16 weights; optionally bf16 autocast) in one run: prefill tokens/s on a
~300-token RAG prompt, decode tokens/s, end-to-end latency for that prompt + 32 new tokens, with plain
``transformers`` ``generate`` on the same fp32 model as the baseline (our overhead ratio = baseline latency /
ours). Quality: greedy outputs of each variant equal to fp32 on N FAQ prompts, and perplexity on held-out text
(the Python tutorial documents of the bundled ``python_docs`` corpus), relative to fp32. All data is bundled.

Every result carries the torch CPU capability (``torch.backends.cpu.get_cpu_capability()``) and the flags that
choose kernels. Variants the capability gates rule out (int8 without VNNI, bf16 / int8-weight without native
bf16: emulated, slower than fp32) are skipped unless ``--all-variants``; variants that fail to load are skipped
with the reason.

    autorag-hp bench-generator --out eval/results/generator_bench_<kind>.md --threads 1
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import statistics
import sys
import time
from pathlib import Path

VARIANTS = {
    "fp32": {"dtype": "float32"},
    "auto": {},  # the defaults: quantize="auto", dtype="auto"
    "int8": {"quantize": "int8"},
    "int8-weight": {"quantize": "int8-weight", "dtype": "bfloat16"},
    "bf16": {"dtype": "bfloat16", "bf16_mode": "weights"},
    "bf16-autocast": {"dtype": "bfloat16", "bf16_mode": "autocast"},
}
# The kernel each variant runs, for the capability gates (auto gates itself).
VARIANT_KERNEL = {"fp32": "fp32", "int8": "int8", "int8-weight": "int8-weight", "bf16": "bf16",
                  "bf16-autocast": "bf16"}
BASELINE = "plain transformers fp32 (baseline)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", default=None,
                        help="markdown report path (default: eval/results/generator_bench_<cpu tier>.md)")
    parser.add_argument("--model", default=None, help="model dir or .gguf (default: bundled SmolLM2-135M-Instruct)")
    parser.add_argument("--variants", default="fp32,auto,int8,int8-weight,bf16",
                        help=f"comma-separated subset of {','.join(VARIANTS)}")
    parser.add_argument("--all-variants", action="store_true",
                        help="also time variants the capability gates rule out (emulated kernels: slow)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: physical cores)")
    parser.add_argument("--prompt-tokens", type=int, default=300, help="length of the RAG prompt")
    parser.add_argument("--new-tokens", type=int, default=32, help="new tokens per generation")
    parser.add_argument("--repeats", type=int, default=3, help="timed repeats per measurement (median)")
    parser.add_argument("--quality-prompts", type=int, default=50, help="FAQ prompts for the greedy-equality check")
    parser.add_argument("--quality-variants", default="auto,int8,int8-weight,bf16",
                        help="variants whose greedy outputs are compared with fp32 (slow ones can be left out)")
    parser.add_argument("--ppl-tokens", type=int, default=4096, help="held-out tokens for perplexity")
    parser.add_argument("--cache-dir", default=None,
                        help="model + kernel-plan cache (default: $AUTORAG_HP_CACHE/models or ~/.cache/autorag-hp/models)")
    parser.add_argument("--note", action="append", default=[], help="a line added to the report (repeatable)")


# ------------------------------------------------------------------------------------------------ data


def _faq_items() -> list[tuple[str, str]]:
    """(question, answer text) pairs from the bundled FAQ (``python_docs_faq`` questions with their answers)."""
    from autorag_hp.rag.data import load_bundled_questions

    items = []
    for q in load_bundled_questions("python_docs_faq"):
        body = " ".join(line.strip() for line in (q.answer or "").splitlines() if line.strip())
        if len(body) > 80:
            items.append((q.question, body))
    return items


def _heldout_text() -> tuple[str, str]:
    """The Python tutorial (the ``tutorial/`` documents of the bundled ``python_docs`` corpus): not FAQ text."""
    from autorag_hp.rag.data import load_bundled_corpus

    docs = [d for d in load_bundled_corpus("python_docs") if d.id.startswith("tutorial/")]
    if not docs:
        raise SystemExit("the bundled python_docs corpus has no tutorial/ documents; reinstall autorag-hp")
    return "\n\n".join(d.text for d in docs), f"bundled python_docs tutorial/*.rst ({len(docs)} documents)"


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


def _speed_fns(gen, msgs, new_tokens: int, model=None):
    """(prompt tokens, {"prefill": fn, "gen1": fn, "genN": fn}) on ``gen``'s model (or ``model``, same tokenizer)."""
    import contextlib

    import torch

    enc = gen.encode([gen.format_prompt(msgs)])
    autocast = model is None and gen.plan.dtype == "bfloat16" and gen.plan.bf16_mode == "autocast"
    model = gen.model if model is None else model

    def scope():
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

    return int(enc["input_ids"].shape[1]), {"prefill": prefill, "gen1": gen_n(1), "genN": gen_n(new_tokens)}


def _speed_all(runs: dict, new_tokens: int, repeats: int, progress=None) -> dict:
    """Prefill tok/s, decode tok/s and latency of every entry of ``runs`` (name -> :func:`_speed_fns`), median of
    ``repeats`` after one warm-up. The variants are measured round-robin (each round times every variant once),
    so a change of load on a shared machine hits all of them alike instead of whichever ran at that moment."""
    times: dict[str, dict[str, list]] = {n: {k: [] for k in ("prefill", "gen1", "genN")} for n in runs}
    for _, fns in runs.items():
        for fn in fns[1].values():
            fn()  # warm-up (oneDNN primitive creation, allocator)
    for _ in range(repeats):
        for name, (_, fns) in runs.items():
            for key, fn in fns.items():
                c0, t0 = time.process_time(), time.perf_counter()
                fn()
                times[name][key].append((time.perf_counter() - t0, time.process_time() - c0))
            if progress is not None:
                progress.update(1)
    out = {}
    for name, (n_prompt, _) in runs.items():
        med = {k: (statistics.median(w for w, _ in v), statistics.median(c for _, c in v))
               for k, v in times[name].items()}
        (pw, pc), (w1, c1), (wn, cn) = med["prefill"], med["gen1"], med["genN"]
        out[name] = {
            "prompt_tokens": n_prompt,
            "prefill_tok_s": n_prompt / pw,
            "decode_tok_s": (new_tokens - 1) / max(wn - w1, 1e-9),
            "gen_latency_s": wn,
            "prefill_tok_cpu_s": n_prompt / pc,
            "decode_tok_cpu_s": (new_tokens - 1) / max(cn - c1, 1e-9),
            "gen_cpu_s": cn,
        }
    return out


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


def _cpu_line(caps: dict, raw: dict) -> str:
    """``torch capability AVX2; flags: avx2 (CPU reports: amx_bf16, ...)`` for every result line."""
    from autorag_hp.generators.capabilities import relevant_flags

    eff, rep = relevant_flags(caps), relevant_flags(raw)
    line = f"torch CPU capability {caps.get('torch_cpu_capability') or '?'}; kernel flags: {', '.join(eff) or 'none'}"
    if rep != eff:
        line += f" (the CPU itself reports {', '.join(rep)}; the rest are masked by the environment)"
    return line


def _gate_reason(name: str, caps: dict) -> str | None:
    """Why the capability gates rule out the kernel of ``name`` here, or None."""
    from autorag_hp.generators.capabilities import has_native_bf16, has_vnni

    kernel = VARIANT_KERNEL.get(name)
    if kernel == "int8" and not has_vnni(caps):
        return "no VNNI: torch._int_mm is emulated (slower than fp32)"
    if kernel in ("bf16", "int8-weight") and not has_native_bf16(caps):
        return "no native bf16: emulated (slower than fp32)"
    return None


def run(args: argparse.Namespace) -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import warnings

    from tqdm.auto import tqdm

    t_start = time.perf_counter()
    import torch
    from transformers import AutoModelForCausalLM

    from autorag_hp.generators import LocalGenerator
    from autorag_hp.generators.accel import plan_acceleration
    from autorag_hp.generators.capabilities import ISA_ENV, cpu_capabilities, cpu_tier

    names = [v.strip() for v in args.variants.split(",") if v.strip()]
    bad = [v for v in names if v not in VARIANTS]
    if bad or "fp32" not in names:
        raise SystemExit(f"--variants must include fp32 and only use {list(VARIANTS)}; got {names}")
    items = _faq_items()
    heldout, heldout_src = _heldout_text()
    caps, raw = cpu_capabilities(), cpu_capabilities(effective=False)
    cpu = _cpu_line(caps, raw)
    threads = plan_acceleration(caps, threads=args.threads).threads
    torch.set_num_threads(threads)
    print(f"[{cpu}] threads={threads}", file=sys.stderr)

    gens, skipped = {}, {}
    for name in tqdm(names, desc="loading variants", file=sys.stderr):
        why = None if args.all_variants else _gate_reason(name, caps)
        if why:
            skipped[name] = f"{why}; --all-variants times it anyway"
            continue
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # slow explicit choices warn; the table shows how slow
                gens[name] = LocalGenerator(args.model, threads=threads, cache_dir=args.cache_dir, **VARIANTS[name])
        except Exception as exc:  # a variant this CPU or torch build cannot run
            skipped[name] = f"cannot run here: {type(exc).__name__}: {exc}"
    for name, why in skipped.items():
        print(f"[{cpu}] {name}: skipped ({why})", file=sys.stderr)
    names = [n for n in names if n in gens]
    quality_names = [v for v in args.quality_variants.split(",") if v.strip() and v in names and v != "fp32"]
    fp32 = gens["fp32"]
    plain = AutoModelForCausalLM.from_pretrained(str(fp32.model_dir), dtype=torch.float32).eval()
    msgs = _rag_messages(fp32, items, args.prompt_tokens)

    runs = {name: _speed_fns(gens[name], msgs, args.new_tokens) for name in names}
    runs[BASELINE] = _speed_fns(fp32, msgs, args.new_tokens, model=plain)
    with tqdm(total=args.repeats * len(runs), desc="speed (round-robin)", file=sys.stderr) as bar:
        speed = _speed_all(runs, args.new_tokens, args.repeats, bar)
    base_speed = speed.pop(BASELINE)
    for name in names:
        sp = speed[name]
        print(f"[{cpu}] {name} ({gens[name].plan.describe()}): prefill {sp['prefill_tok_s']:.0f} tok/s, decode "
              f"{sp['decode_tok_s']:.1f} tok/s, latency {sp['gen_latency_s']:.2f} s", file=sys.stderr)
    latency = _latency_vs_baseline(fp32, plain, msgs, args.new_tokens, args.repeats)

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
    env = [f"{k}={os.environ[k]}" for k in ISA_ENV if os.environ.get(k)]
    if env:
        cmd = " ".join(env) + " " + cmd
    load = os.getloadavg()
    lines = [
        "# Local generator benchmark",
        "",
        "```",
        cmd,
        "```",
        "",
        *[f"- **{n}**" for n in args.note],
        f"- Model: `{Path(fp32.source).name}` (converted copy `{fp32.model_dir.name}`); torch {torch.__version__}, "
        f"Python {platform.python_version()}",
        f"- CPU: {caps.get('cpu_name', platform.processor())}, tier `{cpu_tier(caps)}`; {cpu}; "
        f"{caps.get('num_physical_cores', '?')} physical cores, "
        f"{os.cpu_count()} logical CPUs; torch threads = {threads}",
        f"- Environment limits: {', '.join(f'`{e}`' for e in env) if env else 'none'}",
    ]
    if "auto" in gens:
        plan = gens["auto"].plan
        d = plan.decision
        lines.append(f"- `auto` (the defaults `quantize='auto'`, `dtype='auto'`) chose **{plan.kernel}** here: "
                     + (f"{d.describe()}; " if d else "")
                     + "; ".join(r for r in plan.reasons if not r.startswith("auto:")))
    for name, why in skipped.items():
        lines.append(f"- Skipped `{name}`: {why}")
    lines += [
        f"- Load average at the end: {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} (a shared machine: other jobs "
        "may have run at the same time, so absolute numbers are noisy; variants were measured in the same run)",
        f"- Prompt: {speed['fp32']['prompt_tokens']} tokens (FAQ passages + a question, chat template), "
        f"{args.new_tokens} new tokens (greedy, forced length), median of {args.repeats} rounds after one warm-up",
        "",
        "## Speed",
        "",
        "Variants measured round-robin (each round times every variant once). Wall-clock columns suffer from other "
        "jobs on the machine; the CPU-time columns (tokens per CPU-second of this process) count only our own "
        "work (with several threads they also count spin-waiting).",
        "",
        "| variant | plan | torch CPU capability | prefill tok/s (wall) | decode tok/s (wall) | latency, s (wall) | "
        "speed-up vs fp32 (wall) | prefill tok/CPU-s | decode tok/CPU-s | CPU-s per request | "
        "speed-up vs fp32 (CPU-s) |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    ref, ref_wall = speed["fp32"]["gen_cpu_s"], speed["fp32"]["gen_latency_s"]
    rows = [(n, speed[n], gens[n].plan.kernel) for n in names] + [(BASELINE, base_speed, "fp32")]
    cap = caps.get("torch_cpu_capability") or "?"
    for name, s, kernel in rows:
        lines.append(f"| {name} | {kernel} | {cap} | {s['prefill_tok_s']:.0f} | {s['decode_tok_s']:.1f} | "
                     f"{s['gen_latency_s']:.2f} | {ref_wall / s['gen_latency_s']:.2f}x | {s['prefill_tok_cpu_s']:.0f} | "
                     f"{s['decode_tok_cpu_s']:.1f} | {s['gen_cpu_s']:.2f} | {ref / s['gen_cpu_s']:.2f}x |")
    ratio = latency["base"] / latency["ours"]
    ratio_cpu = latency["base_cpu"] / latency["ours_cpu"]
    twin = next((n for n in names if n != "auto" and "auto" in gens and
                 (gens[n].plan.dtype, gens[n].plan.quantize) == (gens["auto"].plan.dtype, gens["auto"].plan.quantize)),
                None)
    if twin:
        d = speed["auto"]["gen_latency_s"] / speed[twin]["gen_latency_s"] - 1
        lines += ["", f"`auto` runs the same kernel as `{twin}`: their latencies differ by {d:+.0%}, which is the "
                      "measurement noise of this run."]
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
        f"Greedy outputs ({args.new_tokens} new tokens) on the first {len(prompts)} bundled FAQ questions "
        "(`python_docs_faq`, question + the start of its answer as context), compared with fp32:",
        "",
        "| variant | plan | identical to fp32 | perplexity | vs fp32 |",
        "|---|---|---:|---:|---:|",
    ]
    for name in names:
        same = "—" if name not in outs else f"{sum(a == b for a, b in zip(outs[name], outs['fp32']))}/{len(prompts)}"
        if name == "fp32":
            same = "(reference)"
        rel = (ppl[name] / ppl["fp32"] - 1) * 100
        lines.append(f"| {name} | {gens[name].plan.kernel} | {same} | {ppl[name]:.3f} | {rel:+.2f} % |")
    lines += [
        "",
        f"Perplexity on {int(ids.shape[0])} held-out tokens of the {heldout_src} (windows of 512 tokens). "
        "Target: within 2 % of fp32.",
        "",
        f"Total run time: {time.perf_counter() - t_start:.0f} s.",
        "",
    ]
    out = Path(args.out or f"eval/results/generator_bench_{cpu_tier(caps)}.md")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines))
    print("\n".join(lines))
    print(f"wrote {out}", file=sys.stderr)
    return 0
