"""A whole gateway as real processes: ``locowatch edge run`` on RTSP twin cameras, into
real cloud ingest and TimescaleDB."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest

from edge.plan import gateway_plan
from locowatch.facility import load_facility
from locowatch.facility.config import FacilityConfig
from sim.recording import record, write_facility
from sim.scenario import ScenarioSpec
from sim.streaming import TwinStreamer, free_port
from sim.twin import Twin, TwinSpec
from tests.fixtures.ingest import GATEWAY, TOKEN, IngestFactory

CAMERAS = ("cam-02", "cam-03", "cam-04")
SPEC = TwinSpec(seed=0, scenario=ScenarioSpec(duration_s=600))
WINDOW = (176.0, 196.0)  # locomotives pull in under these cameras and stop


@pytest.fixture(scope="module")
def recording(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three neighbouring twin cameras, 20 s at 2 fps (replayed in a loop over RTSP)."""
    folder = tmp_path_factory.mktemp("recording")
    return record(SPEC, folder, 2.0, list(CAMERAS), progress=False, window=WINDOW)


def gateway_file(folder: Path, urls: dict[str, str], ingest_target: str) -> Path:
    config: FacilityConfig = Twin(SPEC).facility
    raw = config.model_dump(mode="json", exclude_none=True)
    raw["cameras"] = [
        {**camera, "source": urls[camera["id"]], "watchdog_timeout_s": 5}
        for camera in raw["cameras"]
        if camera["id"] in urls
    ]
    (folder / "gateway.token").write_text(TOKEN + "\n")
    raw["gateway"] = {
        "id": GATEWAY,
        "data_dir": str(folder / "gateway"),
        "cloud": {
            "endpoint": ingest_target,
            "tls": False,
            "token_file": str(folder / "gateway.token"),
        },
        "services": {"base_port": free_port(), "metrics_base_port": free_port()},
    }
    path = folder / "facility.yaml"
    write_facility(path, FacilityConfig.model_validate(raw), "test gateway")
    return path


@pytest.fixture
def gateway(
    recording: Path, ingest_factory: IngestFactory, tmp_path: Path
) -> Iterator[tuple[Path, subprocess.Popen[bytes], str]]:
    ingest = ingest_factory()
    with TwinStreamer(list(CAMERAS), recording=recording, fps=2.0) as streamer:
        path = gateway_file(tmp_path, streamer.urls(), ingest.target)
        log = (tmp_path / "gateway.log").open("wb")
        process = subprocess.Popen(
            [sys.executable, "-m", "locowatch", "edge", "run", "--config", str(path)],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        try:
            yield path, process, ingest.db_url
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
                process.wait(30)
            log.close()


def wait_for(what: str, check: Callable[[], bool], timeout_s: float, log: Path) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(1.0)
    raise AssertionError(f"timed out waiting for {what}\n{log.read_text()[-6000:]}")


def count(db_url: str, sql: str) -> int:
    with psycopg.connect(db_url) as conn:
        return int(conn.execute(sql).fetchone()[0])  # type: ignore[index]


def service_pids(marker: str) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            words = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if marker.encode() in words and b"edge" in words:
            pids.append(int(entry.name))
    return pids


def test_a_gateway_streams_every_camera_and_flow_and_restarts_a_killed_estimator(
    gateway: tuple[Path, subprocess.Popen[bytes], str], tmp_path: Path
) -> None:
    path, process, db_url = gateway
    log = tmp_path / "gateway.log"
    positions = "SELECT count(DISTINCT (camera_id, flow)) FROM position_estimations"
    wait_for("positions of every camera and flow", lambda: count(db_url, positions) == 6, 240, log)
    wait_for(
        "series readings from the located crops",
        lambda: (
            count(db_url, "SELECT count(*) FROM attribute_estimations WHERE name = 'model'") > 0
        ),
        60,
        log,
    )
    wait_for(
        "camera health of every camera",
        lambda: count(db_url, "SELECT count(DISTINCT camera_id) FROM camera_health") == 3,
        60,
        log,
    )
    plan = gateway_plan(load_facility(path))
    position = next(s.name for s in plan.estimators if s.estimator and s.estimator.is_position)
    (pid,) = service_pids(position)
    os.kill(pid, signal.SIGKILL)
    killed_at = time.time()
    wait_for(
        "the supervisor to restart the position estimator",
        lambda: len(service_pids(position)) == 1 and service_pids(position) != [pid],
        60,
        log,
    )
    fresh = (
        "SELECT count(DISTINCT camera_id) FROM position_estimations "
        f"WHERE time > to_timestamp({killed_at + 1}) AND flow = 'prod'"
    )
    wait_for("positions of frames taken after the restart", lambda: count(db_url, fresh) == 3,
             120, log)  # fmt: skip
    assert process.poll() is None, "the gateway itself kept running"
    os.killpg(process.pid, signal.SIGTERM)
    process.wait(30)
    assert not service_pids(str(path)), "every service stopped with the gateway"
