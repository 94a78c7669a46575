"""The busiest REST route served straight to its handler, in front of the Starlette app.

Every request through Starlette passes its error middleware, our metrics middleware, its exception
middleware (which builds a ``Request`` of its own), its router (which matches each route in turn) and
the route's wrapper (another ``Request``, another exception layer), and the response's start passes the
same layers back: ~9 us a request on a warm CPU, several times that on the cold caches a streamed
request meets after its wait. ``POST /v1/images/generations`` does not need the routing or the
exception handlers (its handler answers every error itself and raises no ``HTTPException``), so it
takes a short way: Starlette's own ``ServerErrorMiddleware`` (a 500 for an unexpected exception, as
before), the same metrics middleware (the route's template as its label, as the router would set it),
and the handler. Every other request, and this path with another method, goes to the Starlette app.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.applications import Starlette
from starlette.middleware.errors import ServerErrorMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route
from starlette.types import Receive, Scope, Send

from imagegateway_server.api.rest_metrics import HttpMetricsMiddleware
from imagegateway_server.observability.metrics import Metrics


class DirectRoute:
    """ASGI app: ``route``'s requests go to ``handler`` directly, everything else to ``app``."""

    def __init__(
        self,
        app: Starlette,
        route: Route,
        handler: Callable[[Request], Awaitable[Response]],
        *,
        metrics: Metrics,
    ) -> None:
        self._app = app
        self._route = route
        self._path = route.path
        self._methods = frozenset(route.methods or ())
        self._handler = handler
        self._direct = ServerErrorMiddleware(HttpMetricsMiddleware(self._serve, metrics=metrics))

    @property
    def routes(self) -> list[BaseRoute]:
        """Every route served, the direct one among them (the Starlette app's)."""
        return self._app.routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and scope["path"] == self._path
            and scope["method"] in self._methods
            and not scope.get("root_path")
        ):
            await self._direct(scope, receive, send)
        else:
            await self._app(scope, receive, send)

    async def _serve(self, scope: Scope, receive: Receive, send: Send) -> None:
        # What Starlette's application and router put in the scope for a matched route.
        scope["app"] = self._app
        scope["route"] = self._route
        scope["endpoint"] = self._handler
        scope["path_params"] = {}
        response = await self._handler(Request(scope, receive, send))
        await response(scope, receive, send)
