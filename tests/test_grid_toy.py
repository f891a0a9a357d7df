"""A small but real RAG pipeline for the grid-runner tests (it follows the duck-typed pipeline interface).

Corpus: eight sections of the Python 3.11 FAQ (``faq/general.rst``, PSF licence), chunked by words; retrieval:
TF-IDF cosine; "generation": an extractive reader that returns the context sentence with the most question
words (temperature > 0 samples among the best two, seeded by the prompt), with an optional sleep per call
(``TOY_DELAY`` seconds) standing in for LLM latency. Everything is computed; nothing returns constants.

Grid runner tests load it in subprocesses as ``tests/test_grid_toy.py:make_pipeline``.
"""

from __future__ import annotations

import hashlib
import math
import os
import random
import re
import time
from collections import Counter

from autorag_hp.generators.base import Generation
from autorag_hp.space import SearchSpace
from autorag_hp.types import Answer, Context, QAItem

FAQ = [
    ('What is Python?',
     "Python is an interpreted, interactive, object-oriented programming language. It incorporates modules, exceptions, dynamic typing, very high level dynamic data types, and classes. It supports multiple programming paradigms beyond object-oriented programming, such as procedural and functional programming. Python combines remarkable power with very clear syntax. It has interfaces to many system calls and libraries, as well as to various window systems, and is extensible in C or C++. It is also usable as an extension language for applications that need a programmable interface. Finally, Python is portable: it runs on many Unix variants including Linux and macOS, and on Windows. To find out more, start with :ref:`tutorial-index`. The `Beginner's Guide to Python <https://wiki.python.org/moin/BeginnersGuide>`_ links to other introductory tutorials and resources for learning Python."),
    ('What is the Python Software Foundation?',
     "The Python Software Foundation is an independent non-profit organization that holds the copyright on Python versions 2.1 and newer. The PSF's mission is to advance open source technology related to the Python programming language and to publicize the use of Python. The PSF's home page is at https://www.python.org/psf/. Donations to the PSF are tax-exempt in the US. If you use Python and find it helpful, please contribute via `the PSF donation page <https://www.python.org/psf/donations/>`_."),
    ('Are there copyright restrictions on the use of Python?',
     "You can do anything you want with the source, as long as you leave the copyrights in and display those copyrights in any documentation about Python that you produce. If you honor the copyright rules, it's OK to use Python for commercial use, to sell copies of Python in source or binary form (modified or unmodified), or to sell products that incorporate Python in some form. We would still like to know about all commercial use of Python, of course. See `the PSF license page <https://www.python.org/psf/license/>`_ to find further explanations and a link to the full text of the license."),
    ('Why was Python created in the first place?',
     "Here's a *very* brief summary of what started it all, written by Guido van Rossum: I had extensive experience with implementing an interpreted language in the ABC group at CWI, and from working with this group I had learned a lot about language design. This is the origin of many Python features, including the use of indentation for statement grouping and the inclusion of very-high-level data types (although the details are all different in Python)."),
    ('What is Python good for?',
     "Python is a high-level general-purpose programming language that can be applied to many different classes of problems. The language comes with a large standard library that covers areas such as string processing (regular expressions, Unicode, calculating differences between files), internet protocols (HTTP, FTP, SMTP, XML-RPC, POP, IMAP), software engineering (unit testing, logging, profiling, parsing Python code), and operating system interfaces (system calls, filesystems, TCP/IP sockets). Look at the table of contents for :ref:`library-index` to get an idea of what's available. A wide variety of third-party extensions are also available. Consult `the Python Package Index <https://pypi.org>`_ to find packages of interest to you."),
    ('How does the Python version numbering scheme work?',
     'Python versions are numbered "A.B.C" or "A.B": * *A* is the major version number -- it is only incremented for really major changes in the language. * *B* is the minor version number -- it is incremented for less earth-shattering changes. * *C* is the micro version number -- it is incremented for each bugfix release.'),
    ('How do I obtain a copy of the Python source?',
     'The latest Python source distribution is always available from python.org, at https://www.python.org/downloads/. The latest development sources can be obtained at https://github.com/python/cpython/. The source distribution is a gzipped tar file containing the complete C source, Sphinx-formatted documentation, Python library modules, example programs, and several useful pieces of freely distributable software. The source will compile and run out of the box on most UNIX platforms.'),
    ('How do I get documentation on Python?',
     'The standard documentation for the current stable version of Python is available at https://docs.python.org/3/. PDF, plain text, and downloadable HTML versions are also available at https://docs.python.org/3/download.html. The documentation is written in reStructuredText and processed by `the Sphinx documentation tool <https://www.sphinx-doc.org/>`__. The reStructuredText source for the documentation is part of the Python source distribution.'),
]

_WORD = re.compile(r"[a-z0-9]+")
_SENT = re.compile(r"(?<=[.!?])\s+")
STOP = {"the", "a", "an", "is", "of", "to", "and", "in", "on", "for", "i", "do", "how", "what", "are", "there",
        "it", "as", "by", "with", "was", "be", "or", "that", "this", "you", "can", "does"}

