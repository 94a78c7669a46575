"""Access tokens for Vertex AI from a service account key: signed by google-auth, exchanged once, cached.

The OAuth 2.0 JWT bearer flow (RFC 7523), as Google's libraries run it: google-auth loads the key
(``service_account.Credentials.from_service_account_info``) and signs the grant assertion
(``google.auth.jwt.encode``: issuer the account's e-mail, audience Google's token endpoint, scope
cloud-platform, one hour); the assertion is posted to the key's ``token_uri`` as a form, and the
answer's ``access_token`` is used until ``REFRESH_MARGIN_SECONDS`` before its ``expires_in`` runs out.

Why the exchange itself does not go through ``Credentials.refresh``: that call is blocking, retries
a failed token request up to three times with sleeps (the gateway owns retries: one layer only), and
would use its own HTTP transport, around the SSRF guard. Here the exchange is one bounded request on
the adapter's own client, which the SSRF guard checks like any other call.

The token URI is an upstream too, and the assertion posted there is a credential (anyone holding it
can exchange it at Google within its hour). So it is sent only to Google's public token host over
https, or to a host the operator listed on IMAGEGW_ALLOWED_UPSTREAM_HOSTS; any other ``token_uri``
is refused before any call.

The hot path is a dictionary look-up: tokens are cached per account (the credential's fingerprint;
no secret is a key), the key is parsed once per account (off the event loop: loading an RSA key
takes milliseconds), and one refresh per account is in flight at a time; callers arriving meanwhile
wait for it (single flight). A 401 from Vertex drops the token it refused, so the next call fetches
a fresh one.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import json
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlencode, urlsplit

from google.auth import jwt
from google.auth.crypt import Signer
from google.oauth2 import service_account
from yarl import URL

from imagegateway_server.domain.credentials import Credential
from imagegateway_server.domain.errors import ErrorKind, ProviderError
from imagegateway_server.providers.kit.bodies import json_object
from imagegateway_server.providers.kit.errors import Secrets, provider_error, upstream_bug
from imagegateway_server.providers.kit.status import error_body_excerpt, parse_retry_after
from imagegateway_server.providers.kit.transport import UpstreamClient
from imagegateway_server.providers.vertex_ai import PROVIDER

SERVICE_ACCOUNT_JSON = "vertex_service_account_json"
SCOPE = "https://www.googleapis.com/auth/cloud-platform"
GOOGLE_TOKEN_URI = "https://oauth2.googleapis.com/token"
GOOGLE_TOKEN_HOST = "oauth2.googleapis.com"
JWT_GRANT_TYPE = "urn:ietf:params:oauth:grant-type:jwt-bearer"
ASSERTION_LIFETIME_SECONDS = 3600
# google-auth refreshes 3 min 45 s before expiry; five minutes keeps a slow image call inside the token's life.
REFRESH_MARGIN_SECONDS = 300.0
DEFAULT_EXPIRES_IN = 3600
MAX_ACCOUNTS = 4096
_TOKEN_URI_PARAM = f"{SERVICE_ACCOUNT_JSON}.token_uri"


class ServiceAccountError(ValueError):
    """A service account key that cannot be used: ``member`` names the part ("" for the whole document)."""

    def __init__(self, member: str, message: str) -> None:
        super().__init__(message)
        self.member = member
        self.message = message


@dataclasses.dataclass(frozen=True, slots=True)
class ServiceAccountKey:
    """The parts of a service account key the flow uses. Never printed: the private key is in ``signer``."""

    client_email: str
    token_uri: str
    signer: Signer = dataclasses.field(repr=False)
    private_key: str = dataclasses.field(repr=False)


def read_key_document(text: str) -> dict[str, Any]:
    """The key's JSON members, checked for what the flow needs; ServiceAccountError naming the member.

    Cheap (no key loading): it runs when a config or virtual key is saved and for Portkey's header on
    every bare-provider request. Messages never quote a value.
    """
    try:
        document = json.loads(text)
    except ValueError:
        raise ServiceAccountError("", "must be a service account key in JSON") from None
    if not isinstance(document, dict):
        raise ServiceAccountError("", "must be a service account key (a JSON object)")
    kind = document.get("type", "service_account")
    if kind != "service_account":
        raise ServiceAccountError("type", "must be service_account")
    for member in ("client_email", "private_key"):
        value = document.get(member)
        if not isinstance(value, str) or not value.strip():
            raise ServiceAccountError(member, "is required in a service account key")
    if "PRIVATE KEY-----" not in document["private_key"]:
        raise ServiceAccountError("private_key", "must be a PEM private key")
    token_uri = document.get("token_uri", GOOGLE_TOKEN_URI)
    if not isinstance(token_uri, str) or not _is_http_url(token_uri):
        raise ServiceAccountError("token_uri", "must be an http(s) URL with a host, without credentials or a query")
    return document


@functools.lru_cache(maxsize=256)
def key_document_problem(text: str) -> tuple[str, str] | None:
    """The schema's check of the field (``CredentialField.check``): (member, what is wrong), or None."""
    try:
        read_key_document(text)
    except ServiceAccountError as exc:
        return exc.member, exc.message
    return None


