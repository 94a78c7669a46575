"""POST /v1/images/generations goes straight to its handler, answering and counted as through Starlette."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from imagegateway_server.api.rest_direct_route import DirectRoute
from imagegateway_server.api.rest_metrics import HttpMetricsMiddleware
from imagegateway_server.observability.metrics import Metrics

PATH = "/v1/images/generations"


async def generations(request: Request) -> Response:
    if request.headers.get("x-fail"):
        raise RuntimeError("a bug in the handler")
    body = await request.body()
    return PlainTextResponse(f"direct {request.scope['route'].path} {body.decode()}", status_code=201)


async def health(request: Request) -> Response:
    return PlainTextResponse("ok")


def build() -> tuple[DirectRoute, Metrics]:
    metrics = Metrics()
    route = Route(PATH, generations, methods=["POST"])
    app = Starlette(
        routes=[route, Route("/health", health, methods=["GET"])],
        middleware=[Middleware(HttpMetricsMiddleware, metrics=metrics)],
    )
    return DirectRoute(app, route, generations, metrics=metrics), metrics


async def call(
    app: DirectRoute,
    method: str,
    path: str,
    headers: tuple[tuple[bytes, bytes], ...] = (),
    sent: list[Any] | None = None,
) -> list[Any]:
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": list(headers),
        "server": ("127.0.0.1", 80),
        "client": ("127.0.0.1", 1),
    }
    messages = [{"type": "http.request", "body": b"hi", "more_body": False}]
    sent = sent if sent is not None else []

    async def receive() -> Any:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message: Any) -> None:
        sent.append(message)

    await app(scope, receive, send)
    return sent


def counted(metrics: Metrics, route: str, status: int) -> float:
    return metrics.http_requests.labels(route, str(status))._value.get()  # type: ignore[attr-defined,no-any-return]


async def test_the_direct_route_is_served_by_its_handler_and_counted_under_its_template() -> None:
    app, metrics = build()
    sent = await call(app, "POST", PATH)
    assert sent[0]["status"] == 201 and sent[1]["body"] == b"direct /v1/images/generations hi"
    assert counted(metrics, PATH, 201) == 1


async def test_a_handler_that_raises_answers_starlettes_500_and_is_counted_as_one() -> None:
    app, metrics = build()
    sent: list[Any] = []
    with pytest.raises(RuntimeError):  # re-raised for the server to log, as Starlette does
        await call(app, "POST", PATH, ((b"x-fail", b"1"),), sent)
    assert sent[0]["status"] == 500 and sent[1]["body"] == b"Internal Server Error"
    assert counted(metrics, PATH, 500) == 1


async def test_other_methods_and_paths_go_through_the_starlette_app() -> None:
    app, metrics = build()
    assert (await call(app, "GET", PATH))[0]["status"] == 405
    assert (await call(app, "POST", PATH + "/"))[0]["status"] in (307, 404)
    assert (await call(app, "GET", "/health"))[1]["body"] == b"ok"
    assert counted(metrics, PATH, 405) == 1
    assert counted(metrics, "/health", 200) == 1
    assert [route.path for route in app.routes] == [PATH, "/health"]
