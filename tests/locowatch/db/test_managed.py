"""The managed TimescaleDB lifecycle, in a private home: up, up again, status, down, up."""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from locowatch.db import ManagedServer, default_home
from locowatch.db.install import debian_mirror

pytestmark = pytest.mark.db


@pytest.fixture
def private_home() -> Iterator[Path]:
    # Not under pytest's tmp_path: that is 0700 and the server's OS user must reach it.
    home = Path(tempfile.mkdtemp(prefix="locowatch-home-"))
    home.chmod(0o755)
    yield home
    ManagedServer(home).down()
    shutil.rmtree(home, ignore_errors=True)


@pytest.fixture
def locowatch(locowatch_cli: Any, private_home: Path) -> Callable[..., Any]:
    """The command line with its home in ``private_home`` and no LOCOWATCH_DB."""
    env = {**os.environ, "LOCOWATCH_HOME": str(private_home)}
    env.pop("LOCOWATCH_DB", None)
    return lambda *args: locowatch_cli(*args, env=env)


@pytest.mark.slow
def test_lifecycle_is_idempotent_and_keeps_data(
    private_home: Path, locowatch: Callable[..., Any]
) -> None:
    if default_home() == private_home:
        pytest.skip("LOCOWATCH_HOME points at the test home")
    first = locowatch("db", "up")
    assert first.returncode == 0, first.stderr
    url = first.stdout.strip()
    installed = locowatch("db", "install", "--check")  # what 'make' asks before using sudo
    assert installed.returncode == 0 and "with TimescaleDB" in installed.stdout
    server = ManagedServer(private_home)
    pid = server.pid()
    assert pid is not None
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE kept (x int)")
        conn.execute("INSERT INTO kept VALUES (42)")

    again = locowatch("db", "up")
    assert again.returncode == 0, again.stderr
    assert again.stdout.strip() == url
    assert server.pid() == pid, "a second 'db up' must not restart the server"

    status = locowatch("db", "status")
    assert status.returncode == 0, status.stderr
    assert "running" in status.stdout and "apache license" in status.stdout
    assert str(private_home) in status.stdout
    assert server.state_file.exists() and "***" in status.stdout  # password not printed

    assert locowatch("db", "url").stdout.strip() == url

    down = locowatch("db", "down")
    assert down.returncode == 0 and down.stdout.strip() == "stopped"
    assert server.pid() is None
    stopped = locowatch("db", "status")
    assert stopped.returncode == 3 and "stopped" in stopped.stdout

    # While it was down, someone else took its port: it moves, and the data stays.
    port = psycopg.conninfo.conninfo_to_dict(url)["port"]
    with socket.create_server(("127.0.0.1", int(port))):
        moved = locowatch("db", "up")
    assert moved.returncode == 0, moved.stderr
    new_url = moved.stdout.strip()
    assert new_url != url and f"port {port} is taken" in moved.stderr
    with psycopg.connect(new_url) as conn:
        assert conn.execute("SELECT x FROM kept").fetchall() == [(42,)]


def test_url_without_a_server_is_a_clear_error(locowatch: Callable[..., Any]) -> None:
    result = locowatch("db", "url")
    assert result.returncode == 1
    assert "run 'locowatch db up'" in result.stderr
    assert "Traceback" not in result.stderr


def test_external_server_given_by_url(
    db_server_url: str, private_home: Path, locowatch: Callable[..., Any]
) -> None:
    result = locowatch("db", "up", "--db", db_server_url)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == db_server_url
    assert not (private_home / "db").exists(), "--db must not create a managed server"

    refused = locowatch("db", "down", "--db", db_server_url)
    assert refused.returncode == 1 and "does not manage" in refused.stderr

    unreachable = locowatch("db", "up", "--db", "postgresql://x@127.0.0.1:9/none")
    assert unreachable.returncode == 1 and "cannot connect" in unreachable.stderr


@pytest.mark.parametrize(
    ("sources", "expected"),
    [
        # deb822 format with a snapshot comment above the URI
        (
            "Types: deb\n# http://snapshot.example/x\nURIs: http://mirror.example/debian\n"
            "Suites: bookworm\n\nTypes: deb\nURIs: http://mirror.example/debian-security\n",
            "http://mirror.example/debian",
        ),
        # one-line format with options
        (
            "deb [arch=amd64] http://ftp.example.org/debian bookworm main\n",
            "http://ftp.example.org/debian",
        ),
        # only a security mirror: fall back to the default archive
        (
            "deb http://security.debian.org/debian-security bookworm-security main\n",
            "http://deb.debian.org/debian",
        ),
    ],
)
def test_debian_mirror_is_taken_from_existing_sources(
    tmp_path: Path, sources: str, expected: str
) -> None:
    path = tmp_path / "debian.sources"
    path.write_text(sources)
    assert debian_mirror([path]) == expected
