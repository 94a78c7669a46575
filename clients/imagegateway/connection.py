"""What the sync and asyncio clients share about reaching a gateway.

The target and API key (arguments first, then $IMAGEGW_SERVER and $IMAGEGW_API_KEY), the
``authorization: Bearer`` metadata sent with every call, the per-method default deadlines, the
message-size options large enough for images, and TLS channel credentials built from PEM files.
"""

from __future__ import annotations

import os
from pathlib import Path

import grpc

DEFAULT_TARGET = "127.0.0.1:50051"
IMAGE_TIMEOUT = 300.0  # seconds; image calls wait on providers and fallbacks
ADMIN_TIMEOUT = 10.0  # seconds; admin calls only touch the store
DEFAULT_MAX_MESSAGE_BYTES = 64 * 1024 * 1024


class ClientBase:
    """Settings and per-call metadata shared by both clients; each adds its own channel and stub."""

    def __init__(
        self,
        target: str | None,
        api_key: str | None,
        timeout: float | None,
        max_message_bytes: int,
    ) -> None:
        self.target = target or os.environ.get("IMAGEGW_SERVER") or DEFAULT_TARGET
        self._api_key = api_key if api_key is not None else os.environ.get("IMAGEGW_API_KEY")
        self._timeout = timeout
        self.max_message_bytes = max_message_bytes
        self._options = [
            ("grpc.max_send_message_length", max_message_bytes),
            ("grpc.max_receive_message_length", max_message_bytes),
        ]

    @property
    def has_api_key(self) -> bool:
        return bool(self._api_key)

    def set_api_key(self, api_key: str | None) -> None:
        """Replaces the gateway API key; later calls use the new one (in-flight calls keep theirs)."""
        self._api_key = api_key

    def _metadata(self) -> tuple[tuple[str, str], ...]:
        return (("authorization", f"Bearer {self._api_key}"),) if self._api_key else ()

    def _deadline(self, timeout: float | None, default: float) -> float:
        """The call's own timeout, else the client's, else the method's default."""
        if timeout is not None:
            return timeout
        return self._timeout if self._timeout is not None else default


class CredentialsFileError(ValueError):
    """A TLS file that cannot be read or is not PEM. ``parameter`` names the argument of
    ``tls_credentials`` it was given as (``ca_file``, ``cert_file`` or ``key_file``)."""

    def __init__(self, parameter: str, path: str, reason: str) -> None:
        super().__init__(f"{parameter} {path}: {reason}")
        self.parameter = parameter
        self.path = path
        self.reason = reason


def _read_pem(parameter: str, path: str) -> bytes:
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise CredentialsFileError(parameter, path, str(exc.strerror or exc)) from None
    if b"-----BEGIN " not in data:
        raise CredentialsFileError(parameter, path, "not a PEM file")
    return data


def tls_credentials(
    ca_file: str | None = None, cert_file: str | None = None, key_file: str | None = None
) -> grpc.ChannelCredentials:
    """Channel credentials for a gateway that serves TLS (pass them as ``credentials=``).

    Trusts the PEM CA bundle ``ca_file``, or the system roots without one; presents the client
    certificate ``cert_file`` with its key ``key_file`` for mutual TLS (both or neither). The files
    are read now, so a missing or non-PEM file raises ``CredentialsFileError`` here, not at the
    first call.
    """
    if bool(cert_file) != bool(key_file):
        raise ValueError("cert_file and key_file must be given together")
    return grpc.ssl_channel_credentials(
        root_certificates=_read_pem("ca_file", ca_file) if ca_file else None,
        private_key=_read_pem("key_file", key_file) if key_file else None,
        certificate_chain=_read_pem("cert_file", cert_file) if cert_file else None,
    )
