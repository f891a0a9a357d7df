"""How ``autorag-hp serve`` runs the app on uvicorn: the HTTP read timeouts and the connection cap.

A client that opens connections and then stalls must not hold the server's sockets forever (slowloris).
uvicorn's own settings cover part of it: ``timeout_keep_alive`` closes an idle kept-alive connection,
``limit_concurrency`` answers 503 once that many connections or requests are open, and h11's
``max_incomplete_event_size`` caps the bytes of a request line plus headers. uvicorn has no header read
timeout (a connection that sends half a request line is kept as long as it stays open), so
:func:`header_timeout_protocol` adds one to uvicorn's h11 protocol. The *body* read timeout is the app's
:class:`~autorag_hp.service.app.BodyLimit` middleware (408 when the whole body has not arrived in time).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class HTTPLimits:
    """What one uvicorn process accepts from its clients. The defaults are safe for a public port."""

    header_timeout: float = 10.0  # seconds from connect (or the last response) to a complete request head
    keep_alive: int = 5  # seconds an idle kept-alive connection stays open
    limit_concurrency: int = 512  # open connections + running requests; past it new requests get 503
    max_header_bytes: int = 16384  # request line + headers

    def __post_init__(self) -> None:
        if not self.header_timeout > 0 or self.keep_alive < 1 or self.limit_concurrency < 2 or self.max_header_bytes < 1024:
            raise ValueError(f"invalid HTTP limits {self}: header_timeout > 0, keep_alive >= 1, "
                             "limit_concurrency >= 2, max_header_bytes >= 1024")


def header_timeout_protocol(seconds: float) -> type:
    """uvicorn's h11 protocol, closing a connection whose request line and headers are not complete within
    ``seconds`` of the connection opening or of its previous response (a 408 when some of them had arrived)."""
    from uvicorn.protocols.http.h11_impl import H11Protocol

    class HeaderTimeoutH11Protocol(H11Protocol):
        header_timeout = seconds

        def connection_made(self, transport) -> None:  # type: ignore[override]
            self._header_timer = None
            super().connection_made(transport)
            self._arm_header_timer()

        def connection_lost(self, exc: Exception | None) -> None:
            self._cancel_header_timer()
            super().connection_lost(exc)

        def handle_events(self) -> None:
            before = self.cycle
            super().handle_events()
            if self.cycle is not before:  # a new request's head was parsed: the app's own limits take over
                self._cancel_header_timer()

        def on_response_complete(self) -> None:
            before = self.cycle
            super().on_response_complete()
            if self.cycle is before and not self.transport.is_closing():  # waiting for the next request head
                self._arm_header_timer()

        def _arm_header_timer(self) -> None:
            self._cancel_header_timer()
            self._header_timer = self.loop.call_later(self.header_timeout, self._header_timed_out)

        def _cancel_header_timer(self) -> None:
            if self._header_timer is not None:
                self._header_timer.cancel()
                self._header_timer = None

        def _header_timed_out(self) -> None:
            self._header_timer = None
            if self.transport.is_closing():
                return
            partial, _ = self.conn.trailing_data
            if partial:
                self.transport.write(b"HTTP/1.1 408 Request Timeout\r\ncontent-type: text/plain\r\n"
                                     b"content-length: 30\r\nconnection: close\r\n\r\nrequest headers took too long\n")
            self.transport.close()

    return HeaderTimeoutH11Protocol


def run(app: Any, host: str, port: int, limits: HTTPLimits = HTTPLimits(), log_level: str = "warning") -> None:
    """Serve ``app`` until interrupted."""
    import uvicorn

    uvicorn.run(app, host=host, port=port, log_level=log_level, access_log=False, timeout_graceful_shutdown=5,
                http=header_timeout_protocol(limits.header_timeout), timeout_keep_alive=limits.keep_alive,
                limit_concurrency=limits.limit_concurrency, h11_max_incomplete_event_size=limits.max_header_bytes)
