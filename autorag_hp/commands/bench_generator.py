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

``--compare-models smollm2-135m,qwen2.5-coder-0.5b,gemma3-270m`` compares *models* instead (answer quality in
English and Chinese against the references, and speed, in one run: :mod:`autorag_hp.evaluation.generator_compare`;
eval/results/zh_generator/README.md).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

from autorag_hp.evaluation import generator_bench as bench
from autorag_hp.evaluation.generator_bench import BASELINE, VARIANTS


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
    c = parser.add_argument_group("model comparison: autorag-hp bench-generator --compare-models A,B,...")
    c.add_argument("--compare-models", default=None,
                   help="comma-separated bundled model names, .gguf files or model folders (the first is the "
                        "reference of the paired intervals and latency ratios)")
    c.add_argument("--questions", type=int, default=40, help="questions per language, spread over the set")
    c.add_argument("--langs", default="en,zh", help="en (python_docs), zh (debian_reference_zh) or both")
    c.add_argument("--context-tokens", type=int, default=300, help="gold-context window, count_tokens tokens")
    c.add_argument("--answer-tokens", type=int, default=64, help="max new tokens per answer")
    c.add_argument("--generate-batch", type=int, default=0, help="also time the answers in batches of this size")


def run(args: argparse.Namespace) -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if args.compare_models:
        return run_compare(args)
    import warnings

    from tqdm.auto import tqdm

    t_start = time.perf_counter()
    import torch
    from transformers import AutoModelForCausalLM

    from autorag_hp.generators import LocalGenerator
    from autorag_hp.generators.accel import plan_acceleration
    from autorag_hp.generators.capabilities import ISA_ENV, cpu_capabilities, cpu_tier
    from autorag_hp.generators.quality_gate import CALIBRATION_DOC, CALIBRATION_TOKENS, MAX_PPL_INCREASE

    names = [v.strip() for v in args.variants.split(",") if v.strip()]
    bad = [v for v in names if v not in VARIANTS]
    if bad or "fp32" not in names:
        raise SystemExit(f"--variants must include fp32 and only use {list(VARIANTS)}; got {names}")
    items = bench.faq_items()
    heldout, heldout_src = bench.heldout_text()
    caps, raw = cpu_capabilities(), cpu_capabilities(effective=False)
    cpu = bench.cpu_line(caps, raw)
    threads = plan_acceleration(caps, threads=args.threads).threads
    torch.set_num_threads(threads)
    print(f"[{cpu}] threads={threads}", file=sys.stderr)

    gens, skipped = {}, {}
    for name in tqdm(names, desc="loading variants", file=sys.stderr):
        why = None if args.all_variants else bench.gate_reason(name, caps)
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
    msgs = bench.rag_messages(fp32, items, args.prompt_tokens)

    runs = {name: bench.speed_fns(gens[name], msgs, args.new_tokens) for name in names}
    runs[BASELINE] = bench.speed_fns(fp32, msgs, args.new_tokens, model=plain)
    with tqdm(total=args.repeats * len(runs), desc="speed (round-robin)", file=sys.stderr) as bar:
        speed = bench.speed_all(runs, args.new_tokens, args.repeats, bar)
    base_speed = speed.pop(BASELINE)
    for name in names:
        sp = speed[name]
        print(f"[{cpu}] {name} ({gens[name].plan.describe()}): prefill {sp['prefill_tok_s']:.0f} tok/s, decode "
              f"{sp['decode_tok_s']:.1f} tok/s, latency {sp['gen_latency_s']:.2f} s", file=sys.stderr)
    latency = bench.latency_vs_baseline(fp32, plain, msgs, args.new_tokens, args.repeats)

    # Quality: greedy equality with fp32 on N FAQ prompts (batches of 10, same batching for every variant).
    qitems = items[: args.quality_prompts]
    prompts = [bench.short_messages(it) for it in qitems]
    outs = {}
    for name in tqdm(["fp32", *quality_names] if prompts else [], desc="quality: greedy outputs", file=sys.stderr):
        texts = []
        for i in range(0, len(prompts), 10):
            texts += [g.text for g in gens[name].generate_batch(prompts[i : i + 10], max_new_tokens=args.new_tokens)]
        outs[name] = texts
    ids = fp32.tokenizer(heldout, return_tensors="pt", add_special_tokens=False)["input_ids"][0][: args.ppl_tokens]
    ppl = {name: bench.perplexity(gens[name], ids) for name in tqdm(names, desc="perplexity", file=sys.stderr)}

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
        f"Target: within {MAX_PPL_INCREASE:.0%} of fp32, which `auto` also holds its choice to (on "
        f"{CALIBRATION_TOKENS} tokens of the bundled {CALIBRATION_DOC}: `autorag_hp.generators.quality_gate`).",
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


