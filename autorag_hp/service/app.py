"""The FastAPI application: ``create_app(settings, keys)``; ``autorag-hp serve`` runs it on uvicorn.

Endpoints (OpenAPI at ``/openapi.json``, interactive docs at ``/docs``):

==========================  ===============  ===================================================================
``POST /v1/ask``            ask key          ``{question, reference?}`` → ``{answer, sources, trial_id, config, …}``
``POST /v1/feedback``       feedback key     ``{trial_id, reward | thumbs | rating}`` (one per trial, own client)
``GET /v1/best``            feedback/admin   best configurations with 95 % intervals
``GET /v1/arms``            feedback/admin   per hyper-parameter value: count, mean, interval
``GET /v1/trials``          feedback/admin   latest trials (``?state=pending|reported|expired&limit=``)
``GET /v1/dashboard``       feedback/admin   everything the dashboard draws
``GET /``                   none             the dashboard page (give the key as ``/#key=…``)
``GET /healthz``            none             200 when the storage answers, else 503
``GET /metrics``            none             Prometheus text format (this replica's counters)
==========================  ===============  ===================================================================

Keys go in ``Authorization: Bearer KEY`` (or ``X-API-Key: KEY``). Errors are JSON
``{"error": {"code", "message"}}``: 400 malformed JSON, 401 missing/unknown key, 403 wrong key for this
endpoint or another client's trial, 404 unknown trial, 409 second feedback, 410 feedback window passed,
413 body too large, 422 invalid field (NaN reward, over-long question, …), 503 storage unavailable
(``Retry-After``). A rejected request changes nothing stored.
"""

import contextlib
import math
import threading
import time
from pathlib import Path
from typing import Any

from fastapi import Request

from autorag_hp.service.controller import Controller, ServiceError, ServiceSettings

STATIC = Path(__file__).parent / "static"
_STORAGE_DOWN = {"OperationalError", "InterfaceError", "DisconnectionError", "TimeoutError", "AdminShutdown",
                 "ConnectionTimeout", "PoolTimeout", "ConnectionFailure", "CannotConnectNow"}
_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


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


