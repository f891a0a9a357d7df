"""The FastAPI application: ``create_app(settings, keys)``; ``autorag-hp serve`` runs it on uvicorn.

Endpoints (OpenAPI at ``/openapi.json``, interactive docs at ``/docs``):

==============================  ===============  ===================================================================
``POST /v1/ask``                ask key          ``{question}`` → ``{answer, sources, trial_id, config, …}``
                                score key        ``{question, reference}``: the service scores the answer and reports it
``POST /v1/feedback``           feedback key     ``{trial_id, reward | thumbs | rating}`` (one per trial, own client)
``POST /v1/chat/completions``   ask key          OpenAI's chat format (streaming too): the last user message is the
                                                 question, ``id`` the trial id (:mod:`autorag_hp.service.openai_api`)
``GET /v1/best``                feedback/admin   best configurations with 95 % intervals
``GET /v1/arms``                feedback/admin   per hyper-parameter value: count, mean, interval
``GET /v1/trials``              feedback/admin   one page of trials (``?state=&limit=&order=newest|oldest&after=<next>``;
                                                 a feedback key sees its own client's only)
``GET /v1/dashboard``           feedback/admin   everything the dashboard draws
``GET /``                       none             the dashboard page (give the key as ``/#key=…``)
``GET /healthz``                none             200 when the storage answers, else 503
``GET /metrics``                none (or admin)  Prometheus text format (this replica's counters; admin key with
                                                 ``metrics_auth``)
==============================  ===============  ===================================================================

Keys go in ``Authorization: Bearer KEY`` (or ``X-API-Key: KEY``); their scopes are in
:mod:`autorag_hp.service.auth`. Bodies are checked strictly: a string is not a number and a bool is not a
reward; ``reward`` is a number within the reward range, ``thumbs`` exactly ``"up"``, ``"down"``, ``1`` or
``-1``, ``rating`` a number from 1 to 5. Errors are JSON ``{"error": {"code", "message"}}``: 400 malformed
JSON, 401 missing/unknown key, 403 wrong key for this endpoint (an ask key sending a ``reference``), 404
unknown trial, which is also the answer for another client's trial (the same body, so a key cannot probe which
trial ids exist), 408 body not received within ``body_timeout``, 409 second feedback, 410 feedback window
passed, 413 body too large, 422 invalid field (NaN reward, over-long question, ``thumbs: 0``, …), 500 with
an incident id that the service log explains (a body never carries internal exception text), 503 storage
unavailable (``Retry-After``). A rejected request changes nothing stored.
"""

import asyncio
import contextlib
import time
from pathlib import Path
from typing import Any

from fastapi import Request

from autorag_hp.service.controller import Controller, ServiceError, ServiceSettings, incident
from autorag_hp.service.reads import StudyReader
from autorag_hp.service.telemetry import Measure, Metrics

STATIC = Path(__file__).parent / "static"
# Requests whose work (storage, pipeline) runs in a worker thread, at most this many at once; the rest wait in
# the event loop. More threads in one process only queue on its GIL, and the PostgreSQL pools are sized for
# this many (:func:`autorag_hp.storage.urls.open_engine`), so that no request has to open a connection.
WORKER_THREADS = 8
_STORAGE_DOWN = {"OperationalError", "InterfaceError", "DisconnectionError", "TimeoutError", "AdminShutdown",
                 "ConnectionTimeout", "PoolTimeout", "ConnectionFailure", "CannotConnectNow"}


def storage_down(exc: BaseException) -> bool:
    """True for the driver / SQLAlchemy errors that mean "the database is unreachable right now"."""
    seen = 0
    while exc is not None and seen < 5:
        for cls in type(exc).__mro__:
            mod = cls.__module__.split(".")[0]
            if mod in ("sqlalchemy", "psycopg", "sqlite3", "psycopg_pool") and cls.__name__ in _STORAGE_DOWN:
                return True
        exc = exc.__cause__ or exc.__context__
        seen += 1
    return False


