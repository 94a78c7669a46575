"""Rotating the master key end to end, with no downtime: real gateways, the real CLI, the emulators.

Old key -> gateway restarted with the new key plus the old one as previous -> ``imagegw admin
rotate-master-key`` while that gateway keeps serving -> gateway restarted with the new key only:
every virtual key and every config secret written under the old key still reaches the provider.
"""

from __future__ import annotations

import base64
import json
import secrets
import threading
from pathlib import Path

import pytest

from imagegateway import ImageGatewayClient
from imagegateway_server.cli import main
from tests.conftest import OPENAI_SECRET, Emulators
from tests.harness import running_gateway

OLD = base64.urlsafe_b64encode(secrets.token_bytes(32)).decode().rstrip("=")
NEW = base64.urlsafe_b64encode(secrets.token_bytes(32)).decode().rstrip("=")


def generate_through(client: ImageGatewayClient, **routing: str) -> str:
    response = client.generate_image(prompt="a rotating key", model="dall-e-2", **routing)  # type: ignore[arg-type]
    assert response.images and response.images[0].data
    return response.outcome.provider


def test_rotation_runs_beside_a_serving_gateway_and_the_old_key_can_then_go(
    tmp_path: Path, emulators: Emulators, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    data_dir = tmp_path / "data"
    openai_url = emulators.openai.base_url
    with running_gateway(data_dir, master_key=OLD) as old:
        with ImageGatewayClient(old.grpc_target, api_key=old.admin_key) as admin:
            admin.create_virtual_key("under-old", "openai", OPENAI_SECRET, base_url=openai_url)
            config = admin.create_config(
                "inline-key", {"provider": "openai", "api_key": OPENAI_SECRET, "custom_host": openai_url}
            )

    with running_gateway(data_dir, master_key=NEW, previous_master_keys=(OLD,)) as rotating:
        with ImageGatewayClient(rotating.grpc_target, api_key=rotating.admin_key) as admin:
            assert generate_through(admin, virtual_key="under-old") == "openai"
            admin.create_virtual_key("under-new", "openai", OPENAI_SECRET, base_url=openai_url)

            # Traffic keeps flowing through the rotation; every request must succeed.
            stop, failures, served = threading.Event(), [], [0]

            def traffic() -> None:
                with ImageGatewayClient(rotating.grpc_target, api_key=rotating.admin_key) as caller:
                    while not stop.is_set():
                        try:
                            generate_through(caller, config_id=config.id)
                            served[0] += 1
                        except Exception as exc:  # any failure fails the test below
                            failures.append(exc)

            worker = threading.Thread(target=traffic)
            worker.start()
            try:
                monkeypatch.setenv("IMAGEGW_DATA_DIR", str(data_dir))
                monkeypatch.setenv("IMAGEGW_MASTER_KEY", NEW)
                monkeypatch.setenv("IMAGEGW_PREVIOUS_MASTER_KEYS", OLD)
                code = main(["admin", "rotate-master-key", "-o", "json"])
                out, err = capsys.readouterr()
            finally:
                stop.set()
                worker.join(60)
            assert code == 0, err
            assert failures == [] and served[0] >= 1
            report = json.loads(out)
            assert report["virtual_keys"]["rewrapped"] == 1 and report["virtual_keys"]["already_current"] == 1
            assert report["config_versions"]["rewrapped"] == 1
            assert OLD not in out + err and NEW not in out + err and OPENAI_SECRET not in out + err

    # The old key is gone; everything written under it still opens.
    with running_gateway(data_dir, master_key=NEW) as rotated:
        with ImageGatewayClient(rotated.grpc_target, api_key=rotated.admin_key) as admin:
            assert generate_through(admin, virtual_key="under-old") == "openai"
            assert generate_through(admin, virtual_key="under-new") == "openai"
            assert generate_through(admin, config_id=config.id) == "openai"


def test_a_second_run_reports_nothing_left_and_a_missing_previous_key_is_an_error(
    tmp_path: Path, emulators: Emulators, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    data_dir = tmp_path / "data"
    with running_gateway(data_dir, master_key=OLD) as old:
        with ImageGatewayClient(old.grpc_target, api_key=old.admin_key) as admin:
            admin.create_virtual_key("only", "openai", OPENAI_SECRET, base_url=emulators.openai.base_url)
    monkeypatch.setenv("IMAGEGW_DATA_DIR", str(data_dir))
    monkeypatch.setenv("IMAGEGW_MASTER_KEY", NEW)
    # Forgetting the previous key: the row is reported (exit 1), nothing is written.
    assert main(["admin", "rotate-master-key"]) == 1
    _, err = capsys.readouterr()
    assert "virtual key 'only'" in err and "IMAGEGW_PREVIOUS_MASTER_KEYS" in err and "Traceback" not in err
    monkeypatch.setenv("IMAGEGW_PREVIOUS_MASTER_KEYS", OLD)
    assert main(["admin", "rotate-master-key"]) == 0
    assert main(["admin", "rotate-master-key"]) == 0
    out, _ = capsys.readouterr()
    assert "virtual keys: re-wrapped 0, already current 1" in out.splitlines()[-2]
