"""Fake Amazon Bedrock Runtime: ``POST /model/{modelId}/invoke`` for the image models, checked as AWS checks it.

Authentication is verified, not just looked at: a SigV4 ``Authorization`` is recomputed with
botocore's signer from the request as received (method, raw path, the signed headers, the body)
with the key pair the emulator was given, and refused as AWS refuses it (an unknown access key id,
a wrong or missing session token, a credential scoped to another region or service, a timestamp
more than five minutes off, a signature that does not match); a ``Bearer`` is checked against the
Bedrock API key. ``expire_session_token(token)`` makes a session token expired (``ExpiredTokenException``).

Bodies are checked per model by ``bedrock_rules``. Answers: Nova Canvas / Titan
``{"images": [...], "error": null}``; Stability ``{"seeds", "finish_reasons", "images"}``. Errors
carry ``x-amzn-ErrorType`` and ``{"message": ...}``.

Faults, by ``Fault`` kind: ``rate_limited`` is a ThrottlingException; ``status(503)``
ServiceUnavailableException, ``status(408)`` ModelTimeoutException, ``status(403)``
AccessDeniedException (and the other statuses their AWS types); ``content_filter`` is Bedrock's
input filter (Nova/Titan: a 400 ValidationException "blocked by our content filters"; Stability: a
200 with ``finish_reasons: ["Filter reason: prompt"]``); ``moderation_denied`` its output filter
(Nova/Titan: a 200 whose ``error`` says every image was blocked; Stability: "Filter reason: output
image"). An expired session token as a one-off fault:
``Fault.status(403, {"message": EXPIRED_TOKEN_MESSAGE}, {"x-amzn-ErrorType": "ExpiredTokenException"})``.
"""

from __future__ import annotations

import base64
import hmac
import re
import time
from calendar import timegm
from typing import ClassVar, cast
from urllib.parse import unquote, urlencode

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from .bedrock_rules import MODELS, STABILITY_MODELS, BedrockError, Generation, parse_body, validation
from .emulator import AnswerMode, Emulator, Endpoint
from .forms import media_type
from .images import ImageFormat, noise_png, solid_image
from .recording import RecordedRequest
from .server import Response

_INVOKE = re.compile(r"^/model/([^/]+)/invoke/?$")
_AUTH = re.compile(
    r"^AWS4-HMAC-SHA256 Credential=(?P<key>[^/]+)/(?P<date>\d{8})/(?P<region>[^/]+)/(?P<service>[^/]+)/aws4_request,"
    r"\s*SignedHeaders=(?P<signed>[a-z0-9;-]+),\s*Signature=(?P<signature>[0-9a-f]{64})$"
)
_AMZ_DATE = "%Y%m%dT%H%M%SZ"
MAX_CLOCK_SKEW_SECONDS = 300
SIGNING_SERVICE = "bedrock"
_ERROR_TYPE_SUFFIX = ":http://internal.amazon.com/coral/com.amazon.bedrock/"

BLOCKED_MESSAGE = (
    "This request has been blocked by our content filters. Please adjust your text prompt to submit a new request."
)
ALL_BLOCKED = "All of the generated images have been blocked by our content filters."
EXPIRED_TOKEN_MESSAGE = "The security token included in the request is expired"
INVALID_TOKEN_MESSAGE = "The security token included in the request is invalid."
SIGNATURE_MISMATCH = (
    "The request signature we calculated does not match the signature you provided. Check your AWS Secret "
    "Access Key and signing method. Consult the service documentation for details."
)
_DEFAULT_ERRORS: dict[int, tuple[str, str]] = {
    400: ("ValidationException", "Malformed input request, please reformat your input and try again."),
    403: ("AccessDeniedException", "You don't have access to the model with the specified model ID."),
    404: ("ResourceNotFoundException", "Could not resolve the foundation model from the provided model identifier."),
    408: ("ModelTimeoutException", "Model has timed out in processing the request. Try your request again."),
    424: ("ModelErrorException", "The model failed to process the request."),
    429: ("ThrottlingException", "Too many requests, please wait before trying again."),
    500: ("InternalServerException", "The system encountered an unexpected error during processing. Try again."),
    503: ("ServiceUnavailableException", "Bedrock is unable to process your request."),
}


def error_response(status: int, error_type: str, message: str) -> Response:
    """An AWS restJson error: ``x-amzn-ErrorType`` (with the URI suffix AWS adds) and ``{"message"}``."""
    return Response.json(status, {"message": message}, headers=[("x-amzn-ErrorType", error_type + _ERROR_TYPE_SUFFIX)])