class BodyLimit:
    """ASGI middleware: refuse bodies over ``limit`` bytes with 413 (by header or while streaming), and bodies
    that have not fully arrived ``timeout`` seconds after the request head did with 408 (a stalled or slowly
    dripping client). Both answers close the connection."""

    def __init__(self, app, limit: int, timeout: float | None = None):
        self.app, self.limit, self.timeout = app, limit, timeout

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        for k, v in scope.get("headers", ()):
            if k == b"content-length":
                try:
                    too_big = int(v) > self.limit
                except ValueError:
                    too_big = True
                if too_big:
                    return await _send_json(send, 413, "body_too_large", f"request body over {self.limit} bytes")
        seen = 0
        started = refused = body_done = False
        deadline = None if self.timeout is None else time.monotonic() + self.timeout

        async def refuse(status: int, code: str, message: str):
            nonlocal refused, started
            refused = True
            if not started:
                started = True
                await _send_json(send, status, code, message)
            return {"type": "http.disconnect"}

        async def limited_receive():
            nonlocal seen, body_done
            if refused:
                return {"type": "http.disconnect"}
            if body_done or deadline is None:
                msg = await receive()
            else:
                try:
                    msg = await asyncio.wait_for(receive(), max(0.0, deadline - time.monotonic()))
                except TimeoutError:
                    return await refuse(408, "body_timeout", f"the request body did not arrive within {self.timeout:g} s")
            if msg["type"] == "http.request":
                body_done = not msg.get("more_body", False)
                seen += len(msg.get("body", b""))
                if seen > self.limit:  # a chunked body without Content-Length: refuse it mid-stream
                    return await refuse(413, "body_too_large", f"request body over {self.limit} bytes")
            return msg

        async def guarded_send(msg):
            nonlocal started
            if refused:
                return  # the 413 / 408 already went out; drop whatever the app answers to the cut body
            if msg["type"] == "http.response.start":
                started = True
            await send(msg)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except Exception:
            if not refused:
                raise


async def _send_json(send, status: int, code: str, message: str) -> None:
    """An error answer sent before the body was read: it closes the connection (the unread rest is dropped)."""
    import json

    body = json.dumps({"error": {"code": code, "message": message}}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})


