"""TLS on the public ports: gRPC over TLS, the REST shim over HTTPS, and mutual TLS.

Certificates are made at test time (``tests.certificates``): a CA, a server certificate for
127.0.0.1 and localhost, a client certificate from that CA and one from a CA the gateway does
not trust.
"""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from pathlib import Path

import grpc
import httpx
import pytest

from imagegateway import ImageGatewayClient, UnavailableError
from imagegateway_server.cli import main
from imagegateway_server.security.tls import ServerTls
from tests.certificates import Issued, TestCA
from tests.harness import GatewayThread, running_gateway

TIMEOUT = 30.0


class Material:
    def __init__(self, directory: Path) -> None:
        self.ca = TestCA(directory / "ca")
        self.server = self.ca.issue("gateway", dns=("localhost",), ips=("127.0.0.1",))
        self.client = self.ca.issue("client", client=True)
        self.stranger = TestCA(directory / "other-ca", "Untrusted CA").issue("stranger", client=True)

    def https_context(self, client: Issued | None = None) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=str(self.ca.cert_file))
        if client is not None:
            context.load_cert_chain(client.cert_file, client.key_file)
        return context

    def grpc_credentials(self, client: Issued | None = None) -> grpc.ChannelCredentials:
        return grpc.ssl_channel_credentials(
            root_certificates=self.ca.cert_pem,
            private_key=client.key_pem if client else None,
            certificate_chain=client.cert_pem if client else None,
        )


@pytest.fixture(scope="module")
def material(tmp_path_factory: pytest.TempPathFactory) -> Material:
    return Material(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="module")
def tls_gateway(material: Material, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayThread]:
    with running_gateway(
        tmp_path_factory.mktemp("tls-gateway"),
        tls_cert_file=str(material.server.cert_file),
        tls_key_file=str(material.server.key_file),
    ) as gateway:
        yield gateway


@pytest.fixture(scope="module")
def mtls_gateway(material: Material, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayThread]:
    with running_gateway(
        tmp_path_factory.mktemp("mtls-gateway"),
        tls_cert_file=str(material.server.cert_file),
        tls_key_file=str(material.server.key_file),
        tls_client_ca_file=str(material.ca.cert_file),
    ) as gateway:
        yield gateway


def https_url(gateway: GatewayThread, path: str = "/health") -> str:
    return f"https://127.0.0.1:{gateway.process.http_port}{path}"


# -- TLS --------------------------------------------------------------------------------------------


def test_grpc_over_tls_with_the_ca(tls_gateway: GatewayThread, material: Material) -> None:
    with ImageGatewayClient(
        tls_gateway.grpc_target, api_key=tls_gateway.admin_key, credentials=material.grpc_credentials()
    ) as client:
        client.list_configs()
    # The certificate names localhost too.
    target = f"localhost:{tls_gateway.process.grpc_port}"
    with ImageGatewayClient(target, api_key=tls_gateway.admin_key, credentials=material.grpc_credentials()) as client:
        client.list_api_keys()


def test_plaintext_grpc_is_refused_by_a_tls_gateway(tls_gateway: GatewayThread) -> None:
    with ImageGatewayClient(tls_gateway.grpc_target, api_key=tls_gateway.admin_key, timeout=5) as client:
        with pytest.raises(UnavailableError):
            client.list_configs()


def test_grpc_client_that_does_not_trust_the_ca_is_refused(tls_gateway: GatewayThread) -> None:
    with ImageGatewayClient(
        tls_gateway.grpc_target, api_key=tls_gateway.admin_key, timeout=5, credentials=grpc.ssl_channel_credentials()
    ) as client:
        with pytest.raises(UnavailableError):
            client.list_configs()


def test_https_with_the_ca_serves_the_shim(tls_gateway: GatewayThread, material: Material) -> None:
    response = httpx.get(https_url(tls_gateway), verify=material.https_context(), timeout=TIMEOUT)
    assert response.status_code == 200
    refused = httpx.post(
        https_url(tls_gateway, "/v1/images/generations"),
        json={"prompt": "x"},
        verify=material.https_context(),
        timeout=TIMEOUT,
    )
    assert refused.status_code == 401  # TLS is transport security, not authentication


def test_https_without_trusting_the_ca_fails_verification_and_plain_http_is_not_served(
    tls_gateway: GatewayThread,
) -> None:
    with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
        httpx.get(https_url(tls_gateway), timeout=TIMEOUT)
    with pytest.raises(httpx.TransportError):
        httpx.get(f"http://127.0.0.1:{tls_gateway.process.http_port}/health", timeout=TIMEOUT)