def _error(error: BedrockError) -> Response:
    return error_response(error.status, error.error_type, error.message)


class BedrockEmulator(Emulator):
    """Bedrock Runtime of one region on ``http://127.0.0.1:PORT`` (the base URL is the bare origin).

    ``api_key`` is the Bedrock API key accepted as a Bearer; ``access_key_id`` / ``secret_access_key``
    (and ``session_token`` for temporary credentials) a key pair SigV4 signatures are checked
    against (``add_key_pair`` adds more). With none of them, any (or no) authentication is accepted.
    """

    provider: ClassVar[str] = "bedrock"
    _malformed_body: ClassVar[bytes] = b'{"images": ["iVBORw0KGgoAAAANSUhEUgAA'

    def __init__(
        self,
        api_key: str | None = None,
        *,
        access_key_id: str | None = None,
        secret_access_key: str | None = None,
        session_token: str | None = None,
        region: str = "us-east-1",
        host: str = "127.0.0.1",
        port: int = 0,
        max_recorded: int = 1000,
    ) -> None:
        super().__init__(api_key, host=host, port=port, max_recorded=max_recorded)
        self.region = region
        # access key id -> (secret access key, session token or None)
        self._key_pairs: dict[str, tuple[str, str | None]] = {}
        self._expired_tokens: set[str] = set()
        if access_key_id is not None:
            self.add_key_pair(access_key_id, secret_access_key or "", session_token)

    def add_key_pair(self, access_key_id: str, secret_access_key: str, session_token: str | None = None) -> None:
        """Accepts SigV4 signatures by this key pair too (with ``session_token``: temporary credentials)."""
        self._key_pairs[access_key_id] = (secret_access_key, session_token)

    def expire_session_token(self, session_token: str, expired: bool = True) -> None:
        """Makes ``session_token`` expired (until called with False): AWS's ExpiredTokenException."""
        if expired:
            self._expired_tokens.add(session_token)
        else:
            self._expired_tokens.discard(session_token)

    def reset(self) -> None:
        """Clears faults, recorded requests and expired session tokens."""
        super().reset()
        self._expired_tokens.clear()

    def _new_request_id(self) -> str:
        raw = super()._new_request_id()
        return f"{raw[:8]}-{raw[8:12]}-{raw[12:16]}-{raw[16:20]}-{raw[20:32]}"

    def _with_common_headers(self, response: Response, request_id: str) -> Response:
        # AWS names the id x-amzn-RequestId; the base class's x-request-id is left out.
        headers = tuple((n, v) for n, v in response.headers if n.lower() != "x-request-id")
        present = {name.lower() for name, _ in headers}
        extra = () if "x-amzn-requestid" in present else (("x-amzn-RequestId", request_id),)
        return Response(response.status, headers + extra, response.body)

    # -- routing and errors ------------------------------------------------------------------------

    def _route(self, request: RecordedRequest) -> Endpoint | None:
        if request.method == "POST" and _INVOKE.match(request.path):
            return self._invoke
        return None

    def _not_found(self, request: RecordedRequest) -> Response:
        return error_response(404, "UnknownOperationException", "Unknown operation")

    def _error_response(self, status: int, request: RecordedRequest) -> Response:
        error_type, message = _DEFAULT_ERRORS.get(status, ("InternalServerException", f"HTTP {status}"))
        return error_response(status, error_type, message)

    def _rate_limited_response(self, request: RecordedRequest) -> Response:
        return self._error_response(429, request)

    def _moderation_denied(self, request: RecordedRequest, endpoint: Endpoint) -> Response:
        try:
            model = self._model(request)
        except BedrockError as error:
            return _error(error)
        if model in STABILITY_MODELS:
            return self._stability_filtered("Filter reason: output image")
        return Response.json(200, {"images": [], "error": ALL_BLOCKED})

    # -- the endpoint ------------------------------------------------------------------------------

    def _invoke(self, request: RecordedRequest, mode: AnswerMode) -> Response:
        try:
            self._authenticate(request)
            model = self._model(request)
            if media_type(request.headers.get("content-type")) != "application/json":
                raise validation("The provided Content-Type is not supported: it must be application/json.")
            generation = parse_body(model, request.json)
        except BedrockError as error:
            return _error(error)
        if mode.content_filtered:
            if model in STABILITY_MODELS:
                return self._stability_filtered("Filter reason: prompt")
            return _error(validation(BLOCKED_MESSAGE))
        images = [_b64(_image(generation, mode)) for _ in range(generation.count)]
        if model in STABILITY_MODELS:
            seed = generation.seed or 1234567890
            return Response.json(200, {"seeds": [seed], "finish_reasons": [None], "images": images})
        return Response.json(200, {"images": images, "error": None})

    def _stability_filtered(self, reason: str) -> Response:
        return Response.json(200, {"seeds": [1234567890], "finish_reasons": [reason], "images": [None]})

    def _model(self, request: RecordedRequest) -> str:
        match = _INVOKE.match(request.path)
        assert match is not None
        model = unquote(match.group(1))
        if model not in MODELS:
            raise validation("The provided model identifier is invalid.")
        return model

    # -- authentication ----------------------------------------------------------------------------

    def _authenticate(self, request: RecordedRequest) -> None:
        if self.api_key is None and not self._key_pairs:
            return
        authorization = request.headers.get("authorization", "").strip()
        if not authorization:
            raise BedrockError(403, "MissingAuthenticationTokenException", "Missing Authentication Token")
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() == "bearer":
            if self.api_key is None or not hmac.compare_digest(token.strip().encode(), self.api_key.encode()):
                raise BedrockError(403, "UnrecognizedClientException", INVALID_TOKEN_MESSAGE)
            return
        self._verify_signature(request, authorization)

    def _verify_signature(self, request: RecordedRequest, authorization: str) -> None:
        parsed = _AUTH.match(authorization)
        if parsed is None:
            raise BedrockError(
                403,
                "IncompleteSignatureException",
                "Authorization header requires 'Credential', 'Signature' and 'SignedHeaders' parameters.",
            )
        pair = self._key_pairs.get(parsed["key"])
        if pair is None:
            raise BedrockError(403, "UnrecognizedClientException", INVALID_TOKEN_MESSAGE)
        secret_access_key, session_token = pair
        if parsed["service"] != SIGNING_SERVICE:
            raise BedrockError(
                403,
                "InvalidSignatureException",
                f"Credential should be scoped to correct service: '{SIGNING_SERVICE}'.",
            )
        if parsed["region"] != self.region:
            raise BedrockError(403, "InvalidSignatureException", "Credential should be scoped to a valid region.")
        amz_date = request.headers.get("x-amz-date", "")
        try:
            signed_at = timegm(time.strptime(amz_date, _AMZ_DATE))
        except ValueError:
            raise BedrockError(
                403, "IncompleteSignatureException", "Authorization header requires existence of a valid X-Amz-Date."
            ) from None
        if abs(time.time() - signed_at) > MAX_CLOCK_SKEW_SECONDS or amz_date[:8] != parsed["date"]:
            raise BedrockError(403, "InvalidSignatureException", f"Signature expired: {amz_date} is out of range.")
        token = request.headers.get("x-amz-security-token")
        if (token is None) != (session_token is None) or (
            token is not None and session_token is not None and not hmac.compare_digest(token, session_token)
        ):
            raise BedrockError(403, "UnrecognizedClientException", INVALID_TOKEN_MESSAGE)
        if token is not None and token in self._expired_tokens:
            raise BedrockError(403, "ExpiredTokenException", EXPIRED_TOKEN_MESSAGE)
        signed = parsed["signed"].split(";")
        if "host" not in signed or any(name not in request.headers for name in signed):
            raise BedrockError(403, "InvalidSignatureException", SIGNATURE_MISMATCH)
        keys = Credentials(parsed["key"], secret_access_key, session_token)
        if not hmac.compare_digest(self._signature(request, signed, amz_date, keys), parsed["signature"]):
            raise BedrockError(403, "InvalidSignatureException", SIGNATURE_MISMATCH)

    def _signature(self, request: RecordedRequest, signed: list[str], amz_date: str, keys: Credentials) -> str:
        """The signature botocore computes for the request as received, with the emulator's key pair."""
        query = f"?{urlencode(sorted(request.query.items()))}" if request.query else ""
        url = f"http://{request.headers['host']}{request.path}{query}"
        received = AWSRequest(
            method=request.method, url=url, data=request.body, headers={name: request.headers[name] for name in signed}
        )
        received.context["timestamp"] = amz_date
        signer = SigV4Auth(keys, SIGNING_SERVICE, self.region)
        canonical = signer.canonical_request(received)
        signature: str = signer.signature(signer.string_to_sign(received, canonical), received)
        return signature


def _image(generation: Generation, mode: AnswerMode) -> bytes:
    fmt = cast(ImageFormat, generation.output_format)
    if mode.image_bytes is not None and fmt == "png":
        return noise_png(generation.width, generation.height, mode.image_bytes)
    return solid_image(generation.width, generation.height, fmt)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")
