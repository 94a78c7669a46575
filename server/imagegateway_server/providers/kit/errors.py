"""Building the ProviderErrors adapters raise, with the API key scrubbed from every message.

``redact`` removes the credential's secrets (and anything shaped like an API key) from text that came from upstream;
``provider_error`` applies it to a classified error; ``upstream_bug`` is the 502 for an answer that
is not what the provider documents; ``refuse_parameter`` is the 400 naming a request parameter a
model cannot take, and ``unserved_model`` the 400 for a model the provider's folder does not
serve, both raised before any HTTP call.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from imagegateway_server.domain.errors import ErrorKind, ProviderError

_KEY_LIKE = re.compile(r"\b(?:sk|pk|rk|sess)-[A-Za-z0-9_\-\*\.]{4,}")
_MIN_REDACTED_SECRET = 4
_MASK = "***"  # shorter than any redacted secret

# The secrets to scrub: one, or every secret value of a credential (``Credential.secret_values()``).
Secrets = str | tuple[str, ...]


def redact(text: str, secret: Secrets) -> str:
    """Removes every secret, and anything shaped like an API key, from an upstream message."""
    text = _KEY_LIKE.sub(_MASK, text)
    # Longest first, so a secret that contains another is removed whole.
    for one in sorted((secret,) if isinstance(secret, str) else secret, key=len, reverse=True):
        if len(one) >= _MIN_REDACTED_SECRET:
            # Repeat: a replacement could complete another occurrence; each pass shortens the text.
            while one in text:
                text = text.replace(one, _MASK)
    return text


def provider_error(
    provider: str,
    kind: ErrorKind,
    message: str,
    *,
    secret: Secrets,
    status_code: int | None = None,
    code: str | None = None,
    param: str | None = None,
    retry_after: float | None = None,
) -> ProviderError:
    """Builds a ProviderError whose message has been scrubbed of the secrets."""
    return ProviderError(
        kind,
        redact(message, secret),
        provider=provider,
        status_code=status_code,
        code=code,
        param=param,
        retry_after=retry_after,
    )


def upstream_bug(provider: str, message: str, *, secret: Secrets) -> ProviderError:
    """UPSTREAM_BUG (502, ``malformed_response``): the provider answered, but not as it documents."""
    return provider_error(
        provider, ErrorKind.UPSTREAM_BUG, message, secret=secret, status_code=502, code="malformed_response"
    )


def refuse_parameter(provider: str, param: str, message: str, code: str = "invalid_value") -> ProviderError:
    """BAD_REQUEST (400) naming ``param``: ``"{provider}: parameter '{param}' {message}"``."""
    return ProviderError(
        ErrorKind.BAD_REQUEST,
        f"{provider}: parameter {param!r} {message}",
        provider=provider,
        status_code=400,
        code=code,
        param=param,
    )


def unserved_model(provider: str, model: str, family: str, known: Iterable[str]) -> ProviderError:
    """BAD_REQUEST (400) naming ``model``: not a ``family`` model this provider serves, with the ``known`` ones."""
    return ProviderError(
        ErrorKind.BAD_REQUEST,
        f"{provider}: model {model!r} is not a {family} model served here (known: {', '.join(known)})",
        provider=provider,
        status_code=400,
        code="invalid_value",
        param="model",
    )
