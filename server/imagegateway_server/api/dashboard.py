"""The dashboard: one page at /dashboard (request logs and analytics), its assets, and the
cookie-authenticated JSON API behind it.

    GET  /dashboard                      the page (inline CSS and JS, no external assets)
    POST /dashboard/api/login            {"key": "igw_..."} -> session cookie; 401 for a bad key
    POST /dashboard/api/logout           ends the session and clears the cookie
    GET  /dashboard/api/session          who is logged in
    GET  /dashboard/api/logs             recent requests, newest first, filtered (see dashboard_query)
    GET  /dashboard/api/logs/{id}        one request with every attempt
    GET  /dashboard/api/logs/{id}/image  the image kept for a request, if the caller asked to keep it
    GET  /dashboard/api/analytics        GetAnalytics as JSON (see dashboard_query.parse_analytics_query);
                                         detail=totals answers the rows' totals without buckets
    GET  /dashboard/api/analytics/view   the Analytics view's data in one answer, from one snapshot: the
                                         chart (``main``, with buckets) and its top tables (``keys``,
                                         ``users``, ``targets``: totals by key, metadata _user and target)
    GET  /dashboard/api/analytics.csv    the same as long CSV (api/analytics_csv.py; ``columns`` picks counts)
    GET  /dashboard/assets/{name}        the page's own script, the vendored uPlot chart library, its CSS
    GET  /dashboard/api/health           circuit-breaker state per target, when the process has a source

The key is sent once, in the login body, and never kept: the cookie holds an opaque session id
(HttpOnly, SameSite=Strict, Path=/dashboard, Secure over HTTPS). Every API call must carry
``x-imagegw-dashboard: 1``; a cross-site page cannot add a custom header without a CORS preflight,
which is never granted, so SameSite plus the header keep out request forgery, login included. A
``generate`` key sees only its own requests, an admin key all. Logs are read from the store.

The page loads nothing from other origins: its assets are files of this package (uPlot is vendored
under ``dashboard_assets/uplot``, with its licence), so it works with no network. The CSP allows
scripts and styles from the gateway itself plus the page's inline script and style by hash.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from google.protobuf import json_format
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from imagegateway_server.api.analytics_csv import analytics_csv, csv_columns
from imagegateway_server.api.analytics_json import analytics_json
from imagegateway_server.api.analytics_mapping import analytics_response
from imagegateway_server.api.auth import Authenticator
from imagegateway_server.api.dashboard_query import (
    VIEW_TABLES,
    parse_analytics_query,
    parse_log_query,
    table_query,
    totals_query,
)
from imagegateway_server.api.log_mapping import log_from_record
from imagegateway_server.api.rest_errors import error_envelope, to_http_error
from imagegateway_server.domain.calls import Caller
from imagegateway_server.domain.errors import GatewayError, InvalidArgument, NotFound, Unauthenticated
from imagegateway_server.domain.result import GeneratedImage
from imagegateway_server.domain.scopes import Scope
from imagegateway_server.security.api_keys import hash_api_key
from imagegateway_server.state.breakers import BreakerView
from imagegateway_server.state.in_process.sessions import InProcessSessionStore
from imagegateway_server.state.kept_images import KeptImages
from imagegateway_server.state.sessions import SessionStore
from imagegateway_server.storage.base import Store
from imagegateway_server.storage.kept_images import is_log_id
from imagegateway_server.storage.records import LogRecord

log = logging.getLogger(__name__)

SESSION_COOKIE = "imagegw_session"
COOKIE_PATH = "/dashboard"
CSRF_HEADER = "x-imagegw-dashboard"
LOGIN_ROUTE = "/dashboard/api/login"
KEEP_IMAGE_HEADER = "x-imagegw-keep-image"
MAX_LOGIN_BODY_BYTES = 4096

# Returns one JSON-ready dict per routing target (the breaker state), for admin keys only.
TargetHealthSource = Callable[[], Awaitable[Sequence[Mapping[str, Any]]]]

_NO_STORE = {"cache-control": "no-store"}
_PAGE_FILE = Path(__file__).with_name("dashboard_page.html")
_ASSETS = Path(__file__).with_name("dashboard_assets")
# The files /dashboard/assets/ serves, by URL name: (path under dashboard_assets, media type).
# Versioned names, so a browser may keep them for a day without ever running a stale one.
ASSET_FILES = {
    "uplot-1.6.32.min.js": ("uplot/uPlot.iife.min.js", "text/javascript; charset=utf-8"),
    "uplot-1.6.32.min.css": ("uplot/uPlot.min.css", "text/css; charset=utf-8"),
    "analytics-2.js": ("analytics.js", "text/javascript; charset=utf-8"),
}


def _csp_hash(source: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(source.encode()).digest()).decode() + "'"


def load_page() -> tuple[bytes, dict[str, str]]:
    """The page and its response headers; the CSP allows exactly the page's own inline script and style."""
    html = _PAGE_FILE.read_text(encoding="utf-8")
    scripts = re.findall(r"<script>(.*?)</script>", html, re.S)
    styles = re.findall(r"<style>(.*?)</style>", html, re.S)
    csp = "; ".join(
        (
            "default-src 'none'",
            # 'self': the files under /dashboard/assets/; nothing else on the origin is a script or
            # a style sheet (every API answer is JSON or CSV, sent with nosniff).
            "script-src 'self' " + " ".join(map(_csp_hash, scripts)),
            "style-src 'self' " + " ".join(map(_csp_hash, styles)),
            "img-src 'self' blob:",
            "connect-src 'self'",
            "form-action 'self'",
            "frame-ancestors 'none'",
            "base-uri 'none'",
        )
    )
    headers = {
        "content-security-policy": csp,
        "x-content-type-options": "nosniff",
        "referrer-policy": "no-referrer",
        **_NO_STORE,
    }
    return html.encode(), headers


