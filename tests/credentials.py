"""Test helper: the one-secret credential most tests need, built the way the gateway builds it."""

from __future__ import annotations

from imagegateway_server.domain.credentials import API_KEY, Credential


def api_key(secret: str, provider: str = "openai") -> Credential:
    """A credential of ``provider`` made of one secret ``api_key``."""
    return Credential.of(provider, {API_KEY: secret}, {API_KEY})
