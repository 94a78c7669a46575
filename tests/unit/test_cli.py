"""``imagegw`` end to end through ``main([...])`` against a real gRPC server on a loopback socket."""

from __future__ import annotations

import io
import json
import sys
import types
from collections.abc import Iterator
from pathlib import Path

import pytest

from imagegateway.v1 import keys_pb2, logs_pb2
from imagegateway_server.cli import build_parser, main
from imagegateway_server.settings import SETTINGS, Settings
from tests.unit.test_client_fake_server import ADMIN_KEY, FakeGateway, serving

FALLBACK = {
    "strategy": {"mode": "fallback"},
    "targets": [
        {"provider": "stability-ai", "api_key": "sk-stab-in-file", "override_params": {"model": "sd3"}},
        {"virtual_key": "openai-prod"},
    ],
}
SECRET = "sk-provider-secret-0123456789"


@pytest.fixture
def fake() -> FakeGateway:
    return FakeGateway()


@pytest.fixture
def gw(fake: FakeGateway, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeGateway]:
    """The fake gateway, with IMAGEGW_SERVER / IMAGEGW_API_KEY pointing at it."""
    with serving(fake) as target:
        monkeypatch.setenv("IMAGEGW_SERVER", target)
        monkeypatch.setenv("IMAGEGW_API_KEY", ADMIN_KEY)
        yield fake


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    path = tmp_path / "fallback.json"
    path.write_text(json.dumps(FALLBACK))
    return path


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return code, out, err


def stdin(monkeypatch: pytest.MonkeyPatch, text: str) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO(text))


# configs


def test_configs_create_json_is_the_bare_resource(
    gw: FakeGateway, config_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "configs", "create", "--name", "prod", "--file", str(config_file), "-o", "json")
    assert code == 0
    created = json.loads(out)
    assert created["id"] == "cfg_1" and created["version"] == 1 and created["name"] == "prod"
    # the routing config reads back as the Portkey JSON it came from
    assert created["config"] == FALLBACK
    sent = gw.last("CreateConfig").request
    assert sent.config.targets[0].override_params["model"] == "sd3"


def test_configs_create_reads_stdin_and_update_makes_a_version(
    gw: FakeGateway, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    stdin(monkeypatch, json.dumps(FALLBACK))
    assert run(capsys, "configs", "create", "--name", "prod", "--file", "-")[0] == 0
    stdin(monkeypatch, '{"provider": "openai"}')
    code, out, _ = run(capsys, "-o", "json", "configs", "update", "cfg_1", "--file", "-", "--name", "prod-2")
    assert code == 0 and json.loads(out)["version"] == 2
    code, out, _ = run(capsys, "configs", "get", "cfg_1@1", "-o", "json")
    assert json.loads(out)["config"]["strategy"]["mode"] == "fallback"
    code, out, _ = run(capsys, "configs", "get", "cfg_1", "--version", "2")
    assert code == 0 and "version:" in out and "prod-2" in out


def test_configs_list_walks_pages_into_one_array_or_table(
    gw: FakeGateway, config_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for i in range(3):
        run(capsys, "configs", "create", "--name", f"c{i}", "--file", str(config_file))
    code, out, _ = run(capsys, "configs", "list", "-o", "json")
    assert code == 0 and [c["name"] for c in json.loads(out)] == ["c0", "c1", "c2"]
    code, out, _ = run(capsys, "configs", "list")
    lines = out.splitlines()
    assert lines[0].split() == ["ID", "NAME", "VERSION", "CREATED"]
    assert lines[1].split() == ["cfg_1", "c0", "1", "2026-01-01T00:00:00Z"]
    assert len(lines) == 4


def test_configs_delete_and_not_found(gw: FakeGateway, config_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run(capsys, "configs", "create", "--name", "c", "--file", str(config_file))
    assert run(capsys, "configs", "delete", "cfg_1") == (0, "deleted config cfg_1\n", "")
    code, out, err = run(capsys, "configs", "get", "cfg_1")
    assert (code, out) == (1, "")
    assert err == 'error: NOT_FOUND: config "cfg_1" not found\n'


def test_config_file_with_an_unknown_field_is_refused_before_sending(
    gw: FakeGateway, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"strategy": {"mode": "fallback"}, "targets": [{}, {"strategy": {"mdoe": "x"}}]}))
    code, _, err = run(capsys, "configs", "create", "--name", "c", "--file", str(bad))
    assert code == 1
    assert err.startswith("error: INVALID_ARGUMENT: targets[1].strategy.mdoe: unknown field")
    assert not gw.calls
    code, _, err = run(capsys, "configs", "create", "--name", "c", "--file", str(tmp_path / "missing.json"))
    assert code == 1 and err.startswith("error: NOT_FOUND: cannot read ")


def test_configs_validate_offline_reports_the_field_path(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"targets": [{"provider": "openai"}, {"retry": {"attempts": 1, "on_status": [429]}}]}))
    code, out, err = run(capsys, "configs", "validate", "--file", str(bad), "--server", "127.0.0.1:1")
    assert (code, out) == (1, "")
    assert err.startswith("error: INVALID_ARGUMENT: targets[1].retry.on_status: unknown field")


