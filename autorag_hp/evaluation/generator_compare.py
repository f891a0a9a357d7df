"""Which local model answers best, and how fast: ``autorag-hp bench-generator --compare-models A,B,...``.

Every model answers the same fixed questions from the bundled English (``python_docs``) and Chinese
(``debian_reference_zh``) sets, each given its gold section as the only context (a window of
``context_tokens`` tokens by :func:`~autorag_hp.evaluation.metrics.count_tokens`, placed on the reference answer
when the section quotes it) through the pipeline's own ``concise`` prompt, greedy. Quality is the project's
``token_f1`` (English: SQuAD words; Chinese: characters, CMRC 2018) against the reference, with a paired interval
against the first model over the questions. Speed is measured in the same run, the models taking turns on each
question (so a busy machine slows them alike): wall and CPU milliseconds per answer and completion tokens per
second, one answer at a time; optionally also in batches (``--generate-batch``). The CPU and each model's kernel plan
are named in the report. torch is imported by the generators, inside their functions.
"""

from __future__ import annotations

import math
import resource
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from autorag_hp.evaluation.metrics import token_f1, token_precision, token_recall
from autorag_hp.rag.generation import cut_to_tokens
from autorag_hp.types import Answer, Context, QAItem

SETS = {"en": "python_docs", "zh": "debian_reference_zh"}
METRICS = {"f1": token_f1, "precision": token_precision, "recall": token_recall}


@dataclass
class Run:
    """One model's answers and timings on one language's questions."""

    model: str
    lang: str
    plan: str = ""
    texts: list[str] = field(default_factory=list)
    scores: dict[str, list[float]] = field(default_factory=dict)
    wall_s: list[float] = field(default_factory=list)
    cpu_s: list[float] = field(default_factory=list)
    prompt_tokens: list[int] = field(default_factory=list)
    completion_tokens: list[int] = field(default_factory=list)
    batch_wall_s: float | None = None  # per answer, in batches

    def mean(self, metric: str) -> float:
        return statistics.fmean(self.scores[metric])

    @property
    def tokens_per_s(self) -> float:
        return sum(self.completion_tokens) / max(sum(self.wall_s), 1e-9)