def load_key(text: str) -> ServiceAccountKey:
    """The key with its private key loaded by google-auth (milliseconds of CPU: call it off the loop)."""
    document = read_key_document(text)
    info = {**document, "token_uri": document.get("token_uri", GOOGLE_TOKEN_URI)}
    try:
        # google-auth's classmethods carry no annotations.
        credentials = service_account.Credentials.from_service_account_info(  # type: ignore[no-untyped-call]
            info, scopes=[SCOPE]
        )
    except (ValueError, TypeError):  # google-auth's MalformedError is a ValueError; messages may quote the key
        raise ServiceAccountError("private_key", "could not be loaded as an RSA private key") from None
    return ServiceAccountKey(
        client_email=str(credentials.service_account_email),
        token_uri=str(info["token_uri"]),
        signer=credentials.signer,
        private_key=str(document["private_key"]),
    )


def _is_http_url(url: str) -> bool:
    # Plain http passes here; only a host the operator listed is ever sent one (``check_token_uri``).
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError:
        return False
    return (
        parts.scheme in ("http", "https")
        and bool(parts.hostname)
        and parts.username is None
        and "@" not in parts.netloc
        and not parts.query
        and not parts.fragment
        and not any(c.isspace() for c in url)
    )


@dataclasses.dataclass(frozen=True, slots=True)
class _Token:
    value: str = dataclasses.field(repr=False)
    expires_at: float


