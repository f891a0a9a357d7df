"""The service's operational telemetry: request counters and latency histograms by route, and the controller's
decision counts, in a ``prometheus_client`` registry of the app's own (``GET /metrics``). Not to be confused with
answer-quality metrics (:mod:`autorag_hp.evaluation.metrics`)."""

from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from autorag_hp.service.reads import StudyReader

#: The HTTP methods counted by name in /metrics; any other method is counted as ``other``.
HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "CONNECT"})
_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Metrics:
    """The service's own operational telemetry (request counters, latency histograms, the controller's counts)
    in a ``prometheus_client`` registry of its own (one per app), served at ``/metrics``. Every label has a fixed
    set of values: the method is a real HTTP method or ``other``, the path is the matched route template or
    ``other``, so no client can add series."""

    def __init__(self, ctl: StudyReader):
        from prometheus_client import CollectorRegistry, Counter, Histogram

        self.registry = reg = CollectorRegistry(auto_describe=True)
        self.requests = Counter("autorag_http_requests", "HTTP requests by method, route and status.",
                                ("method", "path", "status"), registry=reg)
        self.request_seconds = Histogram("autorag_http_request_seconds", "Time spent handling a request (server "
                                         "side).", ("path",), buckets=_BUCKETS, registry=reg)
        self.pipeline_seconds = Histogram("autorag_pipeline_seconds", "Time inside the RAG pipeline per ask.",
                                          ("stage",), buckets=_BUCKETS, registry=reg).labels("run")
        self.overhead_seconds = Histogram("autorag_service_overhead_seconds", "Ask time outside the pipeline "
                                          "(tuner, storage).", ("stage",), buckets=_BUCKETS, registry=reg).labels("ask")
        reg.register(_ControllerCollector(ctl))

    def count(self, method: str, route: str | None, status: int, seconds: float) -> None:
        method = method if method in HTTP_METHODS else "other"
        route = route or "other"
        self.requests.labels(method, route, str(status)).inc()
        self.request_seconds.labels(route).observe(seconds)

    def render(self) -> bytes:
        from prometheus_client import generate_latest

        return generate_latest(self.registry)


class _ControllerCollector:
    """The controller's decision and request counts, read at scrape time."""

    def __init__(self, ctl: StudyReader):
        self.ctl = ctl

    def describe(self):
        return []

    def collect(self):
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        pol, counts = self.ctl.policy, dict(self.ctl.counters)

        def num(x) -> float:
            return float(x) if x is not None and math.isfinite(x) else math.nan

        yield GaugeMetricFamily("autorag_decisions", "Decisions this replica has folded from the shared log.",
                                value=float(pol.t))
        yield GaugeMetricFamily("autorag_explore_share", "Share of decisions that explored.", value=num(pol.explore_share))
        yield GaugeMetricFamily("autorag_explore_cap", "Configured share of traffic allowed to explore.",
                                value=num(pol.explore))
        yield CounterMetricFamily("autorag_asks", "Asks answered by this replica.", value=counts["asks"])
        yield CounterMetricFamily("autorag_feedback", "Feedback recorded by this replica.", value=counts["feedback"])
        yield CounterMetricFamily("autorag_scored", "Asks scored against a reference by this replica.",
                                  value=counts["scored"])


class Measure:
    """ASGI middleware: count requests by method, route and status, time them."""

    def __init__(self, app, metrics: Metrics):
        self.app, self.metrics = app, metrics

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
            self.metrics.count(scope.get("method", ""), getattr(scope.get("route"), "path", None), status,
                               time.perf_counter() - t0)
