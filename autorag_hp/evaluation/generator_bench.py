"""Measurements behind ``autorag-hp bench-generator`` (:mod:`autorag_hp.commands.bench_generator`): the variants
it compares, prompts built from the bundled data (a ~300-token RAG prompt, short FAQ prompts, held-out tutorial
text), round-robin prefill / decode / latency timings, the overhead against plain ``transformers`` ``generate``,
perplexity, and the capability line and gates every result carries. torch is imported inside the functions.
"""

from __future__ import annotations

import contextlib
import statistics
import sys
import time

from autorag_hp.generators.capabilities import has_native_bf16, has_vnni, relevant_flags

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


# ------------------------------------------------------------------------------------------------ data


def faq_items() -> list[tuple[str, str]]:
    """(question, answer text) pairs from the bundled FAQ (``python_docs_faq`` questions with their answers)."""
    from autorag_hp.rag.data import load_bundled_questions

    items = []
    for q in load_bundled_questions("python_docs_faq"):
        body = " ".join(line.strip() for line in (q.answer or "").splitlines() if line.strip())
        if len(body) > 80:
            items.append((q.question, body))
    return items


def heldout_text() -> tuple[str, str]:
    """The Python tutorial (the ``tutorial/`` documents of the bundled ``python_docs`` corpus): not FAQ text."""
    from autorag_hp.rag.data import load_bundled_corpus

    docs = [d for d in load_bundled_corpus("python_docs") if d.id.startswith("tutorial/")]
    if not docs:
        raise SystemExit("the bundled python_docs corpus has no tutorial/ documents; reinstall autorag-hp")
    return "\n\n".join(d.text for d in docs), f"bundled python_docs tutorial/*.rst ({len(docs)} documents)"


def rag_messages(gen, items, target_tokens: int, question_idx: int = 0) -> list[dict]:
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


def short_messages(item) -> list[dict]:
    q, body = item
    return [{"role": "user", "content": f"Context: {body[:600]}\n\nQuestion: {q}"}]


# ------------------------------------------------------------------------------------------------ timing


def speed_fns(gen, msgs, new_tokens: int, model=None):
    """(prompt tokens, {"prefill": fn, "gen1": fn, "genN": fn}) on ``gen``'s model (or ``model``, same tokenizer)."""
    import torch

    enc = gen.encode([gen.format_prompt(msgs)])
    autocast = model is None and gen.plan.bf16_autocast
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


def speed_all(runs: dict, new_tokens: int, repeats: int, progress=None) -> dict:
    """Prefill tok/s, decode tok/s and latency of every entry of ``runs`` (name -> :func:`speed_fns`), median of
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


def latency_vs_baseline(gen, plain, msgs, new_tokens: int, repeats: int) -> dict:
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


def perplexity(gen, ids, window: int = 512) -> float:
    """Perplexity of ``gen``'s model on the token ids ``ids``, in windows of ``window`` tokens."""
    from autorag_hp.generators.quality_gate import model_perplexity

    return model_perplexity(gen.model, ids, window, bf16_autocast=gen.plan.bf16_autocast)


# ------------------------------------------------------------------------------------------------ capability


def cpu_line(caps: dict, raw: dict) -> str:
    """``torch capability AVX2; flags: avx2 (CPU reports: amx_bf16, ...)`` for every result line."""
    eff, rep = relevant_flags(caps), relevant_flags(raw)
    line = f"torch CPU capability {caps.get('torch_cpu_capability') or '?'}; kernel flags: {', '.join(eff) or 'none'}"
    if rep != eff:
        line += f" (the CPU itself reports {', '.join(rep)}; the rest are masked by the environment)"
    return line


def gate_reason(name: str, caps: dict) -> str | None:
    """Why the capability gates rule out the kernel of ``name`` here, or None."""
    kernel = VARIANT_KERNEL.get(name)
    if kernel == "int8" and not has_vnni(caps):
        return "no VNNI: torch._int_mm is emulated (slower than fp32)"
    if kernel in ("bf16", "int8-weight") and not has_native_bf16(caps):
        return "no native bf16: emulated (slower than fp32)"
    return None
