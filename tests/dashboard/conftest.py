"""Dashboard fixtures: a database holding a twin's morning, a real dashboard process, and
headless Chromium driven through Debian's chromedriver.

The database is filled the way ingest fills it (``cloud.fse.offline.store_offline``:
validation, the FSE of each flow, COPY writes), with prod and dev flows whose simulated
estimators differ, so that the flow picker and the comparison have something to show.
"""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from cloud.fse import FacilityStateEstimator
from cloud.fse.offline import store_offline
from cloud.schema import create_login_user, migrate
from cloud.store import Store
from locowatch.db.scratch import scratch_database
from sim.estimations import EstimatorNoise, twin_estimations
from sim.recording import write_facility
from sim.streaming import free_port
from sim.twin import Twin

REPO = Path(__file__).resolve().parents[2]
FILLED_S = 240.0  # the first four minutes of the twin's day are in the database
AGES_IGNORED = ("--late-after", "604800", "--silent-after", "604800")  # a week


@dataclass
class DashboardDb:
    owner_url: str
    reader_url: str
    twin: Twin
    facility_file: Path
    fses: dict[str, FacilityStateEstimator] = field(default_factory=dict)
    filled_until: dict[str, float] = field(default_factory=dict)  # flow -> scenario time

    def extend(self, seconds: float, flows: tuple[str, ...] = ("prod",)) -> None:
        """Go on with the twin's day for ``seconds`` more (new rows while a page is open)."""
        for flow in flows:
            start = self.filled_until[flow]
            self.fill(start, start + seconds, (flow,))

    def fill(self, start_s: float, end_s: float, flows: tuple[str, ...] = ("prod", "dev")) -> None:
        """Write the twin's estimations and state of [start_s, end_s) for ``flows``."""
        store = Store(self.owner_url, max_connections=2)
        store.open()
        try:
            for flow, seed in (("prod", 0), ("dev", 1)):
                if flow not in flows:
                    continue
                noise = EstimatorNoise() if flow == "prod" else EstimatorNoise(merge_rate=0.2)
                envelopes = twin_estimations(
                    self.twin, flows=(flow,), start_s=start_s, end_s=end_s, noise=noise, seed=seed
                )
                fse = self.fses.setdefault(flow, FacilityStateEstimator(self.twin.facility, flow))
                store_offline(
                    store, self.twin.facility, (flow,), envelopes, f"gw-{flow}", fses={flow: fse}
                )
                self.filled_until[flow] = end_s
        finally:
            store.close()


@pytest.fixture(scope="session")
def dashboard_db(
    db_server_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[DashboardDb]:
    twin = Twin()
    folder = tmp_path_factory.mktemp("dashboard")
    facility_file = folder / "facility.yaml"
    write_facility(facility_file, twin.facility, "the twin depot, for the dashboard tests")
    other = twin.facility.model_copy(
        update={
            "facility": twin.facility.facility.model_copy(
                update={"id": "north-depot", "name": "North depot"}
            ),
            "flows": twin.facility.flows[:1],
        }
    )
    write_facility(folder / "north.yaml", other, "a second facility that sent nothing yet")
    with scratch_database(db_server_url, "locowatch_dash") as url:
        migrate(url)
        reader = create_login_user(url, "locowatch_dashboard_test", "reader")
        db = DashboardDb(url, reader.url, twin, facility_file)
        db.fill(0.0, FILLED_S)
        yield db


@dataclass
class DashboardServer:
    url: str  # the page, with its prefix
    process: subprocess.Popen[bytes]
    log: Path

    def get(self, path: str, auth: tuple[str, str] | None = None) -> tuple[int, bytes]:
        request = urllib.request.Request(self.url + path)
        if auth:
            import base64

            token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
            request.add_header("Authorization", f"Basic {token}")
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as error:
            return error.code, error.read()


def start_dashboard(
    db_url: str,
    facility_file: Path,
    log: Path,
    *extra: str,
    prefix: str = "/lw/",
    port: int | None = None,
) -> DashboardServer:
    port = port or free_port()
    command = [
        sys.executable, "-m", "locowatch", "dashboard", "--db", db_url,
        "--facility", str(facility_file), "--port", str(port), "--url-prefix", prefix, *extra,
    ]  # fmt: skip
    sink = log.open("ab")
    process = subprocess.Popen(command, cwd=REPO, stdout=sink, stderr=subprocess.STDOUT)
    path = "/" + prefix.strip("/") + "/" if prefix.strip("/") else "/"  # as the app has it
    server = DashboardServer(f"http://127.0.0.1:{port}{path}", process, log)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the dashboard exited: {log.read_text(errors='replace')}")
        try:
            status, _ = server.get("healthz")
            if status in (200, 503):
                return server
        except OSError:
            pass
        time.sleep(0.2)
    process.kill()
    raise RuntimeError(f"the dashboard did not start: {log.read_text(errors='replace')}")


def stop_dashboard(server: DashboardServer) -> None:
    server.process.terminate()
    try:
        server.process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        server.process.kill()


@pytest.fixture(scope="module")
def dashboard(
    dashboard_db: DashboardDb, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[DashboardServer]:
    log = tmp_path_factory.mktemp("dashboard-log") / "dashboard.log"
    # The twin's morning lies hours back: judged against the clock, every report of it is
    # silent. These pages are about the data; truthful health has its own test.
    server = start_dashboard(
        dashboard_db.reader_url, dashboard_db.facility_file, log, *AGES_IGNORED
    )
    yield server
    stop_dashboard(server)
