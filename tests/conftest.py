"""Shared fixtures: the test TimescaleDB.

Tests run against a real TimescaleDB: the server in ``LOCOWATCH_DB`` when set, else the
managed one (``make test`` starts it; this fixture starts it too when it is down). Each
test session gets its own fresh database, dropped at the end.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

import pytest

from locowatch.db.location import running_server_url
from locowatch.db.scratch import scratch_database

REPO = Path(__file__).resolve().parents[1]

# Cloud ingest as a real process (tests/cloud and the edge uplink's tests); a headless
# browser (the dashboard's pages and the end-to-end demo).
pytest_plugins = ["tests.fixtures.ingest", "tests.fixtures.browser"]


@pytest.fixture(scope="session")
def db_server_url() -> str:
    """URL of the server the tests use (any database on it)."""
    return running_server_url()


@pytest.fixture(scope="session")
def test_db_url(db_server_url: str) -> Iterator[str]:
    """A fresh database with the timescaledb extension, private to this test session."""
    with scratch_database(db_server_url, "locowatch_test") as url:
        yield url


class LocowatchCli(Protocol):
    def __call__(
        self, *args: str, env: dict[str, str] | None = None, input: str | None = None
    ) -> subprocess.CompletedProcess[str]: ...


@pytest.fixture(scope="session")
def locowatch_cli() -> LocowatchCli:
    """Run ``python -m locowatch ARGS`` as a user would, from the repository root."""

    def run(
        *args: str, env: dict[str, str] | None = None, input: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "locowatch", *args],
            input=input,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
            cwd=REPO,
            env=env,
        )

    return run


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked ``gpu`` run only where TensorRT, pycuda and a CUDA device are present."""
    gpu_items = [item for item in items if "gpu" in item.keywords]
    if not gpu_items:
        return
    from edge.engines import tensorrt_available

    if tensorrt_available():
        return
    skip = pytest.mark.skip(reason="needs an NVIDIA GPU with TensorRT and pycuda")
    for item in gpu_items:
        item.add_marker(skip)
