"""A scripted HTTP/1.1 server on a loopback socket, for wire shapes the provider emulators do not produce.

Each request is answered by ``answer(request)``: raw response bytes, written as they are (a chunked
body, a bad content-encoding, a status line that is not HTTP), ``CLOSE`` to drop the connection
unanswered, or ``HANG`` to send nothing and read on until the client goes away. A connection stays
open for the next request unless the answer says ``connection: close``. The server counts the
connections it accepted and those a client abandoned while waiting, and keeps every request as the
upstream saw it (pooling, cookies, proxies, headers). ``FailingResolver`` and ``StalledResolver``
stand in for a DNS that fails or never answers."""

from __future__ import annotations

import asyncio
import inspect
import socket
import ssl
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from http import HTTPStatus

from aiohttp.abc import AbstractResolver, ResolveResult


class _Hang:
    """Answer nothing; wait for the client to close the connection."""


class _Close:
    """Answer nothing; close the connection at once."""


HANG = _Hang()
CLOSE = _Close()


@dataclass(frozen=True)
class RawRequest:
    """A request as read from the wire; header names lower-case, repeated ones joined with ", "."""

    method: str
    target: str
    headers: dict[str, str]
    body: bytes


Outcome = bytes | _Hang | _Close
Answer = Callable[[RawRequest], Outcome | Awaitable[Outcome]]


def http_response(status: int = 200, body: bytes = b"", headers: Mapping[str, str] | None = None) -> bytes:
    """A complete HTTP/1.1 response with a Content-Length."""
    reason = HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else ""
    lines = [f"HTTP/1.1 {status} {reason}"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    lines.append(f"content-length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def ok(_request: RawRequest) -> bytes:
    return http_response(200, b"ok", {"content-type": "text/plain"})


class RawUpstream:
    """Serves ``answer`` on 127.0.0.1 (or ``host``), over TLS when ``ssl_context`` is given."""

    def __init__(
        self, answer: Answer = ok, *, host: str = "127.0.0.1", ssl_context: ssl.SSLContext | None = None
    ) -> None:
        self.connections = 0
        self.abandoned = 0
        self.requests: list[RawRequest] = []
        self.host = host
        self._answer = answer
        self._ssl = ssl_context
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._abandoned_changed = asyncio.Condition()

    async def __aenter__(self) -> RawUpstream:
        self._server = await asyncio.start_server(self._serve, self.host, 0, ssl=self._ssl)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._server.wait_closed()

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.sockets[0].getsockname()[1])

    def url(self, path: str = "/", *, host: str | None = None) -> str:
        scheme = "https" if self._ssl is not None else "http"
        return f"{scheme}://{host or self.host}:{self.port}{path}"

    async def wait_abandoned(self, count: int) -> None:
        """Waits until the client has closed ``count`` connections that were waiting for an answer."""
        async with self._abandoned_changed:
            await self._abandoned_changed.wait_for(lambda: self.abandoned >= count)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self.connections += 1
        try:
            while (request := await _read_request(reader)) is not None:
                self.requests.append(request)
                answer = self._answer(request)
                if inspect.isawaitable(answer):
                    answer = await answer
                if isinstance(answer, _Hang):
                    while await reader.read(65536):
                        pass
                    async with self._abandoned_changed:
                        self.abandoned += 1
                        self._abandoned_changed.notify_all()
                    return
                if isinstance(answer, _Close):
                    return
                writer.write(answer)
                await writer.drain()
                if b"connection: close" in answer.partition(b"\r\n\r\n")[0].lower():
                    return
        except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError):
            pass
        finally:
            self._tasks.discard(task)
            writer.close()


async def _read_request(reader: asyncio.StreamReader) -> RawRequest | None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as exc:
        if exc.partial:
            raise
        return None
    request_line, *header_lines = head.decode("latin-1").rstrip("\r\n").split("\r\n")
    method, target, _version = request_line.split(" ", 2)
    headers: dict[str, str] = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        key = name.strip().lower()
        headers[key] = f"{headers[key]}, {value.strip()}" if key in headers else value.strip()
    body = await reader.readexactly(int(headers.get("content-length", "0")))
    return RawRequest(method, target, headers, body)


class FailingResolver(AbstractResolver):
    """A DNS that knows no name: every lookup fails the way getaddrinfo does, with ``message``."""

    def __init__(self, message: str = "Name or service not known") -> None:
        self._message = message

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        raise socket.gaierror(socket.EAI_NONAME, self._message)

    async def close(self) -> None:
        return None


class StalledResolver(AbstractResolver):
    """A DNS that never answers: connecting stalls until a timeout ends it."""

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    async def close(self) -> None:
        return None
