"""``autorag-hp tune``: stream questions through a RAG pipeline and tune its configuration online.

    autorag-hp tune --questions 200                          # the bundled FAQ slice (python_docs_faq)
    autorag-hp tune --pipeline python_docs --set embedding=bm25 --questions 200   # whole docs, BM25 only
    autorag-hp tune --pipeline my_pipeline.yaml --corpus my_docs/ --qa my_qa.jsonl --json

Each question: ``Tuner.suggest()`` -> ``pipeline.run(question, config)`` -> reward -> ``Tuner.report()``.
The live progress line shows questions done, mean reward and the best configuration so far; the run ends
with the top configurations (``--json``: a machine-readable summary on stdout instead). Before embedding an
index projected to take more than a minute, it says how long on this machine (timed on a sample of that
index's own chunks) and which ``--space`` / ``--set`` override leaves that embedding out.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from typing import Any

from autorag_hp import overrides

_RULE_TEXT = ("ranked by the policy's own recommendation: the model for additive_lucb, the incumbent for hier_*, "
              "a shrunk mean otherwise")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--pipeline", default="python_docs_faq",
                   help="pipeline spec: a bundled name (%(default)s: the FAQ slice, indexes in minutes; "
                        "python_docs: the whole docs, dense indexes take long; demo) or a YAML file")
    overrides.add_arguments(p)
    p.add_argument("--policy", default="hier_ucb", help="bandit policy (hier_ucb, ucb, thompson, random, grid, ...)")
    p.add_argument("--questions", type=int, default=200,
                   help="questions to stream (the question set is shuffled and repeated as needed)")
    p.add_argument("--corpus", help="your own corpus: a folder of .txt/.md/.rst/.html files or a JSONL of {id, text}")
    p.add_argument("--qa", help="your own questions: JSONL of {question, answer?, sources?}")
    p.add_argument("--generator", help="override the spec's generator: local (SmolLM2) or extractive (no LLM)")
    p.add_argument("--reward", help="reward spec: a bundled name (python_docs_w0.5, paper_w0.5, ...) or a YAML/JSON "
                   "file (see autorag_hp.evaluation.rewards); default: mean of token F1 and gold-source MRR minus "
                   "0.1 x tokens/2000")
    p.add_argument("--storage", default=None, help="tuner storage URL, e.g. sqlite:///tuning.db (default: memory)")
    p.add_argument("--study", default="tune", help="study name inside the storage")
    p.add_argument("--batch-size", type=int, default=1, help="questions per bandit decision (paper: 4)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--timeout", type=float, default=None,
                   help="stop starting new questions after this many seconds and summarize (as Optuna's timeout=)")
    p.add_argument("--top", type=int, default=5, help="how many configurations to list at the end")
    p.add_argument("--cache-dir", default=None, help="index/embedding cache (default: $AUTORAG_HP_CACHE or ~/.cache/autorag-hp)")
    p.add_argument("--json", action="store_true", help="print a JSON summary on stdout")
    p.add_argument("--report", metavar="DIR", default=None,
                   help="also write DIR/report.md with plots (arm means, reward over time, exploration); "
                        "`autorag-hp show --report` makes the same from a stored study")
    p.add_argument("--no-progress", action="store_true", help="no live progress bar")


def _reward_fn(spec: str | None):
    from autorag_hp.evaluation.rewards import DEFAULT_OFFLINE_REWARD, reward_from_spec

    reward = reward_from_spec(spec or DEFAULT_OFFLINE_REWARD)
    desc = json.dumps(reward.to_spec())
    return reward.from_answer, desc if spec else f"default: {desc}"


def _short(config) -> str:
    return " ".join(f"{k}={v}" for k, v in config.items())


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.0f} min" if seconds < 5400 else f"{seconds / 3600:.1f} h"


def build_notice(est, space, hybrid_dense: str) -> str:
    """What ``tune`` prints before embedding a slow index: the embedding, the projected time and how to leave it out."""
    drop = {est.embedding} | ({"hybrid"} if hybrid_dense == est.embedding else set())
    how = overrides.space_without(space, "embedding", drop) or "--set embedding=bm25"
    msg = (f"note: building the {est.embedding} index (chunk_size={est.chunk_size}, {est.chunks:,} chunks) will take "
           f"about {_duration(est.seconds)} on this machine ({est.rate:,.1f} chunks/s, timed on {est.sampled} of its "
           f"chunks); it is cached on disk for later runs.\n  To leave {est.embedding} out, stop (Ctrl-C) and rerun "
           f"with: {how}")
    if how.startswith("--space"):
        msg += "\n  or, BM25 only: --set embedding=bm25"
    return msg


def one_value_notes(space, fixed: dict[str, Any] | None = None) -> list[str]:
    """Warnings for a space that tunes less than it seems to: a parameter with one value, a single configuration."""
    notes = [f"warning: space parameter {p.name!r} has one value ({p.values[0]!r}), so it is not tuned; give it more "
             f"values, or pin it with --set {p.name}={p.values[0]} to say so" for p in space.params if len(p.values) == 1]
    if space.size == 1:
        pinned = f" (pinned: {_short(fixed)})" if fixed else ""
        notes.append(f"warning: the search space has a single configuration{pinned}: every question runs it and there "
                     "is nothing to tune; give a parameter two or more values in the spec's space: or with --space")
    return notes


def resumed_note(tuner, storage: str | None) -> tuple[int, str | None]:
    """``(events, message)``: what ``tune`` says when ``--storage`` already holds the study (how many events it loaded
    and what they were); ``(0, None)`` for a new study."""
    events = tuner.events_folded  # counted by the fold (snapshot + tail): no second read of the log
    if not events:
        return 0, None
    note = (f"resumed study {tuner.study!r} from {storage}: {events} events loaded ({tuner.n_decisions} decisions); "
            "tuning continues from them (another --study or --storage starts afresh)")
    return events, note


def run(args: argparse.Namespace) -> int:
    from autorag_hp.errors import AutoRAGHPError
    from autorag_hp.rag import load_pipeline
    from autorag_hp.tuner import Tuner

    if args.questions < 1:
        print("error: --questions must be at least 1", file=sys.stderr)
        return 2
    if args.timeout is not None and not args.timeout > 0:
        print(f"error: --timeout must be a number of seconds > 0, got {args.timeout}", file=sys.stderr)
        return 2
    if args.qa and not args.corpus:
        print("error: --qa needs --corpus (questions belong to a corpus)", file=sys.stderr)
        return 2
    kwargs: dict[str, Any] = {}
    if args.generator:
        kwargs["generator"] = args.generator
    if args.cache_dir:
        kwargs["cache_dir"] = args.cache_dir
    if not args.no_progress and not args.json:
        kwargs["progress"] = True
    from tqdm.auto import tqdm

    try:
        t_load = time.perf_counter()
        pipe = load_pipeline(args.pipeline, corpus=args.corpus, questions=args.qa, **kwargs)
        space, fixed = overrides.tuned_space(overrides.space_arg(args.space), overrides.config_pairs(args.fixed), pipe)
        pipe.index.on_estimate = lambda est: tqdm.write(build_notice(est, space, pipe.index.hybrid_dense),
                                                        file=sys.stderr)
        items = pipe.questions()
        if not items:
            raise AutoRAGHPError("no questions: give --qa FILE.jsonl with your corpus")
        for it in items:
            pipe.check_question(it)
            if not args.reward and not it.answer and not it.sources:
                raise ValueError(f"question {it.question[:60]!r} has neither a reference answer nor gold sources; "
                                 "add 'answer' or 'sources' to your questions, or pass --reward")
        reward_fn, reward_desc = _reward_fn(args.reward)
        for note in one_value_notes(space, fixed):
            print(note, file=sys.stderr)
        tuner = Tuner(space, policy=args.policy, storage=args.storage, seed=args.seed,
                      batch_size=args.batch_size, study=args.study)
        resumed_events, resumed = resumed_note(tuner, args.storage)
        if resumed:
            print(resumed, file=sys.stderr)
        load_s = time.perf_counter() - t_load
    except (AutoRAGHPError, ValueError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2

    order = list(range(len(items)))
    random.Random(args.seed).shuffle(order)
    stream = [items[order[i % len(order)]] for i in range(args.questions)]

    show = not args.no_progress
    bar = tqdm(total=len(stream), desc="tuning", unit="q", disable=not show, file=sys.stderr,
               dynamic_ncols=True, mininterval=0.5)
    rewards: list[float] = []
    first_s = 0.0
    llm_calls = tokens = 0
    stopped = None
    t0 = time.perf_counter()
    try:
        for item in stream:
            if rewards and args.timeout is not None and time.perf_counter() - t0 >= args.timeout:
                stopped = "timeout"
                break
            trial = tuner.suggest(question=item.id or item.question)
            answer = pipe.run(item, {**fixed, **trial.config})
            r = float(reward_fn(answer, item))
            tuner.report(trial.id, r)
            rewards.append(r)
            if len(rewards) == 1:
                first_s = time.perf_counter() - t0  # includes lazy index builds and model loads
            llm_calls += answer.llm_calls
            tokens += answer.total_tokens
            if show:
                best = tuner.best(1)
                seen = "untried" if best[0].mean is None else f"{best[0].mean:+.3f}"
                bar.set_postfix_str(f"mean={sum(rewards) / len(rewards):+.3f} best={seen} "
                                    f"[{_short(best[0].config)}]", refresh=False)
                bar.update(1)
    except KeyboardInterrupt:
        bar.close()
        print(f"interrupted after {len(rewards)} questions", file=sys.stderr)
        stopped = "interrupted"
        if not rewards:
            return 130
    except AutoRAGHPError as e:
        bar.close()
        print(f"error: {e}", file=sys.stderr)
        return 2
    bar.close()
    elapsed = time.perf_counter() - t0
    if stopped == "timeout":
        print(f"--timeout {args.timeout:g} s reached after {len(rewards)} of {len(stream)} questions", file=sys.stderr)
    top = tuner.best(args.top)
    summary = {
        "pipeline": pipe.name,
        "policy": args.policy,
        "questions": len(rewards),
        "questions_requested": len(stream),
        "stopped": stopped,
        "distinct_questions": len(items),
        "configurations_in_space": space.size,
        "fixed": fixed,
        "configurations_tried": len(tuner.best(None, rule="mean")),
        "mean_reward": sum(rewards) / len(rewards) if rewards else None,
        "seconds": round(elapsed, 2),
        "seconds_per_question": round(elapsed / len(rewards), 3) if rewards else None,
        "seconds_first_question": round(first_s, 2) if rewards else None,
        "seconds_per_question_after_first": (round((elapsed - first_s) / (len(rewards) - 1), 3)
                                             if len(rewards) > 1 else None),
        "setup_seconds": round(load_s, 2),
        "llm_calls": llm_calls,
        "total_tokens": tokens,
        "reward": reward_desc,
        "storage": args.storage or "memory",
        "resumed_events": resumed_events,
        "study": args.study,
        "best": [r.to_dict() for r in top],
    }
    if args.report:
        from autorag_hp.reporting import from_tuner, write_report
        from autorag_hp.reporting.render import command_line

        files = write_report(from_tuner(tuner, top=args.top), args.report, command=command_line(args))
        summary["report"] = str(files[0])
        print(f"wrote {files[0]} and {len(files) - 1} plots", file=sys.stderr)
    if args.json:
        print(json.dumps(summary, indent=2))
        return 0
    mr = summary["mean_reward"]
    print(f"\nTuned {pipe.name!r} with {args.policy} on {len(rewards)} questions (of {len(items)} available) in "
          f"{elapsed:.1f} s: {summary['seconds_per_question']} s/question, of which the first took {first_s:.1f} s "
          f"(index builds, model loads) and the rest {summary['seconds_per_question_after_first']} s each; "
          f"{llm_calls} LLM calls, {tokens} tokens.")
    print(f"Mean reward {mr:+.3f}; tried {summary['configurations_tried']} of {space.size} configurations"
          f"{' (fixed: ' + _short(fixed) + ')' if fixed else ''}. "
          f"Reward: {reward_desc}.")
    print(f"\nTop {len(top)} configurations, recommendation first ({_RULE_TEXT}; observed mean reward, its 95% "
          "interval, distinct questions answered):")
    for i, r in enumerate(top, 1):
        mean = "untried" if r.mean is None else f"{r.mean:+.3f}"
        ci = f"[{r.lower:+.3f}, {r.upper:+.3f}]" if r.lower is not None else f"({r.note})"
        print(f"{i:>2}. {mean:>7} {ci:>18} n={r.count:<3d} {_short(r.config)}")
    return 0