def load_assets() -> dict[str, tuple[bytes, str]]:
    """The asset files' bytes and media types, read once."""
    return {name: ((_ASSETS / path).read_bytes(), media_type) for name, (path, media_type) in ASSET_FILES.items()}


def keep_image_task(
    keeper: KeptImages | None, wanted: bool, log_id: str, images: Sequence[GeneratedImage]
) -> BackgroundTask | None:
    """The after-response task that keeps a request's first image, if the caller opted in (``wanted``,
    from the x-imagegw-keep-image header) and keeping is on."""
    if keeper is None or not images or not wanted:
        return None
    image = images[0]
    if not image.data:
        return None  # the provider answered with a URL; the gateway does not fetch it just to keep it
    # Runs after the response has been sent.
    return BackgroundTask(keeper.keep, log_id, image.data, image.mime_type)


class _BreakerSnapshots(Protocol):
    async def snapshot(self, provider: str | None = None) -> list[BreakerView]: ...


def breaker_health(breakers: _BreakerSnapshots) -> TargetHealthSource:
    """A health source over the router's circuit breakers: one row per routing identity."""

    def when(epoch_seconds: float) -> str:
        return datetime.fromtimestamp(epoch_seconds, UTC).isoformat(timespec="seconds") if epoch_seconds else ""

    async def targets() -> list[dict[str, Any]]:
        return [
            {
                "provider": view.identity.provider,
                "model": view.identity.model,
                "host": view.identity.host or "(public API)",
                "key": view.identity.key_fingerprint,
                "state": view.state.value,
                "consecutive_failures": view.consecutive_failures,
                "failure_rate": f"{view.failure_rate:.0%}",
                "window_calls": view.window_calls,
                "next_probe": when(view.next_probe_time),
            }
            for view in await breakers.snapshot()
        ]

    return targets