def gold_window(text: str, reference: str | None, budget: int) -> str:
    """At most ``budget`` tokens of a gold section: from a little before the reference answer when the section
    quotes it (Chinese answers are quoted spans), else from the start (English references are whole sections)."""
    start = text.find(reference.strip()) if reference and reference.strip() else -1
    if start > 0:
        before = cut_to_tokens(text[:start][::-1], budget // 4)[::-1]  # about a quarter of the budget before it
        start -= len(before)
    return cut_to_tokens(text[max(start, 0):], budget)


def question_set(lang: str, n: int, context_tokens: int) -> list[tuple[QAItem, list[Context]]]:
    """``n`` questions spread evenly over the bundled set of ``lang`` (every k-th), each with its gold window."""
    from autorag_hp.rag.data import DATA_DIR, load_corpus, load_questions

    name = SETS[lang]
    docs = {d.id: d for d in load_corpus(DATA_DIR / f"{name}.corpus.jsonl.gz")}
    items = [q for q in load_questions(DATA_DIR / f"{name}.qa.jsonl.gz") if q.answer and q.sources
             and q.sources[0] in docs]
    if len(items) < n:
        raise SystemExit(f"{name} has {len(items)} questions with a reference and a gold section; asked for {n}")
    step = len(items) / n
    chosen = [items[int(i * step)] for i in range(n)]
    return [(q, [Context(q.sources[0], gold_window(docs[q.sources[0]].text, q.answer, context_tokens))])
            for q in chosen]


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def paired_interval(a: Sequence[float], b: Sequence[float]) -> tuple[float, float, float]:
    """Mean of ``a - b`` over paired questions and its 95 % normal interval."""
    d = [x - y for x, y in zip(a, b, strict=True)]
    m = statistics.fmean(d)
    se = statistics.stdev(d) / math.sqrt(len(d)) if len(d) > 1 else float("inf")
    return m, m - 1.96 * se, m + 1.96 * se


def compare(gens: dict, sets: dict[str, list[tuple[QAItem, list[Context]]]], max_new_tokens: int,
            batch: int = 0, progress=None) -> dict[tuple[str, str], Run]:
    """Answer every question of every set with every generator (taking turns per question); return the runs."""
    from autorag_hp.rag.prompts import render

    runs: dict[tuple[str, str], Run] = {}
    for lang, items in sets.items():
        for name, gen in gens.items():
            runs[name, lang] = Run(name, lang, gen.plan.describe(),
                                   scores={m: [] for m in METRICS})
        for q, ctx in items:
            msgs = render("concise", q.question, ctx)
            for name, gen in gens.items():
                run = runs[name, lang]
                t0, c0 = time.perf_counter(), _cpu()
                g = gen.generate(msgs, max_new_tokens=max_new_tokens)
                run.wall_s.append(time.perf_counter() - t0)
                run.cpu_s.append(_cpu() - c0)
                run.texts.append(g.text)
                run.prompt_tokens.append(g.prompt_tokens)
                run.completion_tokens.append(g.completion_tokens)
                answer = Answer(g.text, tuple(ctx), g.prompt_tokens, g.completion_tokens, g.latency_s, 1)
                for m, fn in METRICS.items():
                    run.scores[m].append(float(fn(answer, q)))
            if progress is not None:
                progress.update(1)
        if batch > 1:
            prompts = [render("concise", q.question, ctx) for q, ctx in items]
            for name, gen in gens.items():
                t0 = time.perf_counter()
                for i in range(0, len(prompts), batch):
                    gen.generate_batch(prompts[i:i + batch], max_new_tokens=max_new_tokens)
                runs[name, lang].batch_wall_s = (time.perf_counter() - t0) / len(prompts)
    return runs


def report(runs: dict[tuple[str, str], Run], names: Sequence[str], langs: Sequence[str], *, cpu: str,
           command: str, sources: dict[str, str], max_new_tokens: int, context_tokens: int, batch: int,
           load_s: dict[str, float]) -> list[str]:
    """The Markdown table lines: quality per language with the paired interval against ``names[0]``, then speed."""
    base = names[0]
    lines = [
        "| model | language | questions | F1 | precision | recall | ΔF1 vs " + base + " (95 % paired) "
        "| ms / answer (wall) | ms / answer (CPU) | completion tok/s | prompt tokens (mean) "
        "| completion tokens (mean) | vs " + base + " latency |"
        + (f" ms / answer, batch {batch} |" if batch > 1 else ""),
        "|---|---|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|" + ("---:|" if batch > 1 else ""),
    ]
    for lang in langs:
        ref = runs[base, lang]
        for name in names:
            r = runs[name, lang]
            if name == base:
                delta = "(reference)"
            else:
                m, lo, hi = paired_interval(r.scores["f1"], ref.scores["f1"])
                delta = f"{m:+.3f} [{lo:+.3f}, {hi:+.3f}]"
            ms = 1000 * statistics.fmean(r.wall_s)
            row = (f"| {name} | {lang} ({SETS[lang]}) | {len(r.wall_s)} | {r.mean('f1'):.3f} | "
                   f"{r.mean('precision'):.3f} | {r.mean('recall'):.3f} | {delta} | {ms:.0f} | "
                   f"{1000 * statistics.fmean(r.cpu_s):.0f} | {r.tokens_per_s:.1f} | "
                   f"{statistics.fmean(r.prompt_tokens):.0f} | {statistics.fmean(r.completion_tokens):.1f} | "
                   f"{statistics.fmean(r.wall_s) / statistics.fmean(ref.wall_s):.2f}x |")
            if batch > 1:
                row += f" {1000 * (r.batch_wall_s or float('nan')):.0f} |"
            lines.append(row)
    lines += ["", "Kernel plans (`quantize='auto'`, `dtype='auto'`: what the generator's plan picked on this CPU):", ""]
    lines += [f"- `{n}` ({sources[n]}; loaded in {load_s[n]:.0f} s): {runs[n, langs[0]].plan}" for n in names]
    lines += [
        "",
        f"- CPU: {cpu}",
        f"- Context: the gold section only, a window of at most {context_tokens} tokens (`count_tokens`) that starts "
        "a little before the quoted reference when the section contains it, else at the section start; prompt "
        f"`concise` (the pipeline's), greedy, at most {max_new_tokens} new tokens, EOS stops earlier.",
        "- F1 / precision / recall: `token_f1` / `token_precision` / `token_recall` of "
        "`autorag_hp.evaluation.metrics` (English: SQuAD-normalised words; Chinese: characters after removing "
        "punctuation, Latin words whole). The English references are whole FAQ sections (long), so English "
        "recall and F1 are low for any short answer; precision says more there.",
        "- Speed: one answer at a time, the models taking turns on each question, wall and process CPU time "
        "(with several threads CPU time would include spin-waiting); completion tok/s = completion tokens / wall "
        "time over the set.",
        f"- Load average at the end: {' / '.join(f'{x:.1f}' for x in __import__('os').getloadavg())}.",
        "",
        "```",
        command,
        "```",
    ]
    return lines


def examples(runs: dict[tuple[str, str], Run], sets: dict, names: Sequence[str], k: int = 3) -> list[str]:
    """The first ``k`` answers of each model per language, for the reader to see what the scores mean."""
    lines = []
    for lang, items in sets.items():
        for i, (q, _) in enumerate(items[:k]):
            lines.append(f"- **{lang} Q{i + 1}** {q.question.strip()} — reference: "
                         f"{' '.join((q.answer or '').split())[:160]}")
            for n in names:
                text = " ".join(runs[n, lang].texts[i].split())[:200].replace("|", "\\|")
                lines.append(f"  - `{n}` (F1 {runs[n, lang].scores['f1'][i]:.2f}): {text}")
    return lines