def run_compare(args: argparse.Namespace) -> int:
    """``--compare-models``: every model answers the same English and Chinese questions; quality and speed."""
    import warnings

    from tqdm.auto import tqdm

    from autorag_hp.evaluation import generator_compare as cmp
    from autorag_hp.evaluation.cpu_kinds import this_cpu
    from autorag_hp.generators import LocalGenerator
    from autorag_hp.generators.capabilities import cpu_capabilities

    names = [m.strip() for m in args.compare_models.split(",") if m.strip()]
    langs = [x.strip() for x in args.langs.split(",") if x.strip()]
    bad = [x for x in langs if x not in cmp.SETS]
    if len(names) < 2 or bad:
        raise SystemExit(f"--compare-models needs two or more models and --langs only {sorted(cmp.SETS)}; "
                         f"got {names}, {langs}")
    cpu = this_cpu()
    caps = cpu_capabilities()
    cpu_text = (f"{caps.get('cpu_name') or cpu.get('cpu')}, torch CPU capability {cpu.get('capability')}, "
                f"flags {', '.join(cpu.get('flags', []))}, torch {cpu.get('torch')}, {os.cpu_count()} logical CPUs")
    sets = {lang: cmp.question_set(lang, args.questions, args.context_tokens) for lang in langs}
    gens, load_s, sources = {}, {}, {}
    for name in tqdm(names, desc="loading models", file=sys.stderr):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            gens[name] = LocalGenerator(name, threads=args.threads, cache_dir=args.cache_dir)
        load_s[name] = gens[name].load_s
        sources[name] = Path(gens[name].source).name
        print(f"[{cpu_text}] {name}: {gens[name].describe()}", file=sys.stderr)
    t0 = time.perf_counter()
    with tqdm(total=sum(len(v) for v in sets.values()), desc="answers (models take turns)", file=sys.stderr) as bar:
        runs = cmp.compare(gens, sets, args.answer_tokens, args.generate_batch, bar)
    cmd = "autorag-hp bench-generator " + " ".join(sys.argv[2:] if sys.argv[1:2] == ["bench-generator"]
                                                   else sys.argv[1:])
    lines = ["# Local models: answer quality (English, Chinese) and speed", "",
             *[f"- **{n}**" for n in args.note], *([""] if args.note else [])]
    lines += cmp.report(runs, names, langs, cpu=cpu_text, command=cmd, sources=sources,
                        max_new_tokens=args.answer_tokens, context_tokens=args.context_tokens, batch=args.generate_batch,
                        load_s=load_s)
    lines += ["", f"Answering took {time.perf_counter() - t0:.0f} s.", "", "## Examples", "",
              *cmp.examples(runs, sets, names), ""]
    out = Path(args.out or "eval/results/zh_generator/README.md")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines))
    raw = out.with_suffix(".answers.jsonl")  # every answer with its scores and timings
    import json

    with raw.open("w", encoding="utf-8") as fh:
        for (name, lang), r in runs.items():
            for i, (q, _) in enumerate(sets[lang]):
                fh.write(json.dumps({"model": name, "lang": lang, "question_id": q.id, "answer": r.texts[i],
                                     "f1": r.scores["f1"][i], "precision": r.scores["precision"][i],
                                     "wall_s": round(r.wall_s[i], 4), "cpu_s": round(r.cpu_s[i], 4),
                                     "prompt_tokens": r.prompt_tokens[i],
                                     "completion_tokens": r.completion_tokens[i]}, ensure_ascii=False) + "\n")
    print("\n".join(lines))
    print(f"wrote {out} and {raw}", file=sys.stderr)
    return 0
