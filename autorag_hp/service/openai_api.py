"""``POST /v1/chat/completions`` in OpenAI's chat format, so any OpenAI client (or LangChain's
``ChatOpenAI(base_url=...)``) can put the tuned pipeline behind an existing app.

The last ``user`` message is the question; it goes through the same path as ``POST /v1/ask``
(:meth:`~autorag_hp.service.controller.Controller.ask`): the tuner picks a configuration, the pipeline answers,
and the trial waits for feedback. The trial id comes back as the completion's ``id`` (and in the
``X-AutoRAG-Trial`` header, and with the configuration in the ``autorag_hp`` field); give it to
``POST /v1/feedback`` as ``trial_id``. Earlier messages and ``system`` prompts are not sent to the pipeline (its
prompt template is one of the tuned knobs). Sampling fields (``temperature``, ``top_p``, ``max_tokens``,
``seed``, ...) are accepted and ignored: the tuner chooses the generation settings. ``n`` other than 1, tools
and non-text content parts are refused with 422; unknown fields too, as everywhere in the service.

With ``"stream": true`` the answer comes as server-sent events (``data: {chunk}`` lines, then
``data: [DONE]``): the pipeline answers in full first (the ask path is not incremental), then the text is sent
in word-sized pieces. Errors are OpenAI's shape, a superset of the service's own:
``{"error": {"message", "type", "param", "code"}}``.

>>> from openai import OpenAI  # doctest: +SKIP
>>> client = OpenAI(base_url="http://127.0.0.1:8000/v1", api_key="ask-...")  # doctest: +SKIP
>>> done = client.chat.completions.create(model="autorag-hp", messages=[{"role": "user", "content": "How?"}])  # doctest: +SKIP
>>> done.id  # the trial id for POST /v1/feedback  # doctest: +SKIP
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictStr, field_validator

from autorag_hp.service.controller import ServiceError

PATH = "/v1/chat/completions"
TRIAL_HEADER = "X-AutoRAG-Trial"
MODEL = "autorag-hp"  # what GET /v1/models lists; any model name is accepted and echoed back
_TYPES = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
          404: "invalid_request_error", 408: "invalid_request_error", 409: "invalid_request_error",
          410: "invalid_request_error", 413: "invalid_request_error", 422: "invalid_request_error",
          503: "server_error"}


def is_openai_path(path: str) -> bool:
    """True for the routes whose errors take OpenAI's shape."""
    return path == PATH or path == "/v1/models"


def error_body(status: int, code: str, message: str, param: str | None = None) -> dict[str, Any]:
    """OpenAI's error object; it keeps the service's ``code`` and ``message``, so both kinds of client read it."""
    return {"error": {"message": message, "type": _TYPES.get(status, "server_error"), "param": param, "code": code}}


class ParamError(ServiceError):
    """A :class:`ServiceError` that names the request field at fault (OpenAI's ``param``)."""

    def __init__(self, status: int, code: str, message: str, param: str):
        super().__init__(status, code, message)
        self.param = param