def test_cli_connects_with_tls_ca(
    tls_gateway: GatewayThread, material: Material, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        [
            "--server",
            tls_gateway.grpc_target,
            "--api-key",
            tls_gateway.admin_key,
            "--tls-ca",
            str(material.ca.cert_file),
            "api-keys",
            "list",
            "-o",
            "json",
        ]
    )
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "bootstrap admin" in out
    code = main(["--server", tls_gateway.grpc_target, "--api-key", tls_gateway.admin_key, "api-keys", "list"])
    assert code == 1
    assert "UNAVAILABLE" in capsys.readouterr().err


# -- mutual TLS -------------------------------------------------------------------------------------


def test_mtls_grpc_accepts_a_client_certificate_from_the_ca(mtls_gateway: GatewayThread, material: Material) -> None:
    with ImageGatewayClient(
        mtls_gateway.grpc_target, api_key=mtls_gateway.admin_key, credentials=material.grpc_credentials(material.client)
    ) as client:
        client.list_configs()


@pytest.mark.parametrize("who", ["no certificate", "a certificate from another CA"])
def test_mtls_grpc_refuses_a_client_without_a_trusted_certificate(
    mtls_gateway: GatewayThread, material: Material, who: str
) -> None:
    client_cert = None if who == "no certificate" else material.stranger
    with ImageGatewayClient(
        mtls_gateway.grpc_target,
        api_key=mtls_gateway.admin_key,
        timeout=5,
        credentials=material.grpc_credentials(client_cert),
    ) as client:
        with pytest.raises(UnavailableError):
            client.list_configs()


def test_mtls_https_needs_a_client_certificate(mtls_gateway: GatewayThread, material: Material) -> None:
    ok = httpx.get(https_url(mtls_gateway), verify=material.https_context(material.client), timeout=TIMEOUT)
    assert ok.status_code == 200
    for client_cert in (None, material.stranger):
        with pytest.raises(httpx.TransportError):
            httpx.get(https_url(mtls_gateway), verify=material.https_context(client_cert), timeout=TIMEOUT)


def test_cli_mtls_flags(mtls_gateway: GatewayThread, material: Material, capsys: pytest.CaptureFixture[str]) -> None:
    base = [
        "--server",
        mtls_gateway.grpc_target,
        "--api-key",
        mtls_gateway.admin_key,
        "--tls-ca",
        str(material.ca.cert_file),
    ]
    assert (
        main(
            [
                *base,
                "--tls-cert",
                str(material.client.cert_file),
                "--tls-key",
                str(material.client.key_file),
                "configs",
                "list",
            ]
        )
        == 0
    )
    assert main([*base, "configs", "list"]) == 1
    assert "UNAVAILABLE" in capsys.readouterr().err
    assert main([*base, "--tls-cert", str(material.client.cert_file), "configs", "list"]) == 2
    assert "--tls-cert and --tls-key" in capsys.readouterr().err


# -- misconfiguration stops the start with one clear line -------------------------------------------


def test_tls_settings_are_checked_at_start(material: Material, tmp_path: Path) -> None:
    cert, key = str(material.server.cert_file), str(material.server.key_file)
    assert ServerTls.from_files("", "") is None
    with pytest.raises(ValueError, match="must be set together"):
        ServerTls.from_files(cert, "")
    with pytest.raises(ValueError, match="IMAGEGW_TLS_CLIENT_CA_FILE needs"):
        ServerTls.from_files("", "", str(material.ca.cert_file))
    with pytest.raises(ValueError, match=r"IMAGEGW_TLS_KEY_FILE .*missing\.key"):
        ServerTls.from_files(cert, str(tmp_path / "missing.key"))
    not_pem = tmp_path / "not.pem"
    not_pem.write_text("hello")
    with pytest.raises(ValueError, match="not a PEM file"):
        ServerTls.from_files(cert, str(not_pem))
    with pytest.raises(ValueError, match="does not load"):
        ServerTls.from_files(cert, str(material.client.key_file))  # a key that is not the certificate's
    loaded = ServerTls.from_files(cert, key, str(material.ca.cert_file))
    assert loaded is not None and loaded.mutual
    assert "PRIVATE KEY" not in repr(loaded)
