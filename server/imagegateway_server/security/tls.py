"""TLS for the public ports: gRPC over TLS and the REST shim over HTTPS, optionally mutual.

``ServerTls`` is read once at start from IMAGEGW_TLS_CERT_FILE / IMAGEGW_TLS_KEY_FILE (and
IMAGEGW_TLS_CLIENT_CA_FILE, which makes both ports require a client certificate that CA signed)
and checked there: a missing file, a key that does not match the certificate or a half-given
pair stops the process with one clear line rather than failing the first handshake. The metrics
port stays plain HTTP: it is meant for a private scrape network. (Clients build their channel
credentials with the client library's ``imagegateway.tls_credentials``.)
"""

from __future__ import annotations

import dataclasses
import ssl
from pathlib import Path
from typing import Any

import grpc


def _read(path: str, what: str) -> bytes:
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise ValueError(f"{what} {path}: {exc.strerror or exc}") from None
    if b"-----BEGIN " not in data:
        raise ValueError(f"{what} {path}: not a PEM file")
    return data


@dataclasses.dataclass(frozen=True, repr=False)
class ServerTls:
    """The certificate, key and optional client CA the gateway serves with."""

    cert_file: str
    key_file: str
    client_ca_file: str
    cert_chain: bytes
    private_key: bytes
    client_ca: bytes | None

    def __repr__(self) -> str:
        # Never the key, even in a crash report.
        return f"ServerTls(cert_file={self.cert_file!r}, client_ca_file={self.client_ca_file!r})"

    @classmethod
    def from_files(cls, cert_file: str, key_file: str, client_ca_file: str = "") -> ServerTls | None:
        """None when TLS is off (no files given); ValueError naming the setting when misconfigured."""
        if not cert_file and not key_file:
            if client_ca_file:
                raise ValueError("IMAGEGW_TLS_CLIENT_CA_FILE needs IMAGEGW_TLS_CERT_FILE and IMAGEGW_TLS_KEY_FILE")
            return None
        if not cert_file or not key_file:
            raise ValueError("IMAGEGW_TLS_CERT_FILE and IMAGEGW_TLS_KEY_FILE must be set together")
        cert_chain = _read(cert_file, "IMAGEGW_TLS_CERT_FILE")
        private_key = _read(key_file, "IMAGEGW_TLS_KEY_FILE")
        client_ca = _read(client_ca_file, "IMAGEGW_TLS_CLIENT_CA_FILE") if client_ca_file else None
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        try:
            context.load_cert_chain(cert_file, key_file)
            if client_ca_file:
                context.load_verify_locations(cafile=client_ca_file)
        except ssl.SSLError as exc:
            raise ValueError(f"the TLS certificate, key or client CA does not load: {exc.reason or exc}") from None
        return cls(cert_file, key_file, client_ca_file, cert_chain, private_key, client_ca)

    @property
    def mutual(self) -> bool:
        """Whether clients must present a certificate."""
        return self.client_ca is not None

    def grpc_credentials(self) -> grpc.ServerCredentials:
        return grpc.ssl_server_credentials(
            [(self.private_key, self.cert_chain)],
            root_certificates=self.client_ca,
            require_client_auth=self.mutual,
        )

    def uvicorn_options(self) -> dict[str, Any]:
        """Keyword arguments for ``uvicorn.Config``."""
        options: dict[str, Any] = {"ssl_certfile": self.cert_file, "ssl_keyfile": self.key_file}
        if self.mutual:
            options.update(ssl_ca_certs=self.client_ca_file, ssl_cert_reqs=ssl.CERT_REQUIRED)
        return options
