"""Tune the bundled Python-docs RAG pipeline online from Python: suggest -> run -> reward -> report.

    .venv/bin/python examples/tune_python_docs.py --questions 60 --generator extractive   # retrieval only, fast
    .venv/bin/python examples/tune_python_docs.py --questions 60                          # SmolLM2 answers
    .venv/bin/python examples/tune_python_docs.py --pipeline python_docs   # the whole docs: each dense index
                                                   # takes 10-35 min to build on 2 cores the first time

The default pipeline is the FAQ slice, ``python_docs_faq`` (189 sections: every index builds in minutes), as for
``autorag-hp tune``.

The same loop as ``autorag-hp tune``; the pipeline knows nothing of bandits, the tuner nothing of RAG.
"""

import argparse
import random

from autorag_hp import Tuner
from autorag_hp.evaluation.rewards import DEFAULT_OFFLINE_REWARD, reward_from_spec
from autorag_hp.overrides import tuned_space
from autorag_hp.rag import load_pipeline

ap = argparse.ArgumentParser()
ap.add_argument("--pipeline", default="python_docs_faq", help="a bundled pipeline name or your own YAML path")
ap.add_argument("--questions", type=int, default=60)
ap.add_argument("--generator", default=None, help="extractive (no LLM) or local (SmolLM2, the spec's default)")
ap.add_argument("--policy", default="hier_ucb")
args = ap.parse_args()

pipe = load_pipeline(args.pipeline, generator=args.generator)  # a bundled name, or your own YAML path
space, _ = tuned_space(None, pipeline=pipe)  # the space `tune` uses: without what the generator ignores
tuner = Tuner(space, policy=args.policy, seed=0)
reward_of = reward_from_spec(DEFAULT_OFFLINE_REWARD)  # mean(token F1, gold-source MRR) - token cost
questions = pipe.questions()
random.Random(0).shuffle(questions)

for i, item in enumerate((questions * 10)[: args.questions], 1):
    trial = tuner.suggest(question=item.question) # a Config: chunk_size, top_k, embedding, prompt, temperature
    answer = pipe.run(item, trial.config)         # Answer(text, contexts, tokens, latency)
    reward = reward_of.from_answer(answer, item)  # the reward `autorag-hp tune` uses by default
    tuner.report(trial.id, reward)
    if i % 10 == 0:
        print(f"{i:4d} questions  best so far: {tuner.best(1)[0]}")

print("\nTop configurations:")
for row in tuner.best(5):
    print(" ", row)
