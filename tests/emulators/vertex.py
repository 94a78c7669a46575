"""Fake Vertex AI: Imagen ``:predict``, Gemini ``:generateContent``, and the OAuth token endpoint.

    POST /token                                         the JWT bearer grant (RFC 7523), as oauth2.googleapis.com
    POST /v1/projects/{p}/locations/{r}/publishers/google/models/{model}:predict | :generateContent

The token endpoint checks the grant as Google's does: ``grant_type`` the JWT bearer URN, an RS256
assertion whose signature verifies against the public key of the service account named in ``iss``,
audience ``https://oauth2.googleapis.com/token``, a cloud-platform scope, and a lifetime of at most
an hour that has not run out; a bad grant is 400 ``invalid_grant``. It issues ``ya29.`` tokens that
live ``token_lifetime`` seconds. Model calls need ``Authorization: Bearer`` with a live token (one it
issued, or one of ``static_tokens``), the emulator's project and a known location; an expired token
is 401 UNAUTHENTICATED (``expire_tokens()`` ages every issued token at once). Bodies are validated by
``google_rules`` (Vertex's variant: a seed needs ``addWatermark: false``). Faults as the Gemini API
emulator's, in Google's envelope; the token endpoint is another host in reality, so it has its own
schedule (``inject_token_fault``) and ``inject`` never reaches it.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
import threading
import time
from collections.abc import Mapping
from typing import Any, ClassVar, TypeVar
from urllib.parse import parse_qsl

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from .emulator import AnswerMode, Endpoint, bearer_token
from .faults import Fault, FaultSchedule
from .google_images import GoogleImagesEmulator
from .google_rules import GeminiRules, GoogleError, ImagenRules, status_error
from .recording import RecordedRequest
from .server import HttpRequest, Outcome, Response

_Rules = TypeVar("_Rules", ImagenRules, GeminiRules)
TOKEN_PATH = "/token"
GOOGLE_TOKEN_AUDIENCE = "https://oauth2.googleapis.com/token"
JWT_GRANT_TYPE = "urn:ietf:params:oauth:grant-type:jwt-bearer"
SCOPE = "https://www.googleapis.com/auth/cloud-platform"
_CALL = re.compile(
    r"^/v1/projects/([^/]+)/locations/([^/]+)/publishers/google/models/([^/:]+):(predict|generateContent)$"
)

IMAGEN_MODELS: Mapping[str, ImagenRules] = {
    "imagen-4.0-generate-001": ImagenRules(("1K", "2K")),
    "imagen-4.0-ultra-generate-001": ImagenRules(("1K", "2K")),
    "imagen-4.0-fast-generate-001": ImagenRules(),
    "imagen-3.0-generate-002": ImagenRules(),
    "imagen-3.0-generate-001": ImagenRules(negative_prompt=True),
    "imagen-3.0-fast-generate-001": ImagenRules(negative_prompt=True),
}
GEMINI_MODELS: Mapping[str, GeminiRules] = {
    "gemini-2.5-flash-image": GeminiRules(),
    "gemini-3-pro-image-preview": GeminiRules(("1K", "2K", "4K")),
}


def service_account_key(client_email: str, project_id: str, token_uri: str) -> tuple[dict[str, str], str]:
    """A throwaway service account key file (as JSON members) and its public key PEM, for tests."""
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    public = (
        private.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    key = {
        "type": "service_account",
        "project_id": project_id,
        "private_key_id": secrets.token_hex(20),
        "private_key": pem,
        "client_email": client_email,
        "client_id": str(10**20 + secrets.randbelow(10**20)),
        "auth_uri": "https://accounts.google.com/o/oauth2/auth",
        "token_uri": token_uri,
        "universe_domain": "googleapis.com",
    }
    return key, public


class VertexEmulator(GoogleImagesEmulator):
    """Vertex AI for one project on ``http://127.0.0.1:PORT`` (its base URL is the origin, as Portkey's
    ``custom_host`` for vertex-ai); ``accounts`` maps service account e-mails to their public key PEMs."""

    provider: ClassVar[str] = "vertex-ai"
    _malformed_body: ClassVar[bytes] = b'{"predictions": [{"mimeType": "image/png", "bytesBase64Encoded": "iVBOR'
    _vertex: ClassVar[bool] = True

    def __init__(
        self,
        api_key: str | None = None,
        *,
        project: str = "imagegw-test",
        locations: tuple[str, ...] = ("us-central1", "europe-west4", "global"),
        accounts: Mapping[str, str] | None = None,
        static_tokens: tuple[str, ...] = (),
        token_lifetime: int = 3599,
        host: str = "127.0.0.1",
        port: int = 0,
        max_recorded: int = 1000,
    ) -> None:
        super().__init__(api_key, host=host, port=port, max_recorded=max_recorded)
        self.project = project
        self.locations = locations
        self.accounts = dict(accounts or {})
        self.static_tokens = set(static_tokens) | ({api_key} if api_key else set())
        self.token_lifetime = token_lifetime
        self._lock = threading.Lock()
        self._issued: dict[str, float] = {}  # token -> expiry (wall clock)
        self._drop_next = 0
        self._token_faults = FaultSchedule()
        self.token_requests = 0

    @property
    def token_uri(self) -> str:
        return self.origin + TOKEN_PATH

    def add_account(self, client_email: str, public_key_pem: str) -> None:
        self.accounts[client_email] = public_key_pem

    def expire_tokens(self) -> None:
        """Every token issued so far is expired from now on (the next call with one is a 401)."""
        with self._lock:
            self._issued = dict.fromkeys(self._issued, 0.0)

    def inject_token_fault(self, fault: Fault, times: int | None = 1) -> None:
        """Applies ``fault`` to the next ``times`` token requests (``inject`` applies to model calls only)."""
        self._token_faults.inject(fault, times)

    async def _handle(self, http_request: HttpRequest) -> Outcome:
        if http_request.path != TOKEN_PATH or http_request.method != "POST":
            return await super()._handle(http_request)
        request = RecordedRequest.decode(http_request, self._new_request_id())
        self._log.add(request)
        outcome = await self._apply(self._token_faults.next(), request, self._token)
        return self._finish(outcome, request.request_id)

    def reset(self) -> None:
        super().reset()
        self._token_faults.clear()
        self._drop_next = 0
        with self._lock:
            self.token_requests = 0

    # -- routing -------------------------------------------------------------------------------------

    def _route(self, request: RecordedRequest) -> Endpoint | None:
        if request.method != "POST":
            return None
        if request.path == TOKEN_PATH:
            return self._token
        match = _CALL.match(request.path)
        if match is None:
            return None
        return self._generate_content if match.group(4) == "generateContent" else self._predict

    def _error_response(self, status: int, request: RecordedRequest) -> Response:
        if request.path == TOKEN_PATH:
            return Response.json(status, {"error": "internal_failure", "error_description": f"HTTP {status}"})
        return status_error(status).response()

    def _rate_limited_response(self, request: RecordedRequest) -> Response:
        match = _CALL.match(request.path)
        model = match.group(3) if match else "imagen"
        return GoogleError(
            429,
            "RESOURCE_EXHAUSTED",
            "Quota exceeded for aiplatform.googleapis.com/online_prediction_requests_per_base_model with base model: "
            f"{model}. Please submit a quota increase request.",
        ).response()

    # -- OAuth ---------------------------------------------------------------------------------------

    def _token(self, request: RecordedRequest, mode: AnswerMode) -> Response:
        with self._lock:
            self.token_requests += 1
        if not request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
            return _grant_error("invalid_request", "Invalid Content-Type; expected application/x-www-form-urlencoded.")
        form = dict(parse_qsl(request.body.decode("utf-8", "replace")))
        if form.get("grant_type") != JWT_GRANT_TYPE:
            return _grant_error("unsupported_grant_type", "Invalid grant_type.")
        claims = self._verified_claims(form.get("assertion", ""))
        if isinstance(claims, Response):
            return claims
        token = "ya29.emulator-" + secrets.token_urlsafe(24)
        with self._lock:
            self._issued[token] = time.time() + self.token_lifetime
        return Response.json(200, {"access_token": token, "expires_in": self.token_lifetime, "token_type": "Bearer"})

    def _verified_claims(self, assertion: str) -> dict[str, Any] | Response:
        parts = assertion.split(".")
        if len(parts) != 3:
            return _grant_error(
                "invalid_grant", "Invalid JWT: Token must be a short-lived token and in a reasonable timeframe."
            )
        try:
            header = json.loads(_b64url(parts[0]))
            claims = json.loads(_b64url(parts[1]))
            signature = _b64url(parts[2])
        except ValueError:
            return _grant_error("invalid_grant", "Invalid JWT: malformed.")
        if not isinstance(header, dict) or header.get("alg") != "RS256" or not isinstance(claims, dict):
            return _grant_error("invalid_grant", "Invalid JWT: unsupported algorithm.")
        public_pem = self.accounts.get(str(claims.get("iss")))
        if public_pem is None:
            return _grant_error("invalid_grant", "Invalid grant: account not found")
        public = serialization.load_pem_public_key(public_pem.encode())
        assert isinstance(public, rsa.RSAPublicKey)
        try:
            public.verify(signature, f"{parts[0]}.{parts[1]}".encode(), padding.PKCS1v15(), hashes.SHA256())
        except InvalidSignature:
            return _grant_error("invalid_grant", "Invalid JWT Signature.")
        now = time.time()
        iat, exp = claims.get("iat"), claims.get("exp")
        if not isinstance(iat, int) or not isinstance(exp, int) or exp - iat > 3600 or exp < now or iat > now + 300:
            return _grant_error(
                "invalid_grant",
                "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe.",
            )
        if claims.get("aud") != GOOGLE_TOKEN_AUDIENCE:
            return _grant_error("invalid_grant", "Invalid JWT: Failed audience check.")
        if SCOPE not in str(claims.get("scope", "")).split():
            return _grant_error("invalid_scope", "Invalid OAuth scope or ID token audience provided.")
        return claims

    def _authenticate(self, request: RecordedRequest) -> None:
        token = bearer_token(request.headers) if "authorization" in request.headers else None
        with self._lock:
            expiry = self._issued.get(token or "")
        if token is not None and (token in self.static_tokens or (expiry is not None and expiry > time.time())):
            return
        raise status_error(401)

    def _call(self, request: RecordedRequest) -> str:
        match = _CALL.match(request.path)
        assert match is not None
        project, location, model = match.group(1), match.group(2), match.group(3)
        if project != self.project:
            raise GoogleError(403, "PERMISSION_DENIED", f"Permission denied on resource project {project}.")
        if location not in self.locations:
            raise GoogleError(400, "INVALID_ARGUMENT", f"Unsupported location: {location}.")
        return model

    def _imagen_rules(self, request: RecordedRequest) -> ImagenRules:
        return self._rules(request, IMAGEN_MODELS)

    def _gemini_rules(self, request: RecordedRequest) -> GeminiRules:
        return self._rules(request, GEMINI_MODELS)

    def _rules(self, request: RecordedRequest, table: Mapping[str, _Rules]) -> _Rules:
        model = self._call(request)
        rules = table.get(model)
        if rules is None:
            raise _model_not_found(self.project, request, model)
        return rules


def _model_not_found(project: str, request: RecordedRequest, model: str) -> GoogleError:
    location = request.path.split("/locations/", 1)[1].split("/", 1)[0]
    return GoogleError(
        404,
        "NOT_FOUND",
        f"Publisher Model `projects/{project}/locations/{location}/publishers/google/models/{model}` not found.",
    )


def _grant_error(error: str, description: str) -> Response:
    return Response.json(400, {"error": error, "error_description": description})


def _b64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
