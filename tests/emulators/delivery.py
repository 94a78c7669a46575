"""A second host of an emulator that serves result files at signed URLs that expire.

Asynchronous providers hand back their images on hosts of their own (BFL's ``delivery-*.bfl.ai``
and Azure blobs, fal's media hosts), signed for a while. This server plays that host on its own
port: ``publish`` stores a file and returns its URL, signed with an HMAC over the name and the
expiry; a request with a bad or expired signature gets Azure Blob Storage's 403. It records the
headers of every request, so tests can see that no provider key reached it.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass

from .images import CONTENT_TYPES, ImageFormat
from .server import HttpRequest, HttpServer, Outcome, Response

_EXPIRED_BODY = (
    b'<?xml version="1.0" encoding="utf-8"?><Error><Code>AuthenticationFailed</Code>'
    b"<Message>Server failed to authenticate the request. Signed expiry time has passed.</Message></Error>"
)
_BAD_SIGNATURE_BODY = (
    b'<?xml version="1.0" encoding="utf-8"?><Error><Code>AuthenticationFailed</Code>'
    b"<Message>Signature did not match.</Message></Error>"
)


@dataclass(frozen=True)
class DeliveryRequest:
    """A request the delivery host received: what was asked and with which headers."""

    method: str
    path: str
    headers: dict[str, str]


class DeliveryServer:
    """Result files at ``http://127.0.0.1:PORT/results/<name>?se=<expiry>&sig=<hmac>``."""

    def __init__(self, host: str = "127.0.0.1", *, ttl: float = 600.0, capacity: int = 4096) -> None:
        self.ttl = ttl
        self._capacity = capacity
        self._key = secrets.token_bytes(16)
        self._lock = threading.Lock()
        self._files: OrderedDict[str, tuple[str, bytes]] = OrderedDict()
        self._requests: list[DeliveryRequest] = []
        self._server = HttpServer(self._handle, host, 0)

    async def start(self) -> None:
        await self._server.start()

    async def stop(self) -> None:
        await self._server.stop()

    @property
    def origin(self) -> str:
        return f"http://{self._server.host}:{self._server.port}"

    @property
    def requests(self) -> list[DeliveryRequest]:
        with self._lock:
            return list(self._requests)

    def reset(self) -> None:
        with self._lock:
            self._requests.clear()

    def publish(self, data: bytes, fmt: ImageFormat, *, expired: bool = False) -> str:
        """Stores a file and returns its signed URL (already past its expiry when ``expired``)."""
        name = f"{secrets.token_hex(12)}.{fmt}"
        with self._lock:
            self._files[name] = (CONTENT_TYPES[fmt], data)
            while len(self._files) > self._capacity:
                self._files.popitem(last=False)
        expiry = int(time.time() + (-60 if expired else self.ttl))
        return f"{self.origin}/results/{name}?se={expiry}&sig={self._sign(name, expiry)}"

    def _sign(self, name: str, expiry: int) -> str:
        return hmac.new(self._key, f"{name}\n{expiry}".encode(), hashlib.sha256).hexdigest()[:32]

    async def _handle(self, request: HttpRequest) -> Outcome:
        with self._lock:
            self._requests.append(DeliveryRequest(request.method, request.path, dict(request.headers)))
            del self._requests[: -self._capacity]
        name = request.path.removeprefix("/results/")
        if request.method != "GET" or name == request.path:
            return Response(404, (("content-type", "text/plain"),), b"not found")
        expiry_text = request.query.get("se", "")
        signature = request.query.get("sig", "")
        if not expiry_text.isdigit() or not hmac.compare_digest(signature, self._sign(name, int(expiry_text))):
            return Response(403, (("content-type", "application/xml"),), _BAD_SIGNATURE_BODY)
        if int(expiry_text) < time.time():
            return Response(403, (("content-type", "application/xml"),), _EXPIRED_BODY)
        with self._lock:
            found = self._files.get(name)
        if found is None:
            return Response(404, (("content-type", "text/plain"),), b"not found")
        return Response(200, (("content-type", found[0]),), found[1])
