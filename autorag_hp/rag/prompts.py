"""Prompt templates (the ``prompt`` arm): ``concise``, ``cite`` and ``stepwise``; each answers in the question's language
(:func:`autorag_hp.rag.language.language`: Chinese when at least a fifth of its letters are CJK).

>>> from autorag_hp.types import Context
>>> msgs = render("concise", "什么是列表？", [Context("a.rst", "列表是可变的序列。")])
>>> msgs[0]["role"], "中文" in msgs[0]["content"]
('system', True)
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from autorag_hp.rag.errors import InvalidConfigError
from autorag_hp.rag.language import language
from autorag_hp.types import Context

PROMPTS: dict[str, str] = {
    "concise": (
        "You answer questions using only the numbered context passages. "
        "Give a short, direct answer in one or two sentences. "
        "If the context does not contain the answer, say that you don't know."
    ),
    "cite": (
        "You answer questions using only the numbered context passages. "
        "Answer in two or three sentences and cite the source of each fact in square brackets, "
        "for example [1] or [2]. If the context does not contain the answer, say that you don't know."
    ),
    "stepwise": (
        "You answer questions using only the numbered context passages. "
        "First reason briefly, in at most two short sentences, about which passage answers the question. "
        "Then write a final line that starts with 'Answer:' followed by the answer."
    ),
}
LANGUAGE_NOTE = {
    "zh": " 请用中文回答。(Answer in Chinese.)",
    "en": " Answer in English.",
}
PASSAGE_HEADER = re.compile(r"^\[(\d+)\] \(source: (.*?)\)$", re.MULTILINE)


def format_contexts(contexts: Sequence[Context]) -> str:
    if not contexts:
        return "(no context passages were found)"
    return "\n\n".join(f"[{i}] (source: {c.source})\n{c.text.strip()}" for i, c in enumerate(contexts, 1))


def render(template: str, question: str, contexts: Sequence[Context]) -> list[dict]:
    """Chat messages (system + user) for one question and its retrieved contexts."""
    try:
        system = PROMPTS[template]
    except KeyError:
        raise InvalidConfigError(f"unknown prompt {template!r}; choose one of {sorted(PROMPTS)}") from None
    lang = language(question)
    ask = "问题" if lang == "zh" else "Question"
    user = f"Context:\n{format_contexts(contexts)}\n\n{ask}: {question.strip()}"
    if template == "stepwise":
        user += "\n\n" + ("先简要推理，然后以“Answer:”开头给出答案。" if lang == "zh" else "Reason briefly, then answer.")
    return [
        {"role": "system", "content": system + LANGUAGE_NOTE[lang]},
        {"role": "user", "content": user},
    ]


def passages_in(messages: Sequence[dict] | str) -> list[tuple[str, str]]:
    """``(source, text)`` of the context passages inside rendered messages (used by the extractive generator)."""
    text = messages if isinstance(messages, str) else "\n".join(str(m.get("content", "")) for m in messages)
    heads = list(PASSAGE_HEADER.finditer(text))
    out = []
    for n, m in enumerate(heads):
        end = heads[n + 1].start() if n + 1 < len(heads) else len(text)
        body = text[m.end() : end]
        cut = re.search(r"\n\n(问题|Question): ", body)
        out.append((m.group(2), (body[: cut.start()] if cut else body).strip()))
    return out
