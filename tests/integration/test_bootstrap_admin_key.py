"""The first admin key of a fleet started without IMAGEGW_ADMIN_KEY: made once, printed once.

Replicas of one deployment (separate `imagegw serve` processes, or the workers of `--workers N`)
start together on one empty database. The database decides which one makes the bootstrap admin key
(PostgreSQL: an advisory lock; SQLite: its write lock), so exactly one key exists, exactly one
process prints it, the others say that keys exist and how to get a new admin key, and the key
appears nowhere else in what any of them writes, even after it has been used and they have stopped.
"""

from __future__ import annotations

import re
import secrets
import subprocess
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from imagegateway import ImageGatewayClient
from imagegateway.v1 import keys_pb2
from imagegateway_server.storage.postgres import _MIGRATION_LOCK as MIGRATION_LOCK
from tests.conftest import eventually
from tests.gateway_processes import START_TIMEOUT, ServeProcess, Supervised
from tests.postgres_server import PostgresServer

GENERATED_KEY = re.compile(r"igw_[A-Za-z0-9_-]{43}")
PRINTED = "Created the first admin API key (shown once): "
ALREADY = "gateway API keys exist already, so no admin key was made"
REPLICAS = 3


def _launch(env: dict[str, str], data_dirs: list[Path]) -> list[ServeProcess]:
    return [ServeProcess(data_dir, None, env, wait=False) for data_dir in data_dirs]


def _serving(replicas: list[ServeProcess]) -> list[ServeProcess]:
    try:
        for replica in replicas:
            replica.wait_serving()
    except BaseException:
        _stop(replicas)
        raise
    return replicas


def _stop(replicas: list[ServeProcess]) -> list[str]:
    for replica in replicas:
        if replica.process.poll() is None:
            replica.process.terminate()
    outputs = []
    for replica in replicas:
        try:
            outputs.append(replica.wait_exit(30)[1])
        except subprocess.TimeoutExpired:
            replica.kill()
            outputs.append(replica.output())
    return outputs


def _waiting_on_advisory_locks(connection: psycopg.Connection[tuple[int]]) -> int:
    row = connection.execute(
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted "
        "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
    ).fetchone()
    return int(row[0]) if row else 0


def _the_one_printed_key(outputs: list[str]) -> str:
    """The key printed across every output: exactly one, on exactly one bootstrap line."""
    keys = [key for output in outputs for key in GENERATED_KEY.findall(output)]
    assert len(keys) == 1, f"expected one printed key, found {len(keys)}"
    printers = [output for output in outputs if PRINTED in output]
    assert len(printers) == 1
    assert f"{PRINTED}{keys[0]}" in printers[0]
    return keys[0]


def _works_everywhere(key: str, grpc_targets: list[str]) -> None:
    for target in grpc_targets:
        with ImageGatewayClient(target, api_key=key) as admin:
            listed = list(admin.iter_api_keys())
        assert [(k.name, k.scope) for k in listed] == [("bootstrap admin", keys_pb2.SCOPE_ADMIN)]


def _one_key_for_the_fleet(replicas: list[ServeProcess]) -> None:
    """Exactly one key printed, and it works on every replica; once they are stopped, still printed once,
    by one, and each of the others said why it made none."""
    try:
        key = _the_one_printed_key([replica.output() for replica in replicas])
        _works_everywhere(key, [replica.grpc_target for replica in replicas])
    finally:
        outputs = _stop(replicas)
    assert _the_one_printed_key(outputs) == key
    assert sum(ALREADY in output for output in outputs) == len(replicas) - 1
    assert all(ALREADY not in output for output in outputs if PRINTED in output)


@pytest.fixture
def empty_database(postgres_server: PostgresServer) -> Iterator[str]:
    url = postgres_server.fresh_database()
    yield url
    postgres_server.drop_database(url)


def test_replicas_starting_together_on_an_empty_postgresql_print_one_admin_key(
    tmp_path: Path, empty_database: str
) -> None:
    env = {"IMAGEGW_DATABASE_URL": empty_database, "IMAGEGW_MASTER_KEY": secrets.token_urlsafe(32)}
    # Process starts spread over seconds; the bootstrap takes milliseconds. Holding the migrations'
    # lock until all three wait on it makes them reach the bootstrap together, as a race would.
    with psycopg.connect(empty_database, autocommit=True) as gate:
        gate.execute("SELECT pg_advisory_lock(%s)", (MIGRATION_LOCK,))
        replicas = _launch(env, [tmp_path / f"replica-{index}" for index in range(REPLICAS)])
        try:
            eventually(lambda: _waiting_on_advisory_locks(gate) == REPLICAS, timeout=START_TIMEOUT)
        except BaseException:
            _stop(replicas)
            raise
        gate.execute("SELECT pg_advisory_unlock(%s)", (MIGRATION_LOCK,))
    _one_key_for_the_fleet(_serving(replicas))


def test_processes_starting_together_on_one_sqlite_file_print_one_admin_key(tmp_path: Path) -> None:
    # One data directory, hence one gateway.db, for all three: SQLite's own lock decides.
    env = {"IMAGEGW_MASTER_KEY": secrets.token_urlsafe(32)}
    _one_key_for_the_fleet(_serving(_launch(env, [tmp_path / "shared"] * REPLICAS)))


def test_two_workers_on_sqlite_print_one_admin_key(tmp_path: Path, redis_url: str) -> None:
    supervised = Supervised(tmp_path / "data", None, redis_url, 2)
    try:
        eventually(lambda: supervised.metric("imagegateway_workers") == 2, timeout=60)
        key = _the_one_printed_key([supervised.log_path.read_text(errors="replace")])
        _works_everywhere(key, [supervised.grpc_target])
        assert supervised.stop() == 0
    finally:
        if supervised.process.poll() is None:
            supervised.process.kill()
            supervised.process.wait(10)
    said = supervised.log_path.read_text(errors="replace")
    assert _the_one_printed_key([said]) == key
    assert said.count(ALREADY) == 1  # the second worker's
