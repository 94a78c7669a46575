"""The h2load mode of the benchmark: its prebuilt upstream, h2load's output parsed, its RESULTS.md section."""

from __future__ import annotations

import base64
import http.client
import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bench"))

import h2load_mode  # noqa: E402
from prebuilt_upstream import parse_size, png_of_about  # noqa: E402

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def upstream() -> Iterator[tuple[str, int]]:
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "bench" / "prebuilt_upstream.py"), "--port", "0", "--sizes", "1k,64k"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        match = re.match(r"listening on http://([\d.]+):(\d+)", first)
        assert match, first
        for _ in range(2):  # one line per size, once the answers are built
            proc.stdout.readline()
        yield match.group(1), int(match.group(2))
    finally:
        proc.terminate()
        proc.wait(10)


def _post(conn: http.client.HTTPConnection, path: str, body: bytes = b'{"prompt": "x"}') -> tuple[int, bytes]:
    conn.request("POST", path, body=body, headers={"content-type": "application/json"})
    response = conn.getresponse()
    return response.status, response.read()


def test_prebuilt_upstream_answers_openai_b64_json_by_size_on_one_kept_alive_connection(
    upstream: tuple[str, int],
) -> None:
    conn = http.client.HTTPConnection(*upstream, timeout=10)
    try:
        sizes = {}
        for path in ("/1k/v1/images/generations", "/64k/v1/images/generations", "/v1/images/generations"):
            status, body = _post(conn, path, b"x" * 5000)  # a body is skipped by its length, not parsed
            assert status == 200
            png = base64.b64decode(json.loads(body)["data"][0]["b64_json"])
            assert png.startswith(PNG_SIGNATURE)
            sizes[path] = len(png)
        assert conn.sock is not None  # still the same connection
    finally:
        conn.close()
    assert 900 < sizes["/1k/v1/images/generations"] < 1200
    assert 60_000 < sizes["/64k/v1/images/generations"] < 70_000
    assert sizes["/v1/images/generations"] == sizes["/1k/v1/images/generations"]  # the first size


def test_prebuilt_upstream_refuses_other_paths_and_methods(upstream: tuple[str, int]) -> None:
    conn = http.client.HTTPConnection(*upstream, timeout=10)
    try:
        assert _post(conn, "/2m/v1/images/generations")[0] == 404
        conn.request("GET", "/1k/v1/images/generations")
        assert conn.getresponse().status == 405
    finally:
        conn.close()


@pytest.mark.parametrize(("text", "expected"), [("1k", 1024), ("256K", 262144), ("1m", 1048576), ("5000", 5000)])
def test_sizes_are_bytes_with_k_and_m_suffixes(text: str, expected: int) -> None:
    assert parse_size(text) == expected


def test_pngs_come_close_to_the_asked_size() -> None:
    for nbytes in (1024, 256 * 1024, 1024 * 1024):
        png = png_of_about(nbytes)
        assert png.startswith(PNG_SIGNATURE)
        assert abs(len(png) - nbytes) / nbytes < 0.05


H2LOAD_SUMMARY = """\
starting benchmark...
finished in 1.23s, 812.50 req/s, 290.01MB/s
requests: 1000 total, 1000 started, 1000 done, 998 succeeded, 2 failed, 2 errored, 0 timeout
status codes: 997 2xx, 0 3xx, 0 4xx, 1 5xx
"""


def test_h2load_summary_and_log_file_are_parsed() -> None:
    log = (
        "1700000000000000\t200\t812\n1700000000001000\t200\t790\n1700000000002000\t502\t900\n1700000000003000\t-1\t0\n"
    )

    run = h2load_mode.parse_h2load(H2LOAD_SUMMARY, log)

    assert run is not None
    assert (run.requests, run.succeeded, run.failed, run.status_2xx) == (1000, 998, 2, 997)
    assert run.seconds == pytest.approx(1.23)
    assert run.rps == pytest.approx(812.5)
    assert run.latencies_us == [812, 790]
    assert run.other_statuses == {"502": 1, "-1": 1}
    assert run.errors == 3


def test_a_run_without_a_summary_is_not_parsed() -> None:
    assert h2load_mode.parse_h2load("-n, -c: the number of requests must be greater", "") is None


def test_the_section_is_replaced_inserted_before_the_notes_or_appended() -> None:
    section = f"{h2load_mode.SECTION_BEGIN}\n## h2load\nnew\n{h2load_mode.SECTION_END}"
    old_section = f"{h2load_mode.SECTION_BEGIN}\n## h2load\nold\n{h2load_mode.SECTION_END}"

    replaced = h2load_mode.splice(f"# R\n\n{old_section}\n\n## Notes and findings\n", section)
    inserted = h2load_mode.splice("# R\n\n## Throughput\n\n## Notes and findings\nn\n", section)
    appended = h2load_mode.splice("# R\n", section)

    assert replaced == f"# R\n\n{section}\n\n## Notes and findings\n"
    assert inserted == f"# R\n\n## Throughput\n\n{section}\n\n## Notes and findings\nn\n"
    assert appended == f"# R\n\n{section}\n"


def test_a_full_report_keeps_the_h2load_section_of_the_file_it_replaces(tmp_path: Path) -> None:
    section = f"{h2load_mode.SECTION_BEGIN}\n## h2load\nkept\n{h2load_mode.SECTION_END}"
    results = tmp_path / "RESULTS.md"
    results.write_text(f"# old report\n\n{section}\n\n## Notes and findings\n")

    new = h2load_mode.carry_section(results, "# new report\n\n## Notes and findings\nnotes\n")

    assert new == f"# new report\n\n{section}\n\n## Notes and findings\nnotes\n"
    assert h2load_mode.carry_section(tmp_path / "absent.md", "# new\n") == "# new\n"


def test_without_h2load_the_mode_says_how_to_install_it_and_fails(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(h2load_mode, "find_h2load", lambda: None)

    code = h2load_mode.main(["--quick"], {}, lambda: None)

    assert code != 0
    assert "apt-get install -y nghttp2-client" in capsys.readouterr().err