def test_configs_validate_offline_accepts_a_good_config(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("imagegateway_server.routing.validation")
    monkeypatch.delenv("IMAGEGW_ALLOWED_UPSTREAM_HOSTS", raising=False)
    good = tmp_path / "good.json"
    good.write_text(
        json.dumps(
            {
                "strategy": {"mode": "fallback"},
                "targets": [
                    {"provider": "stability-ai", "api_key": "sk-a"},
                    {"provider": "openai", "api_key": "sk-b"},
                ],
            }
        )
    )
    assert run(capsys, "configs", "validate", "--file", str(good)) == (0, f"{good}: valid\n", "")
    assert json.loads(run(capsys, "configs", "validate", "--file", str(good), "-o", "json")[1]) == {"valid": True}


def test_configs_validate_reports_the_semantic_checks(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from imagegateway_server.domain.errors import InvalidArgument

    def validate_config(config: object, allowed_hosts: object = (), **bounds: object) -> None:
        raise InvalidArgument("must be one of single, fallback, loadbalance, conditional", param="strategy.mode")

    fake_module = types.ModuleType("imagegateway_server.routing.validation")
    fake_module.validate_config = validate_config  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "imagegateway_server.routing.validation", fake_module)
    path = tmp_path / "c.json"
    path.write_text('{"strategy": {"mode": "roundrobin"}}')
    code, _, err = run(capsys, "configs", "validate", "--file", str(path))
    assert code == 1
    assert err == "error: INVALID_ARGUMENT: strategy.mode: must be one of single, fallback, loadbalance, conditional\n"


# virtual keys


@pytest.mark.parametrize("output", ["table", "json"])
def test_virtual_key_secret_comes_from_stdin_and_is_never_printed(
    gw: FakeGateway, output: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    stdin(monkeypatch, SECRET + "\n")
    code, out, err = run(
        capsys,
        "virtual-keys",
        "create",
        "--name",
        "OpenAI prod",
        "--provider",
        "openai",
        "--base-url",
        "https://api.example.test",
        "--id",
        "oa",
        "--api-key-stdin",
        "-o",
        output,
    )
    assert code == 0
    assert gw.secrets["oa"] == SECRET  # trailing newline stripped
    assert SECRET not in out + err
    if output == "json":
        assert json.loads(out)["id"] == "oa" and json.loads(out)["base_url"] == "https://api.example.test"
    else:
        assert "provider:" in out and "openai" in out
    stdin(monkeypatch, "sk-rotated\n")
    code, out, err = run(capsys, "virtual-keys", "rotate", "oa", "--api-key-stdin", "-o", output)
    assert code == 0 and gw.secrets["oa"] == "sk-rotated" and "sk-rotated" not in out + err


def test_virtual_key_commands_refuse_secrets_anywhere_but_stdin(
    gw: FakeGateway, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(capsys, "virtual-keys", "create", "--name", "x", "--provider", "openai", "--secret", SECRET)
    assert code == 2 and "error: INVALID_ARGUMENT:" in err
    stdin(monkeypatch, "\n")
    code, _, err = run(capsys, "virtual-keys", "create", "--name", "x", "--provider", "openai", "--api-key-stdin")
    assert code == 2 and err == "error: INVALID_ARGUMENT: no provider API key on stdin\n"
    assert not gw.calls


def test_virtual_keys_get_list_delete(
    gw: FakeGateway, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("a", "b", "c"):
        stdin(monkeypatch, SECRET)
        run(capsys, "virtual-keys", "create", "--name", name, "--provider", "openai", "--api-key-stdin")
    assert [k["id"] for k in json.loads(run(capsys, "virtual-keys", "list", "-o", "json")[1])] == ["a", "b", "c"]
    assert json.loads(run(capsys, "virtual-keys", "get", "b", "-o", "json")[1])["name"] == "b"
    assert run(capsys, "virtual-keys", "delete", "b", "-o", "json") == (0, "{}\n", "")
    code, _, err = run(capsys, "virtual-keys", "get", "b")
    assert code == 1 and err.startswith("error: NOT_FOUND:")


# API keys


def test_api_keys_create_json_adds_the_plaintext_key(gw: FakeGateway, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "api-keys", "create", "--name", "ci", "-o", "json")
    assert code == 0
    created = json.loads(out)
    assert created["id"] == "key_1" and created["scope"] == "SCOPE_GENERATE"
    assert created["key"] == "igw_abc_plaintext_key_1"
    assert "shown only this once" in err
    assert gw.last("CreateApiKey").request.scope == keys_pb2.SCOPE_GENERATE


def test_api_keys_list_and_revoke(gw: FakeGateway, capsys: pytest.CaptureFixture[str]) -> None:
    run(capsys, "api-keys", "create", "--name", "ops", "--scope", "admin")
    code, out, _ = run(capsys, "api-keys", "list")
    assert out.splitlines()[0].split() == ["ID", "NAME", "SCOPE", "PREFIX", "CREATED", "REVOKED"]
    assert out.splitlines()[1].split()[:4] == ["key_1", "ops", "admin", "igw_abc"]
    code, out, _ = run(capsys, "api-keys", "revoke", "key_1", "-o", "json")
    assert code == 0 and json.loads(out)["revoke_time"] == "2026-01-01T00:00:00Z"


# generate


def test_generate_writes_one_file(gw: FakeGateway, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out_file = tmp_path / "fox.png"
    code, _, _ = run(capsys, "generate", "--prompt", "a fox", "--config", "cfg_1@2", "--out", str(out_file))
    assert code == 0
    assert out_file.read_bytes() == b"\x01" * 16
    sent = gw.last("StreamGenerateImage").request
    assert sent.routing.config_id == "cfg_1@2" and sent.parameters.n == 1


def test_generate_n2_writes_numbered_files_and_reports_the_outcome(
    gw: FakeGateway, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out_file = tmp_path / "fox.png"
    code, out, _ = run(
        capsys,
        "generate",
        "--prompt",
        "a fox",
        "-n",
        "2",
        "--virtual-key",
        "openai-prod",
        "--size",
        "1024x1024",
        "--quality",
        "hd",
        "--style",
        "vivid",
        "--model",
        "dall-e-3",
        "--trace-id",
        "t-7",
        "--metadata",
        "team=web",
        "env=prod",
        "--out",
        str(out_file),
    )
    assert code == 0
    assert (tmp_path / "fox-1.png").read_bytes() == b"\x01" * 16
    assert (tmp_path / "fox-2.png").read_bytes() == b"\x02" * 16
    assert not out_file.exists()
    fields = dict(line.split(":", 1) for line in out.splitlines() if ":" in line)
    assert fields["provider"].strip() == "openai" and fields["model"].strip() == "dall-e-3"
    assert fields["target"].strip() == "config.targets[1]" and fields["trace_id"].strip() == "t-7"
    assert fields["log_id"].strip() == "log_1"
    assert "FALLBACK: served by config.targets[1] after 1 failed attempt(s)" in out
    sent = gw.last("StreamGenerateImage").request
    assert dict(sent.metadata) == {"team": "web", "env": "prod"}
    assert (sent.parameters.size, sent.parameters.quality, sent.parameters.style) == ("1024x1024", "hd", "vivid")


def test_generate_json_prints_the_routing_outcome(
    gw: FakeGateway, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "generate", "--prompt", "a fox", "-n", "3", "--out", str(tmp_path / "img"), "-o", "json")
    assert code == 0
    outcome = json.loads(out)
    assert outcome["provider"] == "openai" and outcome["fallback_used"] is True
    assert [a["provider"] for a in outcome["attempts"]] == ["stability-ai", "openai"]
    assert outcome["files"] == [str(tmp_path / f"img-{n}.png") for n in (1, 2, 3)]


def test_generate_provider_key_comes_from_stdin_and_is_never_printed(
    gw: FakeGateway, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    stdin(monkeypatch, SECRET + "\n")
    code, out, err = run(
        capsys,
        "generate",
        "--prompt",
        "x",
        "--provider",
        "openai",
        "--provider-api-key-stdin",
        "--out",
        str(tmp_path / "x.png"),
    )
    assert code == 0 and SECRET not in out + err
    assert gw.last("StreamGenerateImage").request.routing.provider_api_key == SECRET


def test_generate_failure_prints_the_error_and_attempts(
    gw: FakeGateway, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "generate", "--prompt", "fail", "--trace-id", "t-9", "--out", str(tmp_path / "x.png"))
    assert (code, out) == (1, "")
    lines = err.splitlines()
    assert lines[0] == "error: UNAVAILABLE: every target failed; last: stability-ai 503"
    assert any(line.startswith("trace_id:") and "t-9" in line for line in lines)
    assert any("config.targets[0]" in line and "503" in line and "upstream said 503" in line for line in lines)
    assert not list(tmp_path.iterdir())


def test_generate_usage_errors_exit_2_without_calling(
    gw: FakeGateway, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(capsys, "generate", "--prompt", "x", "--out", str(tmp_path / "no" / "such" / "x.png"))
    assert code == 2 and "does not exist" in err
    code, _, err = run(capsys, "generate", "--prompt", "x", "--config", "c", "--provider", "openai", "--out", "x.png")
    assert code == 2 and "not allowed with argument" in err
    code, _, err = run(capsys, "generate", "--prompt", "x", "-n", "0", "--out", "x.png")
    assert code == 2
    code, _, err = run(capsys, "generate", "--prompt", "x", "--provider-api-key-stdin", "--out", str(tmp_path / "x"))
    assert code == 2 and "needs --provider" in err
    assert not gw.calls


# logs


def test_logs_list_sends_filters_and_stops_at_the_limit(gw: FakeGateway, capsys: pytest.CaptureFixture[str]) -> None:
    gw.add_logs(5)
    code, out, _ = run(
        capsys,
        "logs",
        "list",
        "--outcome",
        "failure",
        "--provider",
        "openai",
        "--status",
        "503",
        "--since",
        "2026-01-01T00:00:00Z",
        "--until",
        "2026-01-02",
        "--limit",
        "3",
        "-o",
        "json",
    )
    assert code == 0 and [log["id"] for log in json.loads(out)] == ["log_1", "log_2", "log_3"]
    request = gw.last("ListLogs").request
    assert request.outcome == logs_pb2.REQUEST_OUTCOME_FAILURE and request.status_code == 503
    assert request.start_time.ToJsonString() == "2026-01-01T00:00:00Z"
    assert request.end_time.ToJsonString() == "2026-01-02T00:00:00Z"
    code, out, _ = run(capsys, "logs", "list", "--start-time", "2h")
    assert out.splitlines()[0].split()[:3] == ["TIME", "ID", "STATUS"] and len(out.splitlines()) == 6


def test_logs_get_shows_each_attempt_and_the_fallback(gw: FakeGateway, capsys: pytest.CaptureFixture[str]) -> None:
    gw.add_logs(1)
    code, out, _ = run(capsys, "logs", "get", "log_1")
    assert code == 0
    lines = out.splitlines()
    first = next(line for line in lines if "config.targets[0]" in line).split()
    second = next(line for line in lines if "config.targets[1]" in line and "dall-e-3" in line).split()
    assert first[:7] == ["1", "config.targets[0]", "stability-ai", "sd3", "503", "0", "120ms"]
    assert " ".join(first[7:]) == "unavailable: upstream said 503"
    assert second[:7] == ["2", "config.targets[1]", "openai", "dall-e-3", "200", "0", "900ms"]
    assert "FALLBACK: served by config.targets[1] after 1 failed attempt(s)" in lines
    assert json.loads(run(capsys, "logs", "get", "log_1", "-o", "json")[1])["attempts"][0]["status_code"] == 503


# global options, auth, usage


def test_global_options_work_before_and_after_the_subcommand(
    fake: FakeGateway, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("IMAGEGW_SERVER", raising=False)
    monkeypatch.delenv("IMAGEGW_API_KEY", raising=False)
    with serving(fake) as target:
        assert run(capsys, "--server", target, "--api-key", ADMIN_KEY, "-o", "json", "configs", "list")[1] == "[]\n"
        assert run(capsys, "configs", "list", "--server", target, "--api-key", ADMIN_KEY, "-o", "json")[1] == "[]\n"
        code, _, err = run(capsys, "configs", "list", "--server", target)
    assert [c.metadata.get("authorization") for c in fake.calls] == [f"Bearer {ADMIN_KEY}"] * 2 + [None]
    assert code == 1
    assert err == (
        "error: UNAUTHENTICATED: missing or unknown gateway API key (set IMAGEGW_API_KEY or pass --api-key)\n"
    )


def test_unreachable_server_is_a_one_line_error(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "api-keys", "list", "--server", "127.0.0.1:1", "--api-key", "k")
    assert code == 1 and err.startswith("error: UNAVAILABLE: ") and "127.0.0.1:1" in err
    assert len(err.splitlines()) == 1


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys)[0] == 2
    assert run(capsys, "configs")[0] == 2
    code, _, err = run(capsys, "logs", "list", "--since", "yesterday")
    assert code == 2 and "error: INVALID_ARGUMENT:" in err and "yesterday" in err
    assert run(capsys, "--help")[0] == 0


# serve


def test_serve_has_a_flag_per_setting_and_flags_beat_env(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    serve_help = build_parser().parse_args(["serve"])
    for spec in SETTINGS:
        assert getattr(serve_help, spec.field) is None  # unset flags leave the env var in charge
    received: list[Settings] = []

    def supervise(settings: Settings) -> int:
        received.append(settings)
        return 3

    # serve hands the settings to the supervisor (one process, or --workers N of them).
    from imagegateway_server.workers import supervisor

    monkeypatch.setattr(supervisor, "supervise", supervise)
    monkeypatch.setenv("IMAGEGW_HTTP_ADDR", "127.0.0.1:9999")
    monkeypatch.setenv("IMAGEGW_GRPC_ADDR", "127.0.0.1:7777")
    code, _, _ = run(capsys, "serve", "--grpc-addr", "127.0.0.1:6000", "--shutdown-grace-seconds", "5")
    assert code == 3
    assert received[0].grpc_addr == "127.0.0.1:6000" and received[0].http_addr == "127.0.0.1:9999"
    assert received[0].shutdown_grace_seconds == 5.0
    code, _, err = run(capsys, "serve", "--shutdown-grace-seconds", "soon")
    assert code == 2 and err.startswith("error: INVALID_ARGUMENT: invalid setting")


def test_virtual_key_credential_fields_come_from_stdin_and_flags_and_are_never_printed(
    gw: FakeGateway, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    stdin(monkeypatch, json.dumps({"access_key_id": "AKIA-1", "secret_access_key": SECRET}) + "\n")
    code, out, err = run(
        capsys,
        "virtual-keys",
        "create",
        "--name",
        "aws",
        "--provider",
        "openai",
        "--field",
        "region=eu-west-1",
        "--fields-json-stdin",
        "-o",
        "json",
    )
    assert code == 0 and SECRET not in out + err
    assert gw.secrets["aws"] == "" and gw.credential_fields["aws"] == {
        "access_key_id": "AKIA-1",
        "secret_access_key": SECRET,
        "region": "eu-west-1",
    }
    stdin(monkeypatch, "sk-rotated\n")
    code, out, err = run(capsys, "virtual-keys", "rotate", "aws", "--api-key-stdin", "--field", "region=us-east-1")
    assert code == 0 and gw.secrets["aws"] == "sk-rotated" and gw.credential_fields["aws"] == {"region": "us-east-1"}
    assert "sk-rotated" not in out + err


@pytest.mark.parametrize(
    "stdin_text,flags,message",
    [
        ('{"secret_access_key": "s"}', ["--field", "region"], "--field takes NAME=VALUE"),
        ("not json", [], "stdin is not a JSON object of credential fields"),
        ('{"n": 1}', [], "stdin must be a JSON object whose values are strings"),
        ('{"region": "a"}', ["--field", "region=b"], "credential field 'region' is given both by --field and on stdin"),
    ],
)
def test_virtual_key_credential_fields_are_checked_before_any_call(
    gw: FakeGateway,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    stdin_text: str,
    flags: list[str],
    message: str,
) -> None:
    stdin(monkeypatch, stdin_text)
    code, _, err = run(
        capsys, "virtual-keys", "create", "--name", "x", "--provider", "openai", *flags, "--fields-json-stdin"
    )
    assert code == 2 and err == f"error: INVALID_ARGUMENT: {message}\n"
    assert not gw.calls


def test_virtual_key_commands_take_one_credential_source(gw: FakeGateway, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(
        capsys,
        "virtual-keys",
        "create",
        "--name",
        "x",
        "--provider",
        "openai",
        "--api-key-stdin",
        "--fields-json-stdin",
    )
    assert code == 2 and "error: INVALID_ARGUMENT:" in err and not gw.calls
