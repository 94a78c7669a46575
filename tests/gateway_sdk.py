"""Test helper: the OpenAI SDK as a caller of the test gateway's REST shim, and the checks the provider
integration tests make of what it answers."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from typing import Any

import openai

from tests.harness import GatewayThread

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
HTTP_TIMEOUT = 30.0


def sdk(gateway: GatewayThread, key: str, **headers: str) -> openai.OpenAI:
    """The OpenAI SDK on ``gateway``'s REST shim with gateway key ``key`` and Portkey's ``headers``; no retries."""
    return openai.OpenAI(
        base_url=gateway.rest_base_url,
        api_key="sk-unused-by-the-gateway",  # the SDK always sends one: Portkey's "REDUNDANT"
        max_retries=0,
        timeout=HTTP_TIMEOUT,
        default_headers={"x-portkey-api-key": key, **headers},
    )


def unique(prefix: str) -> str:
    """A name no other test in the session's gateway uses."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def secret_check(secrets: Iterable[str], what: str = "a secret") -> Callable[[str, Any], None]:
    """An ``assert_no_secret(where, value)`` that fails when any of ``secrets`` is in ``value`` (or its repr)."""
    kept = tuple(secrets)

    def assert_no_secret(where: str, value: Any) -> None:
        text = value if isinstance(value, str) else repr(value)
        for secret in kept:
            assert secret not in text, f"{what} appeared in {where}"

    return assert_no_secret