class _DashboardError(Exception):
    """A refusal answered in the error envelope."""

    def __init__(self, status: int, message: str, code: str, param: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.param = param


def _error(status: int, message: str, code: str, param: str | None = None) -> JSONResponse:
    return JSONResponse(error_envelope(status, message, param=param, code=code), status_code=status, headers=_NO_STORE)


class Dashboard:
    """The dashboard's routes, session store and image access, built once per process."""

    def __init__(
        self,
        store: Store,
        authenticator: Authenticator,
        *,
        sessions: SessionStore | None = None,
        image_keeper: KeptImages | None = None,
        target_health: TargetHealthSource | None = None,
    ) -> None:
        self._store = store
        self._auth = authenticator
        self.sessions: SessionStore = sessions if sessions is not None else InProcessSessionStore()
        self._keeper = image_keeper
        self._target_health = target_health
        self._page, self._page_headers = load_page()
        self._assets = load_assets()

    def routes(self) -> list[BaseRoute]:
        table: list[tuple[str, Callable[[Request], Awaitable[Response]], str]] = [
            ("/dashboard", self.page, "GET"),
            (LOGIN_ROUTE, self.login, "POST"),
            ("/dashboard/api/logout", self.logout, "POST"),
            ("/dashboard/api/session", self.session, "GET"),
            ("/dashboard/api/logs", self.list_logs, "GET"),
            ("/dashboard/api/logs/{log_id}", self.get_log, "GET"),
            ("/dashboard/api/logs/{log_id}/image", self.image, "GET"),
            ("/dashboard/api/analytics", self.analytics, "GET"),
            ("/dashboard/api/analytics/view", self.analytics_view, "GET"),
            ("/dashboard/api/analytics.csv", self.analytics_csv, "GET"),
            ("/dashboard/assets/{name}", self.asset, "GET"),
            ("/dashboard/api/health", self.health, "GET"),
        ]
        return [Route(path, self._guarded(handler), methods=[method]) for path, handler, method in table]

    def _guarded(self, handler: Callable[[Request], Awaitable[Response]]) -> Callable[[Request], Awaitable[Response]]:
        """Maps refusals to the error envelope, in one place for every dashboard route."""

        async def endpoint(request: Request) -> Response:
            try:
                return await handler(request)
            except _DashboardError as exc:
                return _error(exc.status, exc.message, exc.code, exc.param)
            except GatewayError as exc:
                status, body = to_http_error(exc)
                return JSONResponse(body, status_code=status, headers=_NO_STORE)

        return endpoint

    # --- authentication ------------------------------------------------------------------------

    @staticmethod
    def _require_csrf_header(request: Request) -> None:
        if request.headers.get(CSRF_HEADER) != "1":
            raise _DashboardError(
                403,
                f"dashboard API calls must send the header {CSRF_HEADER}: 1",
                "missing_dashboard_header",
                CSRF_HEADER,
            )

    async def _caller(self, request: Request) -> Caller:
        """The logged-in caller; 401 without a live session of a live key."""
        self._require_csrf_header(request)
        token = request.cookies.get(SESSION_COOKIE)
        session = await self.sessions.get(token)
        if session is None or token is None:
            raise _DashboardError(401, "not logged in, or the session expired", "not_logged_in")
        # A revoked key ends its sessions at once (one indexed read; the dashboard is not the hot path).
        record = await self._store.get_api_key_by_hash(session.key_hash)
        if record is None or record.revoke_time is not None:
            await self.sessions.end(token)
            raise _DashboardError(401, "the key of this session was revoked", "not_logged_in")
        return Caller(key_id=session.key_id, scope=session.scope)

    async def _login_key(self, request: Request) -> str:
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type != "application/json":
            raise _DashboardError(
                415, "the login body must be sent as application/json", "unsupported_media_type", "content-type"
            )
        body = b""
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_LOGIN_BODY_BYTES:
                raise _DashboardError(
                    413, f"the login body is larger than {MAX_LOGIN_BODY_BYTES} bytes", "payload_too_large"
                )
        try:
            document = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            raise _DashboardError(400, "the login body is not valid JSON", "invalid_json") from None
        key = document.get("key") if isinstance(document, dict) else None
        if not isinstance(key, str) or not key.strip():
            raise _DashboardError(400, "key: a gateway API key is required", "invalid_value", "key")
        return key.strip()

    async def login(self, request: Request) -> Response:
        self._require_csrf_header(request)
        key = await self._login_key(request)
        try:
            # The authenticator counts and logs a refusal, never with the key or any part of it.
            caller = await self._auth.authenticate(key, Scope.GENERATE, operation=LOGIN_ROUTE)
        except Unauthenticated:
            raise _DashboardError(401, "the key is unknown or revoked", "invalid_api_key") from None
        token = await self.sessions.create(caller.key_id, caller.scope, hash_api_key(key))
        ttl = int(self.sessions.ttl_seconds)
        response = JSONResponse({"key_id": caller.key_id, "scope": caller.scope, "expires_in": ttl}, headers=_NO_STORE)
        response.set_cookie(
            SESSION_COOKIE,
            token,
            max_age=ttl,
            path=COOKIE_PATH,
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
        )
        log.info("dashboard login", extra={"key_id": caller.key_id})
        return response

    async def logout(self, request: Request) -> Response:
        self._require_csrf_header(request)
        # Logging out works with an expired session too: the cookie is cleared either way.
        await self.sessions.end(request.cookies.get(SESSION_COOKIE))
        response = Response(status_code=204, headers=_NO_STORE)
        response.delete_cookie(
            SESSION_COOKIE, path=COOKIE_PATH, httponly=True, samesite="strict", secure=request.url.scheme == "https"
        )
        return response

    async def session(self, request: Request) -> Response:
        caller = await self._caller(request)
        return JSONResponse(
            {
                "key_id": caller.key_id,
                "scope": caller.scope,
                "keep_images": self._keeper is not None,
                "breaker_health": self._target_health is not None and caller.scope == Scope.ADMIN,
            },
            headers=_NO_STORE,
        )

    # --- pages and data --------------------------------------------------------------------------

    async def page(self, request: Request) -> Response:
        return Response(self._page, media_type="text/html; charset=utf-8", headers=self._page_headers)

    def _view(self, record: LogRecord, kept: set[str]) -> dict[str, Any]:
        view = json_format.MessageToDict(
            log_from_record(record),
            preserving_proto_field_name=True,
            always_print_fields_with_no_presence=True,
            unquote_int64_if_possible=True,
        )
        view["has_image"] = record.id in kept
        return view

    async def _kept(self, records: Sequence[LogRecord]) -> set[str]:
        """Which records have a kept image: one look-up for the page."""
        if self._keeper is None or not records:
            return set()
        return await self._keeper.kept_among(record.id for record in records)

    async def list_logs(self, request: Request) -> Response:
        caller = await self._caller(request)
        query = parse_log_query(request.query_params.multi_items(), caller)
        page = await self._store.list_logs(query.store_filter, query.page_size, query.page_token)
        kept = await self._kept(page.items)
        return JSONResponse(
            {"logs": [self._view(record, kept) for record in page.items], "next_page_token": page.next_page_token},
            headers=_NO_STORE,
        )

    async def asset(self, request: Request) -> Response:
        found = self._assets.get(request.path_params["name"])
        if found is None:
            raise NotFound("no such dashboard asset")
        content, media_type = found
        return Response(
            content,
            media_type=media_type,
            headers={"cache-control": "public, max-age=86400", "x-content-type-options": "nosniff"},
        )

    async def analytics(self, request: Request) -> Response:
        # The same message GetAnalytics answers, in protobuf's JSON form (times in RFC 3339 UTC).
        caller = await self._caller(request)
        params = request.query_params.multi_items()
        detail = ",".join(value for name, value in params if name == "detail") or "buckets"
        if detail not in ("buckets", "totals"):
            raise InvalidArgument("must be buckets or totals", param="detail")
        query = parse_analytics_query([(name, value) for name, value in params if name != "detail"], caller)
        if detail == "totals":  # a table of a month by 200 users needs no 6,200 buckets
            query = totals_query(query)
        body = analytics_json(query, await self._store.aggregate_logs(query), buckets=detail == "buckets")
        return JSONResponse(body, headers=_NO_STORE)

    async def analytics_view(self, request: Request) -> Response:
        # One call and one snapshot for the whole view: the chart's and the tables' numbers count
        # the same requests, and the page waits for one answer, not four racing for the database.
        caller = await self._caller(request)
        chart = parse_analytics_query(request.query_params.multi_items(), caller)
        tables = [(name, table_query(chart, group_by, key)) for name, group_by, key in VIEW_TABLES]
        results = await self._store.aggregate_logs_together([chart, *(query for _, query in tables)])
        body = {"main": analytics_json(chart, results[0])}
        for (name, query), result in zip(tables, results[1:], strict=True):
            body[name] = analytics_json(query, result, buckets=False, latencies=False)
        return JSONResponse(body, headers=_NO_STORE)

    async def analytics_csv(self, request: Request) -> Response:
        caller = await self._caller(request)
        params = request.query_params.multi_items()
        columns = csv_columns(",".join(value for name, value in params if name == "columns"))
        query = parse_analytics_query([(name, value) for name, value in params if name != "columns"], caller)
        response = analytics_response(query, await self._store.aggregate_logs(query))
        grouping = f"metadata.{query.metadata_key}" if query.metadata_key else query.group_by.value
        return Response(
            analytics_csv(response, grouping, columns),
            media_type="text/csv; charset=utf-8",
            headers={**_NO_STORE, "x-content-type-options": "nosniff"},
        )

    async def _owned_record(self, request: Request) -> tuple[Caller, LogRecord]:
        caller = await self._caller(request)
        log_id = request.path_params["log_id"]
        not_found = NotFound(f"request log {log_id!r} was not found")
        if not is_log_id(log_id):
            raise not_found
        record = await self._store.get_log(log_id)
        if caller.scope != Scope.ADMIN and record.caller_key_id != caller.key_id:
            raise not_found  # the same answer as an unknown id: others' ids are not revealed
        return caller, record

    async def get_log(self, request: Request) -> Response:
        _, record = await self._owned_record(request)
        return JSONResponse({"log": self._view(record, await self._kept([record]))}, headers=_NO_STORE)

    async def image(self, request: Request) -> Response:
        _, record = await self._owned_record(request)
        kept = await self._keeper.get(record.id) if self._keeper is not None else None
        if kept is None:
            raise NotFound(f"no image was kept for request log {record.id!r}")
        data, mime_type = kept
        return Response(
            data,
            media_type=mime_type,
            headers={
                "cache-control": "private, no-store",
                "x-content-type-options": "nosniff",
                "content-security-policy": "default-src 'none'; sandbox",
            },
        )

    async def health(self, request: Request) -> Response:
        caller = await self._caller(request)
        if self._target_health is None or caller.scope != Scope.ADMIN:
            # The page then works out per-provider figures from the requests it lists.
            return JSONResponse({"source": "none", "targets": []}, headers=_NO_STORE)
        targets = [dict(target) for target in await self._target_health()]
        return JSONResponse({"source": "breakers", "targets": targets}, headers=_NO_STORE)