class Telemetry:
    """The service's own operational telemetry (request counters and latency histograms), rendered in Prometheus's
    text exposition format at ``/metrics`` (no dependency). Not to be confused with answer-quality metrics
    (:mod:`autorag_hp.evaluation.metrics`)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests: dict[tuple[str, str, int], int] = {}
        self.hist: dict[tuple[str, str], list[float]] = {}  # (name, endpoint) -> bucket counts + [sum, count]

    def count(self, method: str, path: str, status: int) -> None:
        with self._lock:
            k = (method, path, status)
            self.requests[k] = self.requests.get(k, 0) + 1

    def observe(self, name: str, label: str, seconds: float) -> None:
        with self._lock:
            h = self.hist.setdefault((name, label), [0.0] * (len(_BUCKETS) + 2))
            for i, b in enumerate(_BUCKETS):
                if seconds <= b:
                    h[i] += 1
            h[-2] += seconds
            h[-1] += 1

    def render(self, gauges: dict[str, tuple[str, float | None]]) -> str:
        lines = ["# HELP autorag_http_requests_total HTTP requests by method, path and status.",
                 "# TYPE autorag_http_requests_total counter"]
        with self._lock:
            for (m, p, s), n in sorted(self.requests.items()):
                lines.append(f'autorag_http_requests_total{{method="{m}",path="{p}",status="{s}"}} {n}')
            helps = {"autorag_http_request_seconds": ("path", "Time spent handling a request (server side)."),
                     "autorag_pipeline_seconds": ("stage", "Time inside the RAG pipeline per ask."),
                     "autorag_service_overhead_seconds": ("stage", "Ask time outside the pipeline (tuner, storage).")}
            for name in sorted({n for n, _ in self.hist}):
                label, help_text = helps.get(name, ("label", name))
                lines += [f"# HELP {name} {help_text}", f"# TYPE {name} histogram"]
                for (n, lab), h in sorted(self.hist.items()):
                    if n != name:
                        continue
                    for b, c in zip(_BUCKETS, h):
                        lines.append(f'{name}_bucket{{{label}="{lab}",le="{b}"}} {int(c)}')
                    lines.append(f'{name}_bucket{{{label}="{lab}",le="+Inf"}} {int(h[-1])}')
                    lines.append(f'{name}_sum{{{label}="{lab}"}} {h[-2]:.6f}')
                    lines.append(f'{name}_count{{{label}="{lab}"}} {int(h[-1])}')
        for name, (help_text, value) in sorted(gauges.items()):
            lines += [f"# HELP {name} {help_text}", f"# TYPE {name} gauge",
                      f"{name} {'NaN' if value is None or not math.isfinite(value) else repr(float(value))}"]
        return "\n".join(lines) + "\n"


class BodyLimit:
    """ASGI middleware: refuse bodies over ``limit`` bytes with 413, by header or while streaming."""

    def __init__(self, app, limit: int):
        self.app, self.limit = app, limit

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
        started = refused = False

        async def limited_receive():
            nonlocal seen, refused, started
            if refused:
                return {"type": "http.disconnect"}
            msg = await receive()
            if msg["type"] == "http.request":
                seen += len(msg.get("body", b""))
                if seen > self.limit:  # a chunked body without Content-Length: refuse it mid-stream
                    refused = True
                    if not started:
                        started = True
                        await _send_json(send, 413, "body_too_large", f"request body over {self.limit} bytes")
                    return {"type": "http.disconnect"}
            return msg

        async def guarded_send(msg):
            nonlocal started
            if refused:
                return  # the 413 already went out; drop whatever the app answers to the cut body
            if msg["type"] == "http.response.start":
                started = True
            await send(msg)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except Exception:
            if not refused:
                raise


class Measure:
    """ASGI middleware: count requests by route and status, time them."""

    def __init__(self, app, telemetry: Telemetry):
        self.app, self.telemetry = app, telemetry

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        t0 = time.perf_counter()
        status = 500

        async def tracking_send(msg):
            nonlocal status
            if msg["type"] == "http.response.start":
                status = msg["status"]
            await send(msg)

        try:
            await self.app(scope, receive, tracking_send)
        finally:
            route = getattr(scope.get("route"), "path", None) or "other"
            self.telemetry.count(scope.get("method", "?"), route, status)
            self.telemetry.observe("autorag_http_request_seconds", route, time.perf_counter() - t0)


async def _send_json(send, status: int, code: str, message: str) -> None:
    import json

    body = json.dumps({"error": {"code": code, "message": message}}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


def create_app(settings: ServiceSettings | None = None, keys=None, *, controller: Controller | None = None,
               pipeline: Any = None, clock=time.time):
    """Build the FastAPI app (the controller is created here unless given)."""
    from typing import Literal

    from fastapi import Depends, FastAPI, Query
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse
    from pydantic import BaseModel, ConfigDict, Field, StrictStr
    from starlette.exceptions import HTTPException as StarletteHTTPException

    from autorag_hp.service.auth import KeyRing

    settings = settings or ServiceSettings()
    keys = keys or KeyRing.open()
    ctl = controller or Controller(settings, keys, pipeline=pipeline, clock=clock)
    telemetry = Telemetry()
    qmax = ctl.max_question_chars

    class AskRequest(BaseModel):
        model_config = ConfigDict(extra="forbid")
        question: StrictStr = Field(..., min_length=1, max_length=qmax, description="the user's question")
        reference: StrictStr | None = Field(None, max_length=settings.max_reference_chars,
                                            description="a reference answer: the service scores the answer itself")

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
        model_config = ConfigDict(extra="forbid")
        trial_id: StrictStr = Field(..., min_length=3, max_length=100)
        reward: float | None = Field(None, allow_inf_nan=False, description="a reward within the reward range")
        thumbs: Literal["up", "down"] | bool | None = Field(None, description="up / down")
        rating: float | None = Field(None, ge=1, le=5, allow_inf_nan=False, description="stars, 1 to 5")

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
    app.state.telemetry = telemetry

    def err(status: int, code: str, message: str, headers: dict | None = None):
        return JSONResponse({"error": {"code": code, "message": message}}, status_code=status, headers=headers)

    @app.exception_handler(ServiceError)
    async def _service_error(request: Request, exc: ServiceError):
        return err(exc.status, exc.code, exc.message, {"Retry-After": "1"} if exc.status == 503 else None)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError):
        errors = exc.errors()
        if any(e.get("type") == "json_invalid" for e in errors):
            return err(400, "malformed_json", "the body is not valid JSON: " + "; ".join(
                str(e.get("ctx", {}).get("error", e.get("msg"))) for e in errors))
        parts = []
        for e in errors:
            loc = ".".join(str(x) for x in e.get("loc", ()) if x != "body") or "body"
            parts.append(f"{loc}: {e.get('msg')}")
        return err(422, "invalid_request", "; ".join(parts))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException):
        code = {401: "unauthorized", 403: "forbidden", 404: "not_found", 405: "method_not_allowed"}.get(
            exc.status_code, "error")
        return err(exc.status_code, code, str(exc.detail), getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _other(request: Request, exc: Exception):
        if storage_down(exc):
            return err(503, "storage_unavailable", f"the tuning storage is unavailable ({type(exc).__name__}); "
                       "retry shortly", {"Retry-After": "1"})
        return err(500, "internal_error", f"{type(exc).__name__}: {exc}")

    def principal(*roles: str):
        from fastapi import HTTPException

        def dep(request: Request):
            auth = request.headers.get("authorization", "")
            key = auth[7:].strip() if auth.lower().startswith("bearer ") else request.headers.get("x-api-key")
            who = keys.lookup(key)
            if who is None:
                raise HTTPException(401, "missing or unknown API key: send 'Authorization: Bearer KEY'",
                                    headers={"WWW-Authenticate": "Bearer"})
            if who.role != "admin" and who.role not in roles:
                raise HTTPException(403, f"a {who.role} key cannot call this endpoint (needs: {', '.join(roles)} or admin)")
            return who

        return dep

    async def run_sync(fn, *args):
        from starlette.concurrency import run_in_threadpool

        try:
            return await run_in_threadpool(fn, *args)
        except ServiceError:
            raise
        except Exception as exc:
            if storage_down(exc):
                raise ServiceError(503, "storage_unavailable", f"the tuning storage is unavailable "
                                   f"({type(exc).__name__}); retry shortly") from exc
            raise

    @app.post("/v1/ask", response_model=AskResponse, tags=["tuning"],
              summary="Answer a question with the configuration the tuner chooses")
    async def ask(body: AskRequest, who=Depends(principal("ask"))):
        out = await run_sync(ctl.ask, body.question, body.reference, who)
        telemetry.observe("autorag_pipeline_seconds", "run", out["timing_ms"]["pipeline"] / 1e3)
        telemetry.observe("autorag_service_overhead_seconds", "ask", out["timing_ms"]["tuner"] / 1e3)
        return out

    @app.post("/v1/feedback", response_model=FeedbackResponse, tags=["tuning"],
              summary="Report the reward of a trial (once, from the client that asked)")
    async def feedback(body: FeedbackRequest, who=Depends(principal("feedback"))):
        value = ctl.feedback_value(body.reward, body.thumbs, body.rating)
        return await run_sync(ctl.feedback, body.trial_id, value, who)

    reader = principal("feedback")

    @app.get("/v1/best", tags=["results"], summary="Best configurations with 95 % intervals")
    async def best(k: int = Query(5, ge=1, le=100), who=Depends(reader)):
        return {"best": await run_sync(ctl.best, k)}

    @app.get("/v1/arms", tags=["results"], summary="Statistics per hyper-parameter value")
    async def arms(who=Depends(reader)):
        return await run_sync(ctl.arms)

    @app.get("/v1/trials", tags=["results"], summary="Latest trials, newest first")
    async def trials(state: Literal["pending", "reported", "expired"] | None = None,
                     limit: int = Query(100, ge=1, le=1000), who=Depends(reader)):
        return {"trials": await run_sync(ctl.trials, state, limit)}

    @app.get("/v1/dashboard", tags=["results"], summary="Everything the dashboard page draws")
    async def dashboard(who=Depends(reader)):
        return await run_sync(ctl.dashboard)

    @app.get("/healthz", tags=["ops"], summary="200 when the storage answers, 503 otherwise")
    async def healthz():
        try:
            await run_sync(ctl.healthy)
        except Exception as exc:
            return err(503, "storage_unavailable", f"storage unavailable: {type(exc).__name__}", {"Retry-After": "1"})
        return {"status": "ok", "study": ctl.study, "pipeline_tag": ctl.tag, "replica": settings.replica}

    @app.get("/metrics", tags=["ops"], response_class=PlainTextResponse, summary="Prometheus metrics")
    async def prom():
        pol = ctl.policy
        gauges = {
            "autorag_decisions": ("Decisions this replica has folded from the shared log.", float(pol.t)),
            "autorag_explore_share": ("Share of decisions that explored.", pol.explore_share),
            "autorag_explore_cap": ("Configured share of traffic allowed to explore.", pol.explore),
            "autorag_asks_total": ("Asks answered by this replica.", float(ctl.counters["asks"])),
            "autorag_feedback_total": ("Feedback recorded by this replica.", float(ctl.counters["feedback"])),
            "autorag_scored_total": ("Asks scored against a reference by this replica.", float(ctl.counters["scored"])),
        }
        return PlainTextResponse(telemetry.render(gauges), media_type="text/plain; version=0.0.4; charset=utf-8")

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def page():
        return HTMLResponse((STATIC / "dashboard.html").read_text(encoding="utf-8"))

    app.add_middleware(Measure, telemetry=telemetry)
    app.add_middleware(BodyLimit, limit=settings.max_body_bytes)  # outermost: nothing reads a refused body
    return app