SPACE = {
    "retrieval": {"chunk_size": [40, 200], "chunk_overlap": [0, 10], "top_k": [1, 2]},
    "generation": {"prompt": ["short", "cite"], "temperature": [0.0, 0.7]},
}


def words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def _slug(q: str) -> str:
    return "-".join(w for w in words(q) if w not in STOP)[:40]


class ToyPipeline:
    retrieval_keys = ("chunk_size", "chunk_overlap", "top_k")

    def __init__(self, space: dict | None = None, delay: float | None = None):
        self.space = SearchSpace(space or SPACE)
        self.delay = float(os.environ.get("TOY_DELAY", "0")) if delay is None else delay
        self.docs = [(f"faq/general.rst#{_slug(q)}", q, t) for q, t in FAQ]
        self._index: dict[tuple[int, int], tuple[list[Context], list[Counter], dict[str, float]]] = {}
        self.generate_calls = 0

    def questions(self) -> list[QAItem]:
        return [QAItem(q, answer=_SENT.split(t)[0], sources=(sid,), id=sid.split("#")[1]) for sid, q, t in self.docs]

    def _build(self, size: int, overlap: int):
        key = (size, overlap)
        if key not in self._index:
            chunks = []
            for sid, _, text in self.docs:
                toks = text.split()
                step = max(1, size - overlap)
                for i in range(0, max(1, len(toks) - overlap), step):
                    chunks.append(Context(sid, " ".join(toks[i:i + size])))
            tfs = [Counter(words(c.text)) for c in chunks]
            df = Counter(w for tf in tfs for w in tf)
            idf = {w: math.log((1 + len(chunks)) / (1 + n)) + 1 for w, n in df.items()}
            self._index[key] = (chunks, tfs, idf)
        return self._index[key]

    def retrieve(self, question: str, config) -> list[Context]:
        chunks, tfs, idf = self._build(int(config["chunk_size"]), int(config["chunk_overlap"]))
        q = Counter(w for w in words(question) if w not in STOP)
        scores = []
        for i, tf in enumerate(tfs):
            dot = sum(q[w] * tf[w] * idf.get(w, 0) ** 2 for w in q)
            norm = math.sqrt(sum((n * idf[w]) ** 2 for w, n in tf.items())) or 1.0
            scores.append((dot / norm, -i))
        best = sorted(range(len(chunks)), key=lambda i: scores[i], reverse=True)[: int(config["top_k"])]
        return [Context(chunks[i].source, chunks[i].text, round(scores[i][0], 6)) for i in best]

    def render_prompt(self, question: str, contexts, config) -> list[dict]:
        ctx = "\n".join(f"[{i + 1}] {c.text}" for i, c in enumerate(contexts))
        system = "Answer in one sentence." if config["prompt"] == "short" else "Answer and cite [n]."
        return [{"role": "system", "content": system}, {"role": "user", "content": f"{ctx}\n\nQ: {question}"}]

    def generate(self, messages, config) -> Generation:
        t0 = time.perf_counter()
        self.generate_calls += 1
        if self.delay:
            time.sleep(self.delay)
        user = messages[-1]["content"]
        ctx, _, q = user.rpartition("\n\nQ: ")
        sents = [s for s in _SENT.split(re.sub(r"\[\d+\] ", "", ctx)) if s.strip()]
        qw = {w for w in words(q) if w not in STOP}
        ranked = sorted(sents, key=lambda s: (len(qw & set(words(s))), -len(s)), reverse=True) or [""]
        if float(config["temperature"]) > 0 and len(ranked) > 1:
            seed = int(hashlib.sha1((user + str(config["temperature"])).encode()).hexdigest()[:8], 16)
            text = random.Random(seed).choice(ranked[:2])
        else:
            text = ranked[0]
        if config["prompt"] == "cite":
            text = f"{text} [1]"
        prompt_tokens = sum(len(m["content"].split()) for m in messages)
        return Generation(text, prompt_tokens, len(text.split()), time.perf_counter() - t0)

    def run(self, question: str, config) -> Answer:
        t0 = time.perf_counter()
        ctx = self.retrieve(question, config)
        g = self.generate(self.render_prompt(question, ctx, config), config)
        return Answer(g.text, tuple(ctx), g.prompt_tokens, g.completion_tokens, time.perf_counter() - t0)


def make_pipeline() -> ToyPipeline:
    return ToyPipeline()


def test_toy_pipeline_is_real():
    p = make_pipeline()
    items = p.questions()
    assert len(items) == 8 and p.space.size == 32
    cfg = next(iter(p.space.configs()))
    hits = sum(p.retrieve(it.question, cfg)[0].source == it.sources[0] for it in items)
    assert 3 <= hits < 8  # TF-IDF finds the right section for some questions, not all: configs differ
    a = p.run(items[0].question, cfg)
    assert a.text and a.prompt_tokens > 10 and a.contexts