class TextPart(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    type: Literal["text"]
    text: StrictStr


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: StrictStr | list[TextPart] | None = None
    name: StrictStr | None = None
    # what an OpenAI client sends back for earlier assistant / tool turns; accepted, never sent to the pipeline
    tool_calls: list[dict[str, Any]] | None = None
    tool_call_id: StrictStr | None = None
    function_call: dict[str, Any] | None = None
    refusal: StrictStr | None = None

    def text(self) -> str:
        if isinstance(self.content, list):
            return "\n".join(p.text for p in self.content)
        return self.content or ""


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    include_usage: StrictBool | None = None
    include_obfuscation: StrictBool | None = None


class ChatRequest(BaseModel):
    """OpenAI's chat-completions body. Sampling fields are accepted and ignored (the tuner sets them)."""

    model_config = ConfigDict(extra="forbid", strict=True)
    model: StrictStr = Field(..., min_length=1, max_length=200, description="echoed back; any name is accepted")
    messages: list[ChatMessage] = Field(..., min_length=1, max_length=256)
    stream: StrictBool | None = False
    stream_options: StreamOptions | None = None
    n: int | None = Field(None, description="only 1")
    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    max_completion_tokens: int | None = None
    stop: StrictStr | list[StrictStr] | None = None
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    logit_bias: dict[str, float] | None = None
    logprobs: StrictBool | None = None
    top_logprobs: int | None = None
    seed: int | None = None
    user: StrictStr | None = None
    metadata: dict[str, StrictStr] | None = None
    store: StrictBool | None = None
    service_tier: StrictStr | None = None
    reasoning_effort: StrictStr | None = None
    response_format: dict[str, Any] | None = None
    tools: list[dict[str, Any]] | None = None
    tool_choice: StrictStr | dict[str, Any] | None = None
    parallel_tool_calls: StrictBool | None = None

    @field_validator("n")
    @classmethod
    def _one_choice(cls, v: int | None) -> int | None:
        if v not in (None, 1):
            raise ValueError("only one choice per request (n=1) is supported")
        return v

    @field_validator("tools")
    @classmethod
    def _no_tools(cls, v: list | None) -> list | None:
        if v:
            raise ValueError("the tuned RAG pipeline does not call tools; send no tools")
        return v

    @field_validator("response_format")
    @classmethod
    def _text_only(cls, v: dict | None) -> dict | None:
        if v is not None and v.get("type", "text") != "text":
            raise ValueError("only {'type': 'text'} is supported")
        return v

    def question(self) -> str:
        """The last user message's text; a 422 naming ``messages`` when there is none."""
        for m in reversed(self.messages):
            if m.role == "user":
                return m.text()
        raise ParamError(422, "no_user_message", "messages holds no message with role 'user'; the last user "
                         "message is the question", "messages")


def pieces(text: str) -> Iterator[str]:
    """The answer in word-sized stream pieces (each word with the whitespace after it); they join to ``text``."""
    start = re.match(r"\s*", text).end()
    if start:
        yield text[:start]
    yield from re.findall(r"\S+\s*", text[start:])


def completion(out: dict[str, Any], model: str, created: int) -> dict[str, Any]:
    """The ``chat.completion`` object for one :meth:`Controller.ask` result."""
    return {"id": out["trial_id"], "object": "chat.completion", "created": created, "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": out["answer"], "refusal": None},
                         "logprobs": None, "finish_reason": "stop"}],
            "usage": None, "system_fingerprint": None, "autorag_hp": extension(out)}


def extension(out: dict[str, Any]) -> dict[str, Any]:
    """What /v1/ask says beyond the text: the trial id for feedback, the configuration, the sources."""
    return {k: out[k] for k in ("trial_id", "config", "explore", "sources", "feedback_until", "timing_ms")}


def stream_events(out: dict[str, Any], model: str, created: int) -> Iterator[str]:
    """The SSE lines of a streamed completion: a role chunk, the text pieces, a ``stop`` chunk, ``[DONE]``."""
    def chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> str:
        body = {"id": out["trial_id"], "object": "chat.completion.chunk", "created": created, "model": model,
                "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}], **extra}
        return f"data: {json.dumps(body, separators=(',', ':'))}\n\n"

    yield chunk({"role": "assistant", "content": ""}, autorag_hp=extension(out))
    for piece in pieces(out["answer"]):
        yield chunk({"content": piece})
    yield chunk({}, "stop")
    yield "data: [DONE]\n\n"


def add_routes(app: Any, ctl: Any, *, ask_auth: Callable, run_sync: Callable, observe: Callable) -> None:
    """Add ``POST /v1/chat/completions`` and ``GET /v1/models`` to ``app``: ``ask_auth`` is the dependency that
    admits ask keys, ``run_sync`` runs a blocking call off the event loop, ``observe`` records an ask's timings."""
    from fastapi import Depends
    from fastapi.responses import JSONResponse, StreamingResponse

    @app.post(PATH, tags=["openai"], summary="OpenAI chat completions: the last user message is the question",
              responses={200: {"description": "a chat.completion, or with stream=true text/event-stream chunks"}})
    async def chat_completions(body: ChatRequest, who=Depends(ask_auth)):
        out = await run_sync(ctl.ask, body.question(), None, who)
        observe(out)
        created = int(time.time())
        headers = {TRIAL_HEADER: out["trial_id"]}
        if body.stream:
            async def events():  # an async iterator: a sync one costs a thread-pool hop per chunk
                for line in stream_events(out, body.model, created):
                    yield line

            return StreamingResponse(events(), media_type="text/event-stream",
                                     headers={**headers, "Cache-Control": "no-cache"})
        return JSONResponse(completion(out, body.model, created), headers=headers)

    @app.get("/v1/models", tags=["openai"], summary="The one model this service answers as (OpenAI's list shape)")
    async def models(who=Depends(ask_auth)):
        return {"object": "list", "data": [{"id": MODEL, "object": "model", "created": 0, "owned_by": "autorag-hp"}]}