class AccessTokens:
    """Cached access tokens per service account, refreshed one at a time per account over ``client``.

    ``clock`` is wall-clock seconds (the assertion's ``iat`` and the token's life).
    """

    def __init__(self, client: UpstreamClient, *, clock: Callable[[], float] = time.time) -> None:
        self._client = client
        self._clock = clock
        self._keys: OrderedDict[str, ServiceAccountKey] = OrderedDict()
        self._tokens: OrderedDict[str, _Token] = OrderedDict()
        self._refreshing: dict[str, asyncio.Task[_Token]] = {}

    async def token(self, credential: Credential, *, attempt_seconds: float | None) -> str:
        """An access token for the credential's service account: the cached one, or a fresh one."""
        account = credential.fingerprint()
        cached = self._tokens.get(account)
        if cached is not None and cached.expires_at - REFRESH_MARGIN_SECONDS > self._clock():
            return cached.value
        task = self._refreshing.get(account)
        if task is None:
            task = asyncio.ensure_future(self._refresh(account, credential, attempt_seconds))
            self._refreshing[account] = task
            task.add_done_callback(functools.partial(self._refreshed, account))
        # Shielded: a caller that leaves does not cancel the refresh the others wait for.
        return (await asyncio.shield(task)).value

    def forget(self, credential: Credential, token: str) -> None:
        """Drops ``token`` (the API refused it) unless a newer one already replaced it."""
        account = credential.fingerprint()
        cached = self._tokens.get(account)
        if cached is not None and cached.value == token:
            del self._tokens[account]

    def secrets_of(self, credential: Credential) -> tuple[str, ...]:
        """What to scrub besides the credential's own secrets: the private key on its own, once loaded."""
        key = self._keys.get(credential.fingerprint())
        return (key.private_key,) if key is not None else ()

    def _refreshed(self, account: str, task: asyncio.Task[_Token]) -> None:
        if self._refreshing.get(account) is task:
            del self._refreshing[account]
        if not task.cancelled():
            task.exception()  # retrieved here, so a refresh every caller left is not reported as lost

    async def _refresh(self, account: str, credential: Credential, attempt_seconds: float | None) -> _Token:
        key = await self._key(account, credential)
        token = await self._exchange(key, (*credential.secret_values(), key.private_key), attempt_seconds)
        self._tokens[account] = token
        self._tokens.move_to_end(account)
        while len(self._tokens) > MAX_ACCOUNTS:
            self._tokens.popitem(last=False)
        return token

    async def _key(self, account: str, credential: Credential) -> ServiceAccountKey:
        key = self._keys.get(account)
        if key is not None:
            self._keys.move_to_end(account)
            return key
        text = credential.value(SERVICE_ACCOUNT_JSON) or ""
        try:
            key = await asyncio.to_thread(load_key, text)
        except ServiceAccountError as exc:
            member = f"{SERVICE_ACCOUNT_JSON}.{exc.member}" if exc.member else SERVICE_ACCOUNT_JSON
            raise ProviderError(
                ErrorKind.AUTHENTICATION,
                f"{PROVIDER}: {member} {exc.message}",
                provider=PROVIDER,
                status_code=401,
                code="invalid_service_account",
                param=member,
            ) from None
        self._keys[account] = key
        while len(self._keys) > MAX_ACCOUNTS:
            self._keys.popitem(last=False)
        return key

    def check_token_uri(self, token_uri: str) -> None:
        """Refuses a token URI that is neither Google's token host over https nor listed by the operator."""
        parts = urlsplit(token_uri)
        google = (
            parts.scheme == "https"
            and (parts.hostname or "").lower() == GOOGLE_TOKEN_HOST
            and parts.port
            in (
                None,
                443,
            )
        )
        if not google and not _allow_listed(self._client, token_uri):
            raise ProviderError(
                ErrorKind.BAD_REQUEST,
                f"{PROVIDER}: {_TOKEN_URI_PARAM} must be Google's token endpoint (https://{GOOGLE_TOKEN_HOST}) "
                "or on a host listed on IMAGEGW_ALLOWED_UPSTREAM_HOSTS; no call was made",
                provider=PROVIDER,
                status_code=400,
                code="token_uri_not_allowed",
                param=_TOKEN_URI_PARAM,
            )

    async def _exchange(self, key: ServiceAccountKey, secret: Secrets, attempt_seconds: float | None) -> _Token:
        self.check_token_uri(key.token_uri)
        now = self._clock()
        claims = {
            "iss": key.client_email,
            "scope": SCOPE,
            "aud": GOOGLE_TOKEN_URI,  # what Google's token endpoint expects, as google-auth sends it
            "iat": int(now),
            "exp": int(now) + ASSERTION_LIFETIME_SECONDS,
        }
        assertion = jwt.encode(key.signer, claims).decode("ascii")  # type: ignore[no-untyped-call]
        secret = (*((secret,) if isinstance(secret, str) else secret), assertion)
        response = await self._client.send(
            "POST",
            key.token_uri,
            provider=PROVIDER,
            attempt_seconds=attempt_seconds,
            headers={"Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"},
            content=urlencode({"grant_type": JWT_GRANT_TYPE, "assertion": assertion}).encode("ascii"),
        )
        payload = json_object(response.body)
        if response.status_code != 200:
            raise _token_error(response.status_code, payload, response.body, response.headers, secret)
        value = payload.get("access_token") if payload is not None else None
        if not isinstance(value, str) or not value:
            raise upstream_bug(
                PROVIDER, f"{PROVIDER}: the token endpoint answered without an access_token", secret=secret
            )
        expires_in = payload.get("expires_in", DEFAULT_EXPIRES_IN) if payload is not None else DEFAULT_EXPIRES_IN
        if isinstance(expires_in, bool) or not isinstance(expires_in, int | float) or expires_in <= 0:
            expires_in = DEFAULT_EXPIRES_IN
        return _Token(value, now + float(expires_in))


def _token_error(
    status: int, payload: dict[str, Any] | None, body: bytes, headers: Mapping[str, str], secret: Secrets
) -> ProviderError:
    """A refused token request: OAuth's ``{"error", "error_description"}``; 400/401 is the key's fault."""
    error = payload.get("error") if payload is not None else None
    description = payload.get("error_description") if payload is not None else None
    said = ": ".join(part for part in (error, description) if isinstance(part, str)) or error_body_excerpt(body)
    answered = status
    if status in (400, 401, 403):
        kind, code = ErrorKind.AUTHENTICATION, (error if isinstance(error, str) else "invalid_grant")
        answered = 401
    elif status == 429:
        kind, code = ErrorKind.RATE_LIMITED, "rate_limited"
    elif status >= 500:
        kind, code = ErrorKind.UNAVAILABLE, "token_endpoint_unavailable"
    else:
        kind, code = ErrorKind.UPSTREAM_BUG, "unexpected_status"
        answered = 502
    return provider_error(
        PROVIDER,
        kind,
        f"{PROVIDER}: the service account's token request failed with HTTP {status}: {said}",
        secret=secret,
        status_code=answered,
        code=code,
        retry_after=parse_retry_after(headers),
    )


def _allow_listed(client: UpstreamClient, url: str) -> bool:
    """Whether the operator listed ``url``'s host on IMAGEGW_ALLOWED_UPSTREAM_HOSTS (False when unparsable)."""
    try:
        return client.is_allow_listed(URL(url))
    except ValueError:
        return False