def create_app(settings: ServiceSettings | None = None, keys=None, *, controller: StudyReader | None = None,
               pipeline: Any = None, clock=time.time, read_only: bool = False):
    """Build the FastAPI app (the controller is created here unless given). ``read_only``: the read endpoints
    and the dashboard only, no route that asks or reports (``autorag-hp dashboard``, :mod:`.readonly`)."""
    from typing import Literal

    from fastapi import Depends, FastAPI, Query
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import HTMLResponse, JSONResponse, Response
    from pydantic import BaseModel, ConfigDict, Field, StrictStr, field_validator
    from starlette.exceptions import HTTPException as StarletteHTTPException

    from autorag_hp.service import openai_api
    from autorag_hp.service.auth import KeyRing

    settings = settings or ServiceSettings()
    keys = keys or KeyRing.open()
    ctl = controller or Controller(settings, keys, pipeline=pipeline, clock=clock)
    metrics = Metrics(ctl)
    qmax = ctl.max_question_chars

    class AskRequest(BaseModel):
        model_config = ConfigDict(extra="forbid", strict=True)
        question: StrictStr = Field(..., min_length=1, max_length=qmax, description="the user's question")
        reference: StrictStr | None = Field(None, max_length=settings.max_reference_chars,
                                            description="a reference answer: the service scores the answer itself "
                                            "and reports it (needs a key with the score scope)")

    class AskResponse(BaseModel):
        answer: str
        sources: list[str]
        trial_id: str = Field(..., description="give it back to POST /v1/feedback")
        config: dict[str, Any]
        explore: bool
        reward: float | None = Field(None, description="the reward, when a reference was given")
        feedback_until: float | None = Field(None, description="unix time after which feedback is refused")
        timing_ms: dict[str, float]

    class FeedbackRequest(BaseModel):
        model_config = ConfigDict(extra="forbid", strict=True)  # a string is not a number, a bool not a reward
        trial_id: StrictStr = Field(..., min_length=3, max_length=100)
        reward: float | None = Field(None, allow_inf_nan=False, description="a reward within the reward range")
        thumbs: Literal["up", "down", 1, -1] | None = Field(None, description='"up" / "down", or 1 / -1')
        rating: float | None = Field(None, ge=1, le=5, allow_inf_nan=False, description="stars, 1 to 5")

        @field_validator("thumbs", mode="before")
        @classmethod
        def _exact_thumbs(cls, v: Any) -> Any:
            if v is not None and (type(v) not in (int, str) or v not in ("up", "down", 1, -1)):
                raise ValueError('thumbs must be exactly "up", "down", 1 or -1')  # True == 1 and 1.0 == 1 are not
            return v

    class FeedbackResponse(BaseModel):
        trial_id: str
        reward: float
        recorded: bool

    @contextlib.asynccontextmanager
    async def lifespan(_app):
        yield
        ctl.close()

    app = FastAPI(title="autorag-hp online tuning service", version="0.1.0", lifespan=lifespan,
                  description="Tunes a RAG pipeline's hyper-parameters with hierarchical bandits while it answers "
                  "questions. Send keys as 'Authorization: Bearer KEY'.")
    app.state.controller = ctl
    app.state.metrics = metrics

    def err(status: int, code: str, message: str, headers: dict | None = None, request: Request | None = None,
            param: str | None = None):
        body = ({"error": {"code": code, "message": message}} if request is None
                or not openai_api.is_openai_path(request.url.path) else openai_api.error_body(status, code, message, param))
        return JSONResponse(body, status_code=status, headers=headers)

    @app.exception_handler(ServiceError)
    async def _service_error(request: Request, exc: ServiceError):
        return err(exc.status, exc.code, exc.message, {"Retry-After": "1"} if exc.status == 503 else None, request,
                   getattr(exc, "param", None))

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError):
        errors = exc.errors()
        if any(e.get("type") == "json_invalid" for e in errors):
            return err(400, "malformed_json", "the body is not valid JSON: " + "; ".join(
                str(e.get("ctx", {}).get("error", e.get("msg"))) for e in errors), request=request)
        parts = []
        for e in errors:
            loc = ".".join(str(x) for x in e.get("loc", ()) if x != "body") or "body"
            parts.append(f"{loc}: {e.get('msg')}")
        return err(422, "invalid_request", "; ".join(parts), request=request, param=parts[0].split(":")[0])

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException):
        code = {401: "unauthorized", 403: "forbidden", 404: "not_found", 405: "method_not_allowed"}.get(
            exc.status_code, "error")
        return err(exc.status_code, code, str(exc.detail), getattr(exc, "headers", None), request)

    @app.exception_handler(Exception)
    async def _other(request: Request, exc: Exception):
        if storage_down(exc):
            return err(503, "storage_unavailable", "the tuning storage is unavailable; retry shortly",
                       {"Retry-After": "1"}, request)
        ref = incident(f"{request.method} {request.url.path} failed", exc)
        return err(500, "internal_error", f"internal error (incident {ref} in the service log)", request=request)

    def principal(*roles: str):
        from fastapi import HTTPException

        def dep(request: Request):
            auth = request.headers.get("authorization", "")
            key = auth[7:].strip() if auth.lower().startswith("bearer ") else request.headers.get("x-api-key")
            who = keys.lookup(key)
            if who is None:
                raise HTTPException(401, "missing or unknown API key: send 'Authorization: Bearer KEY'",
                                    headers={"WWW-Authenticate": "Bearer"})
            if not any(who.can(r) for r in (*roles, "admin")):
                raise HTTPException(403, f"a {who.role} key cannot call this endpoint (needs: {', '.join(roles)} or admin)")
            return who

        return dep

    limiter = None

    async def run_sync(fn, *args):
        nonlocal limiter
        import anyio

        if limiter is None:  # made in the event loop that uses it
            limiter = anyio.CapacityLimiter(WORKER_THREADS)
        try:
            return await anyio.to_thread.run_sync(fn, *args, limiter=limiter)
        except ServiceError:
            raise
        except Exception as exc:
            if storage_down(exc):
                incident("the tuning storage is unavailable", exc)
                raise ServiceError(503, "storage_unavailable", "the tuning storage is unavailable; retry shortly") from exc
            raise

    def observe(out: dict[str, Any]) -> None:
        metrics.pipeline_seconds.observe(out["timing_ms"]["pipeline"] / 1e3)
        metrics.overhead_seconds.observe(out["timing_ms"]["tuner"] / 1e3)

    if not read_only:
        @app.post("/v1/ask", response_model=AskResponse, tags=["tuning"],
                  summary="Answer a question with the configuration the tuner chooses")
        async def ask(body: AskRequest, who=Depends(principal("ask"))):
            out = await run_sync(ctl.ask, body.question, body.reference, who)
            observe(out)
            return out

        @app.post("/v1/feedback", response_model=FeedbackResponse, tags=["tuning"],
                  summary="Report the reward of a trial (once, from the client that asked)")
        async def feedback(body: FeedbackRequest, who=Depends(principal("feedback"))):
            value = ctl.feedback_value(body.reward, body.thumbs, body.rating)
            return await run_sync(ctl.feedback, body.trial_id, value, who)

        openai_api.add_routes(app, ctl, ask_auth=principal("ask"), run_sync=run_sync, observe=observe)

    reader = principal("feedback")

    @app.get("/v1/best", tags=["results"], summary="Best configurations with 95 % intervals")
    async def best(k: int = Query(5, ge=1, le=100), who=Depends(reader)):
        return {"best": await run_sync(ctl.best, k)}

    @app.get("/v1/arms", tags=["results"], summary="Statistics per hyper-parameter value")
    async def arms(who=Depends(reader)):
        return await run_sync(ctl.arms)

    @app.get("/v1/trials", tags=["results"],
             summary="Trials one page at a time, newest first (a feedback key: its own client's; admin: all)")
    async def trials(state: Literal["pending", "reported", "expired"] | None = None,
                     limit: int = Query(100, ge=1, le=1000),
                     after: str | None = Query(None, pattern=r"^[0-9]{1,18}$",
                                               description="the previous page's 'next' cursor"),
                     order: Literal["newest", "oldest"] = "newest", who=Depends(reader)):
        return await run_sync(ctl.trials, who, state, limit, None if after is None else int(after), order == "newest")

    @app.get("/v1/dashboard", tags=["results"], summary="Everything the dashboard page draws")
    async def dashboard(who=Depends(reader)):
        return await run_sync(ctl.dashboard, who)

    @app.get("/healthz", tags=["ops"], summary="200 when the storage answers, 503 otherwise")
    async def healthz():
        try:
            await run_sync(ctl.healthy)
        except Exception as exc:
            incident("health check: the storage does not answer", exc)
            return err(503, "storage_unavailable", "storage unavailable", {"Retry-After": "1"})
        return {"status": "ok", "study": ctl.study, "pipeline_tag": ctl.tag, "replica": settings.replica}

    @app.get("/metrics", tags=["ops"], response_class=Response, summary="Prometheus metrics",
             dependencies=[Depends(principal("admin"))] if settings.metrics_auth else [])
    async def prom():
        from prometheus_client import CONTENT_TYPE_LATEST

        return Response(metrics.render(), media_type=CONTENT_TYPE_LATEST)

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def page():
        return HTMLResponse((STATIC / "dashboard.html").read_text(encoding="utf-8"))

    app.add_middleware(BodyLimit, limit=settings.max_body_bytes, timeout=settings.body_timeout)
    app.add_middleware(Measure, metrics=metrics)  # outermost: it counts the 413 / 408 that BodyLimit answers
    return app
