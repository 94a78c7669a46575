"""Counts every REST shim response in ``imagegateway_http_requests_total{route, status}``.

``route`` is the matched route's template (``/v1/images/generations``), never the raw path, so a
scan of random URLs cannot grow the label set: a request that matched no route counts as
``unmatched``. A handler that raised is counted as the 500 the server answers.
"""

from __future__ import annotations

from prometheus_client import Counter
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from imagegateway_server.observability.metrics import Metrics

UNMATCHED = "unmatched"


def route_template(scope: Scope) -> str:
    """The template of the route Starlette matched for this request (mounts included)."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    if not isinstance(path, str):
        return UNMATCHED
    # Inside a Mount the matched route's path is relative; the mount's prefix is in root_path.
    prefix = scope.get("root_path", "")
    app_root = scope.get("app_root_path", "")
    mounted = prefix[len(app_root) :] if isinstance(prefix, str) and isinstance(app_root, str) else ""
    return (mounted + path) or "/"


class HttpMetricsMiddleware:
    """Pure ASGI middleware (no request body buffering) around the whole shim."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self._app = app
        self._metrics = metrics
        # (route, status) -> its counter: labels() takes a lock and builds a key on every call.
        self._counters: dict[tuple[str, int], Counter] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        status = 500

        async def send_and_note(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self._app(scope, receive, send_and_note)
        finally:
            key = (route_template(scope), status)
            counter = self._counters.get(key)
            if counter is None:
                counter = self._counters[key] = self._metrics.http_requests.labels(key[0], str(status))
            counter.inc()
