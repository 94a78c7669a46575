"""Rotating and deleting gateway API keys over real sockets: the new secret, the old one's grace,
limits and request logs that stay with the key's id, the last admin key, and the CLI.

Graces are either long (the old secret must still work) or 1 s waited out with ``eventually``
(the old secret must end up refused): nothing asserts how fast a call is.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from pathlib import Path

import grpc
import pytest

from imagegateway import (
    FailedPreconditionError,
    ImageGatewayClient,
    ImageGatewayError,
    InvalidArgumentError,
    NotFoundError,
    UnauthenticatedError,
)
from imagegateway.v1 import keys_pb2
from imagegateway_server.cli import main as cli_main
from tests.conftest import Emulators, Seed, eventually
from tests.harness import GatewayThread, running_gateway

SEVEN_DAYS = 7 * 24 * 3600


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def works(gateway: GatewayThread, key: str) -> bool:
    """Whether ``key`` gets past authentication (a generate key's cheapest call)."""
    with ImageGatewayClient(gateway.grpc_target, api_key=key) as client:
        try:
            client.list_logs(page_size=1)
        except UnauthenticatedError:
            return False
    return True


def refused(gateway: GatewayThread, key: str) -> Callable[[], bool]:
    return lambda: not works(gateway, key)


def listed(admin: ImageGatewayClient, key_id: str) -> keys_pb2.ApiKey | None:
    return next((k for k in admin.iter_api_keys() if k.id == key_id), None)


def param_of(error: ImageGatewayError) -> str:
    assert error.error_info is not None
    return error.error_info.metadata["param"]


# -- rotation -----------------------------------------------------------------------------------------


def test_rotation_gives_a_new_secret_under_the_same_id_and_the_old_one_works_within_its_grace(
    admin: ImageGatewayClient, gateway: GatewayThread
) -> None:
    limits = keys_pb2.Limits(requests_per_minute=500, usd_per_day=2.5)
    created = admin.create_api_key(unique("rotated"), "generate", limits=limits)
    rotated = admin.rotate_api_key(created.api_key.id, previous_key_valid_seconds=600)

    key = rotated.api_key
    assert rotated.key.startswith("igw_") and rotated.key != created.key
    assert (key.id, key.name, key.scope, key.limits) == (
        created.api_key.id,
        created.api_key.name,
        keys_pb2.SCOPE_GENERATE,
        limits,
    )
    assert rotated.key.startswith(key.display_prefix) and key.display_prefix != created.api_key.display_prefix
    assert key.HasField("rotate_time") and not key.HasField("revoke_time")
    grace = key.previous_key_expire_time.ToSeconds() - key.rotate_time.ToSeconds()
    assert grace == 600
    assert works(gateway, rotated.key) and works(gateway, created.key)

    shown = listed(admin, key.id)
    assert shown is not None and shown.display_prefix == key.display_prefix
    assert shown.previous_key_expire_time == key.previous_key_expire_time
    for secret in (created.key, rotated.key):
        assert secret.encode() not in shown.SerializeToString()


def test_the_old_secret_is_refused_once_a_short_grace_has_passed(
    admin: ImageGatewayClient, gateway: GatewayThread
) -> None:
    created = admin.create_api_key(unique("short-grace"), "generate")
    assert works(gateway, created.key)  # cached before the rotation
    rotated = admin.rotate_api_key(created.api_key.id, previous_key_valid_seconds=1)
    eventually(refused(gateway, created.key))
    assert works(gateway, rotated.key)
    shown = listed(admin, created.api_key.id)
    assert shown is not None and not shown.HasField("previous_key_expire_time")  # the grace is over


def test_rotation_with_no_grace_refuses_the_old_secret_at_once(
    admin: ImageGatewayClient, gateway: GatewayThread
) -> None:
    created = admin.create_api_key(unique("no-grace"), "generate")
    assert works(gateway, created.key)  # cached: the rotation must evict it on this process
    rotated = admin.rotate_api_key(created.api_key.id)
    assert not works(gateway, created.key)
    assert works(gateway, rotated.key)
    assert not rotated.api_key.HasField("previous_key_expire_time")


def test_a_revoked_key_cannot_be_rotated(admin: ImageGatewayClient, gateway: GatewayThread) -> None:
    created = admin.create_api_key(unique("revoked"), "generate")
    admin.revoke_api_key(created.api_key.id)
    with pytest.raises(FailedPreconditionError) as info:
        admin.rotate_api_key(created.api_key.id, previous_key_valid_seconds=60)
    assert info.value.code == grpc.StatusCode.FAILED_PRECONDITION and "revoked" in info.value.message
    assert not works(gateway, created.key)


@pytest.mark.parametrize("seconds", [-1, SEVEN_DAYS + 1])
def test_a_grace_outside_zero_to_seven_days_is_invalid_argument_naming_the_field(
    admin: ImageGatewayClient, gateway: GatewayThread, seconds: int
) -> None:
    created = admin.create_api_key(unique("bad-grace"), "generate")
    with pytest.raises(InvalidArgumentError) as info:
        admin.rotate_api_key(created.api_key.id, previous_key_valid_seconds=seconds)
    assert param_of(info.value) == "previous_key_valid_seconds"
    assert works(gateway, created.key)  # nothing was rotated


def test_rotating_an_unknown_key_is_not_found(admin: ImageGatewayClient) -> None:
    with pytest.raises(NotFoundError):
        admin.rotate_api_key("no-such-key-id")


def test_requests_per_minute_keep_counting_on_the_same_id_across_a_rotation(
    admin: ImageGatewayClient, gateway: GatewayThread, seed: Seed, emulators: Emulators
) -> None:
    created = admin.create_api_key(unique("limited"), "generate", limits=keys_pb2.Limits(requests_per_minute=1))
    with ImageGatewayClient(gateway.grpc_target, api_key=created.key) as old:
        old.generate_image(prompt="a kite", model="dall-e-3", virtual_key=seed.openai_vk)
    rotated = admin.rotate_api_key(created.api_key.id)
    errors: list[ImageGatewayError] = []
    with ImageGatewayClient(gateway.grpc_target, api_key=rotated.key) as new:
        # A sliding minute lets at most one more through when the calls straddle a clock minute.
        for _ in range(2):
            try:
                new.generate_image(prompt="a kite", model="dall-e-3", virtual_key=seed.openai_vk)
            except ImageGatewayError as exc:
                errors.append(exc)
    assert len(errors) >= 1
    info = errors[0].error_info
    assert errors[0].code == grpc.StatusCode.RESOURCE_EXHAUSTED and info is not None
    assert (info.metadata["limit"], info.metadata["key_id"]) == ("requests_per_minute", created.api_key.id)
    logs = eventually(
        lambda: (page := admin.list_logs(caller_key_id=created.api_key.id)).logs and len(page.logs) >= 3 and page
    )
    assert {log.caller_key_id for log in logs.logs} == {created.api_key.id}


# -- deletion -----------------------------------------------------------------------------------------


def test_a_deleted_key_is_gone_and_refused_and_its_request_logs_stay(
    admin: ImageGatewayClient, gateway: GatewayThread, seed: Seed, emulators: Emulators
) -> None:
    created = admin.create_api_key(unique("deleted"), "generate")
    key_id = created.api_key.id
    with ImageGatewayClient(gateway.grpc_target, api_key=created.key) as client:
        client.generate_image(prompt="a kite", model="dall-e-3", virtual_key=seed.openai_vk)
    logged = eventually(lambda: list(admin.list_logs(caller_key_id=key_id).logs))
    assert works(gateway, created.key)  # cached: the delete must evict it on this process

    admin.delete_api_key(key_id)
    assert listed(admin, key_id) is None
    assert not works(gateway, created.key)
    kept = admin.list_logs(caller_key_id=key_id).logs
    assert [log.id for log in kept] == [log.id for log in logged]
    assert admin.get_log(logged[0].id).caller_key_id == key_id
    with pytest.raises(NotFoundError):
        admin.delete_api_key(key_id)


def test_a_key_may_delete_itself_but_the_last_admin_key_may_not_be_deleted(tmp_path: Path) -> None:
    with (
        running_gateway(tmp_path / "gateway") as gateway,
        ImageGatewayClient(gateway.grpc_target, api_key=gateway.admin_key) as admin,
    ):
        bootstrap = [k for k in admin.iter_api_keys()]
        assert len(bootstrap) == 1
        with pytest.raises(FailedPreconditionError) as info:
            admin.delete_api_key(bootstrap[0].id)
        assert param_of(info.value) == "id" and "last active admin key" in info.value.message
        assert works(gateway, gateway.admin_key)

        second = admin.create_api_key("second admin", "admin")
        with ImageGatewayClient(gateway.grpc_target, api_key=second.key) as itself:
            itself.delete_api_key(second.api_key.id)  # allowed: the bootstrap key is still an admin
        assert not works(gateway, second.key)
        assert [k.id for k in admin.iter_api_keys()] == [bootstrap[0].id]


# -- the CLI ------------------------------------------------------------------------------------------


def test_the_cli_rotates_and_deletes_a_key(
    admin: ImageGatewayClient, gateway: GatewayThread, capsys: pytest.CaptureFixture[str]
) -> None:
    created = admin.create_api_key(unique("cli"), "generate")
    key_id = created.api_key.id
    base = ["--server", gateway.grpc_target, "--api-key", gateway.admin_key]

    assert cli_main([*base, "-o", "json", "api-keys", "rotate", key_id, "--previous-valid-seconds", "600"]) == 0
    out, err = capsys.readouterr()
    rotated = json.loads(out)
    assert rotated["id"] == key_id and rotated["key"].startswith(rotated["display_prefix"])
    assert "shown only this once" in err
    assert works(gateway, rotated["key"]) and works(gateway, created.key)

    assert cli_main([*base, "api-keys", "rotate", key_id, "--previous-valid-seconds", str(SEVEN_DAYS + 1)]) != 0
    assert "previous_key_valid_seconds" in capsys.readouterr().err
    for unsendable in ("-5", str(2**31)):
        assert cli_main([*base, "api-keys", "rotate", key_id, "--previous-valid-seconds", unsendable]) == 2
        assert "--previous-valid-seconds" in capsys.readouterr().err

    assert cli_main([*base, "api-keys", "delete", key_id]) == 0
    assert capsys.readouterr().out == f"deleted API key {key_id}\n"
    assert not works(gateway, rotated["key"])
    assert cli_main([*base, "api-keys", "get", key_id]) != 0
    assert "NOT_FOUND" in capsys.readouterr().err
