"""A real PostgreSQL server for the tests: started in a temp dir by initdb + pg_ctl, or one given.

``IMAGEGW_TEST_POSTGRES_URL`` (a URL of a role that may create databases) uses a running server
instead. Otherwise the cluster is made with the Debian binaries (``IMAGEGW_TEST_POSTGRES_BIN``,
default the newest ``/usr/lib/postgresql/<version>/bin``) in a fresh directory, listening on a free loopback port and
a socket in that directory, with password (SCRAM) authentication over TCP so that URLs carry a
password as production ones do. initdb and postgres refuse to run as root: as root they run as
the ``postgres`` OS user. Durability is off (fsync, synchronous commit): these databases are
thrown away.

Each test gets its own database, made from a template that the store has already migrated
(``CREATE DATABASE ... TEMPLATE``, a file copy), so tests neither share rows nor pay for migrations.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import itertools
import os
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import psycopg

DEBIAN_ROOT = Path("/usr/lib/postgresql")
USER = "imagegw"
PASSWORD = "pg-test-secret-0123456789"
TEMPLATE = "imagegw_template"
_OS_USER = "postgres"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def database_url(base_url: str, database: str) -> str:
    """``base_url`` naming ``database`` instead of its own."""
    parts = urllib.parse.urlsplit(base_url)
    return urllib.parse.urlunsplit(parts._replace(path="/" + database))


class PostgresServer:
    """A running server; ``url`` connects as a role that may create databases."""

    def __init__(self, url: str, *, data_dir: Path | None = None, bin_dir: Path | None = None) -> None:
        self.url = url
        self._data_dir = data_dir
        self._bin_dir = bin_dir
        self._names = itertools.count(1)
        self._template_ready = False

    @property
    def managed(self) -> bool:
        """Whether the tests started this server (and may stop and restart it)."""
        return self._data_dir is not None

    def _as_owner(self, *command: str | os.PathLike[str]) -> list[str]:
        assert self._bin_dir is not None
        program = [str(self._bin_dir / str(command[0])), *map(str, command[1:])]
        return ["runuser", "-u", _OS_USER, "--", *program] if os.geteuid() == 0 else program

    def pg_ctl(self, action: str, *extra: str) -> None:
        """Runs ``pg_ctl action`` on the managed cluster (stop: fast mode; start: waits until ready)."""
        assert self._data_dir is not None, "only a server the tests started can be stopped"
        options = ["-m", "fast"] if action in ("stop", "restart") else []
        subprocess.run(
            self._as_owner("pg_ctl", action, "-D", self._data_dir, "-w", "-t", "60", *options, *extra),
            check=True,
            capture_output=True,
        )

    def stop(self) -> None:
        self.pg_ctl("stop")

    def start(self) -> None:
        assert self._data_dir is not None
        self.pg_ctl("start", "-l", str(self._data_dir.parent / "server.log"))

    def admin_connection(self) -> psycopg.Connection[tuple[object, ...]]:
        return psycopg.connect(self.url, autocommit=True)

    def fresh_database(self, migrate: bool = True) -> str:
        """A URL of a new empty database; ``migrate``: copied from the migrated template."""
        name = f"imagegw_test_{os.getpid()}_{next(self._names)}"
        with self.admin_connection() as connection:
            if migrate:
                self._ensure_template(connection)
                connection.execute(f'CREATE DATABASE "{name}" TEMPLATE "{TEMPLATE}"')
            else:
                connection.execute(f'CREATE DATABASE "{name}"')
        return database_url(self.url, name)

    def drop_database(self, url: str) -> None:
        name = urllib.parse.urlsplit(url).path.lstrip("/")
        with self.admin_connection() as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def _ensure_template(self, connection: psycopg.Connection[tuple[object, ...]]) -> None:
        if self._template_ready:
            return
        # Imported here: the store is what is under test, and this module must import without it.
        from imagegateway_server.storage.postgres import PostgresStore

        connection.execute(f'DROP DATABASE IF EXISTS "{TEMPLATE}" WITH (FORCE)')
        connection.execute(f'CREATE DATABASE "{TEMPLATE}"')

        async def migrate() -> None:
            store = PostgresStore(database_url(self.url, TEMPLATE))
            await store.open()
            await store.close()

        # In a thread of its own: the caller may be a fixture running inside the tests' event loop.
        with concurrent.futures.ThreadPoolExecutor(1) as thread:
            thread.submit(asyncio.run, migrate()).result()
        self._template_ready = True


def _newest_debian_bin() -> Path:
    found = [path for path in DEBIAN_ROOT.glob("*") if path.name.isdigit() and (path / "bin").is_dir()]
    versions = sorted((int(path.name), path / "bin") for path in found)
    return versions[-1][1] if versions else DEBIAN_ROOT / "15" / "bin"


def _wait_ready(url: str, deadline: float) -> None:
    while True:
        try:
            psycopg.connect(url, connect_timeout=2).close()
            return
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


@contextlib.contextmanager
def running_postgres() -> Iterator[PostgresServer]:
    """The given server (IMAGEGW_TEST_POSTGRES_URL) or a new cluster, stopped and removed at the end."""
    given = os.environ.get("IMAGEGW_TEST_POSTGRES_URL", "")
    if given:
        yield PostgresServer(given)
        return
    bin_dir = Path(os.environ.get("IMAGEGW_TEST_POSTGRES_BIN", "") or _newest_debian_bin())
    if not (bin_dir / "initdb").exists():
        raise RuntimeError(
            f"PostgreSQL binaries not found in {bin_dir}; install postgresql or set IMAGEGW_TEST_POSTGRES_URL"
        )
    # Not under pytest's tmp_path: its parents are 0700 root, which the postgres OS user cannot enter.
    root = Path(tempfile.mkdtemp(prefix="imagegw-pg-"))
    data_dir, socket_dir = root / "data", root / "socket"
    socket_dir.mkdir()
    password_file = root / "password"
    password_file.write_text(PASSWORD + "\n")
    if os.geteuid() == 0:
        shutil.chown(root, _OS_USER)
        shutil.chown(socket_dir, _OS_USER)
        shutil.chown(password_file, _OS_USER)
    port = _free_port()
    url = f"postgresql://{USER}:{PASSWORD}@127.0.0.1:{port}/postgres"
    server = PostgresServer(url, data_dir=data_dir, bin_dir=bin_dir)
    subprocess.run(
        server._as_owner(
            "initdb",
            "-D",
            data_dir,
            "-U",
            USER,
            f"--pwfile={password_file}",
            "--auth-local=trust",
            "--auth-host=scram-sha-256",
            "--encoding=UTF8",
            "--locale=C.UTF-8",
            "--no-sync",
        ),
        check=True,
        capture_output=True,
    )
    settings = {
        "listen_addresses": "'127.0.0.1'",
        "port": str(port),
        "unix_socket_directories": f"'{socket_dir}'",
        "fsync": "off",
        "synchronous_commit": "off",
        "full_page_writes": "off",
        "max_connections": "200",
        "shared_buffers": "32MB",
    }
    with (data_dir / "postgresql.conf").open("a") as conf:
        conf.writelines(f"{key} = {value}\n" for key, value in settings.items())
    try:
        server.start()
        _wait_ready(url, time.monotonic() + 30)
        yield server
    finally:
        with contextlib.suppress(subprocess.CalledProcessError):
            subprocess.run(
                server._as_owner("pg_ctl", "stop", "-D", data_dir, "-m", "immediate"), check=True, capture_output=True
            )
        shutil.rmtree(root, ignore_errors=True)
