"""The dashboard as a service: the interval fallback, basic auth, a URL prefix, health and
metrics, and a database that is away."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

from tests.conftest import LocowatchCli
from tests.dashboard.conftest import (
    DashboardDb,
    DashboardServer,
    start_dashboard,
    stop_dashboard,
)
from tests.dashboard.test_pages import pick, shown_time
from tests.fixtures.browser import bar_labels, wait_for

pytestmark = [pytest.mark.db, pytest.mark.slow]


@pytest.fixture
def server_log(tmp_path: Path) -> Path:
    return tmp_path / "dashboard.log"


@pytest.fixture
def interval_dashboard(dashboard_db: DashboardDb, server_log: Path) -> Iterator[DashboardServer]:
    server = start_dashboard(
        dashboard_db.reader_url, dashboard_db.facility_file, server_log, "--transport",
        "interval", prefix="/",
    )  # fmt: skip
    yield server
    stop_dashboard(server)


def test_the_interval_fallback_also_follows_new_rows(
    browser: WebDriver, interval_dashboard: DashboardServer, dashboard_db: DashboardDb
) -> None:
    browser.get(interval_dashboard.url)
    wait_for(lambda: bar_labels(browser, "map"), what="the map")
    before = shown_time(dashboard_db, "prod")
    dashboard_db.extend(15)
    after = shown_time(dashboard_db, "prod")
    assert after > before
    wait_for(lambda: after in browser.find_element(By.ID, "as-of").text, what="polled update")


def test_a_restarted_dashboard_picks_up_its_open_pages(
    browser: WebDriver, dashboard_db: DashboardDb, server_log: Path
) -> None:
    """A wall screen outlives a dashboard restart: its websocket reconnects and the push
    loop starts again, without anyone reloading the page."""
    server = start_dashboard(dashboard_db.reader_url, dashboard_db.facility_file, server_log)
    port = int(server.url.split(":")[2].split("/")[0])
    try:
        browser.get(server.url)
        before = shown_time(dashboard_db, "prod")
        wait_for(lambda: before in browser.find_element(By.ID, "as-of").text, what="the state")
        stop_dashboard(server)
        server = start_dashboard(
            dashboard_db.reader_url, dashboard_db.facility_file, server_log, port=port
        )
        dashboard_db.extend(10)
        after = shown_time(dashboard_db, "prod")
        wait_for(
            lambda: after in browser.find_element(By.ID, "as-of").text,
            timeout_s=60,
            what="updates after the restart",
        )
    finally:
        stop_dashboard(server)


def test_one_page_for_several_facilities(
    browser: WebDriver, dashboard_db: DashboardDb, server_log: Path
) -> None:
    north = dashboard_db.facility_file.with_name("north.yaml")
    server = start_dashboard(
        dashboard_db.reader_url, dashboard_db.facility_file, server_log, "--facility",
        str(north),
    )  # fmt: skip
    try:
        browser.get(server.url)
        wait_for(lambda: bar_labels(browser, "map"), what="the twin depot's map")
        pick(browser, "compare", "dev")
        pick(browser, "facility", "North depot")
        wait_for(
            lambda: browser.find_element(By.ID, "facility-name").text == "North depot",
            what="the second facility",
        )
        wait_for(
            lambda: "no state rows yet" in browser.find_element(By.ID, "as-of").text,
            what="an empty facility said so",
        )
        assert bar_labels(browser, "map") == []
        assert "(no comparison)" in browser.find_element(By.ID, "compare").text  # no dev there
        pick(browser, "facility", dashboard_db.twin.facility.facility.name)
        wait_for(lambda: bar_labels(browser, "map"), what="back to the twin depot")
    finally:
        stop_dashboard(server)


def add_user(
    locowatch_cli: LocowatchCli, users: Path, name: str, password: str, *grants: str
) -> None:
    """``locowatch dashboard user add`` as an admin types it (password on stdin)."""
    facilities = [arg for facility in grants for arg in ("--facility", facility)]
    result = locowatch_cli(
        "dashboard", "user", "add", name, "--users-file", str(users), *facilities,
        "--password-stdin", input=password + "\n",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr


def test_logins_guard_everything_but_health_and_metrics(
    dashboard_db: DashboardDb, server_log: Path, tmp_path: Path, locowatch_cli: LocowatchCli
) -> None:
    users = tmp_path / "users.yaml"
    add_user(
        locowatch_cli, users, "manager", "s3cret shift", dashboard_db.twin.facility.facility.id
    )
    assert "s3cret shift" not in users.read_text(encoding="utf-8")
    server = start_dashboard(
        dashboard_db.reader_url, dashboard_db.facility_file, server_log,
        "--auth-file", str(users), prefix="/depot/locowatch",
    )  # fmt: skip
    try:
        assert server.url.endswith("/depot/locowatch/")
        status, _ = server.get("")
        assert status == 401
        assert server.get("", auth=("manager", "wrong"))[0] == 401
        assert server.get("_dash-layout", auth=("intruder", "s3cret shift"))[0] == 401
        status, page = server.get("", auth=("manager", "s3cret shift"))
        assert status == 200 and b"/depot/locowatch/_dash-component-suites/" in page
        assert server.get("_dash-layout", auth=("manager", "s3cret shift"))[0] == 200
        assert server.get("healthz")[0] == 200
        status, metrics = server.get("metrics")
        assert status == 200 and b"locowatch_dashboard_refresh_seconds" in metrics
        assert b'locowatch_login_attempts_total{outcome="wrong_password"} 1.0' in metrics
        assert b'locowatch_login_attempts_total{outcome="unknown_user"} 1.0' in metrics
        # A user added while it runs can log in at once; no restart.
        add_user(locowatch_cli, users, "relief", "night shift!", "*")
        assert server.get("_dash-layout", auth=("relief", "night shift!"))[0] == 200
    finally:
        stop_dashboard(server)
    assert "login failed: intruder" in server_log.read_text(encoding="utf-8")
    assert "s3cret shift" not in server_log.read_text(encoding="utf-8")


def test_an_old_sha256_users_file_is_refused_with_how_to_migrate(
    dashboard_db: DashboardDb, tmp_path: Path, locowatch_cli: LocowatchCli
) -> None:
    users = tmp_path / "users"
    users.write_text(f"manager:{hashlib.sha256(b'pw').hexdigest()}\n", encoding="utf-8")
    result = locowatch_cli(
        "dashboard", "--db", dashboard_db.reader_url, "--facility",
        str(dashboard_db.facility_file), "--auth-file", str(users),
    )  # fmt: skip
    assert result.returncode == 2
    assert f"{users}:1: an unsalted SHA-256 password line, no longer accepted" in result.stderr
    assert "locowatch dashboard user add NAME --users-file NEW" in result.stderr


def test_without_its_database_the_page_loads_and_health_says_so(
    browser: WebDriver, dashboard_db: DashboardDb, server_log: Path
) -> None:
    from sim.streaming import free_port

    nowhere = f"postgresql://reader@127.0.0.1:{free_port()}/locowatch"
    server = start_dashboard(nowhere, dashboard_db.facility_file, server_log)
    try:
        status, body = server.get("healthz")
        assert status == 503 and b"database unavailable" in body
        opened = time.monotonic()
        browser.get(server.url)
        wait_for(lambda: browser.find_element(By.ID, "facility-name").text, what="the header")
        wait_for(
            lambda: "cannot read the database" in browser.find_element(By.ID, "as-of").text,
            what="the page saying the database is away",
        )
        # Once the pool failed to connect, each panel waits 0.5 s, not the pool's 5 s: the
        # page says so in seconds (15 s when each waited 5 s).
        assert time.monotonic() - opened < 8.0
        assert server.process.poll() is None
    finally:
        stop_dashboard(server)
    assert "live refresh failed" in server_log.read_text(encoding="utf-8")


def test_the_feed_rebuilds_only_the_part_whose_rows_changed(dashboard_db: DashboardDb) -> None:
    """A camera report does not rebuild (or resend) the map; a new snapshot does not
    re-read the cameras; nothing new costs only the version probe."""
    import psycopg

    from dashboard.live import LiveFeed, ViewKey
    from dashboard.queries import DashboardReader

    facility = dashboard_db.twin.facility
    reader = DashboardReader(dashboard_db.reader_url)
    reader.open(wait=True)
    try:
        feed = LiveFeed(reader, {facility.facility.id: facility})
        key = ViewKey(facility.facility.id, "prod")
        first = feed.current(key)
        assert first is not None and feed.current(key) is first
        with psycopg.connect(dashboard_db.owner_url) as conn:
            conn.execute(
                "INSERT INTO camera_health SELECT time + INTERVAL '1 s', facility_id, "
                "gateway_id, 0, camera_id, 'stalled', 0, last_frame_time, reconnects, "
                "decode_errors, 'frozen picture' FROM camera_health ORDER BY time DESC LIMIT 1"
            )
        second = feed.current(key)
        assert second is not None and second.state is first.state
        assert second.health.cameras != first.health.cameras
        with psycopg.connect(dashboard_db.owner_url) as conn:  # a snapshot, no camera report
            conn.execute(
                "INSERT INTO state_snapshots (time, facility_id, flow, written_at, "
                "locomotive_count, locomotives) SELECT time + INTERVAL '1 s', facility_id, "
                "flow, 'epoch', locomotive_count, locomotives FROM state_snapshots "
                "WHERE flow = 'prod' ORDER BY time DESC LIMIT 1"
            )
        third = feed.current(key)
        assert third is not None and third.health.cameras is second.health.cameras
        assert third.health.newest_state != second.health.newest_state
    finally:
        reader.close()
        with psycopg.connect(dashboard_db.owner_url) as conn:  # leave the day as it was
            conn.execute("DELETE FROM camera_health WHERE message = 'frozen picture'")
            conn.execute("DELETE FROM state_snapshots WHERE written_at = 'epoch'")


def test_a_gateway_that_stopped_looks_stopped(
    browser: WebDriver, dashboard_db: DashboardDb, server_log: Path
) -> None:
    """Reports that stop arriving turn amber, then red, on the page and in the metrics;
    the header says since when the state is not live. Nothing new is written meanwhile:
    the clock alone moves the page."""
    import psycopg

    cameras = len(dashboard_db.twin.facility.cameras)
    marker = "truthful health test"
    with psycopg.connect(dashboard_db.owner_url) as conn:  # the gateway reports now ...
        conn.execute(
            "INSERT INTO camera_health SELECT DISTINCT ON (camera_id) now(), facility_id, "
            "gateway_id, 0, camera_id, 'streaming', 2, now(), reconnects, decode_errors, %s "
            "FROM camera_health ORDER BY camera_id, time DESC",
            (marker,),
        )
        conn.execute(
            "INSERT INTO state_snapshots (time, facility_id, flow, written_at, "
            "locomotive_count, locomotives) SELECT now(), facility_id, flow, '2000-01-01', "
            "locomotive_count, locomotives FROM state_snapshots WHERE flow = 'prod' "
            "ORDER BY time DESC LIMIT 1"
        )
        conn.execute("UPDATE gateway_progress SET updated_at = now()")
    server = start_dashboard(
        dashboard_db.reader_url, dashboard_db.facility_file, server_log,
        "--late-after", "8", "--silent-after", "16",
    )  # fmt: skip
    try:  # ... and then nothing more comes
        browser.get(server.url)

        def shown(element_id: str, text: str, css: str) -> bool:
            element = browser.find_element(By.ID, element_id)
            return text in element.text and css in element.get_attribute("class").split()

        wait_for(lambda: shown("camera-alarm", f"all {cameras} cameras streaming", "all-clear"),
                 what="a live gateway")  # fmt: skip
        assert browser.find_element(By.ID, "as-of").text.startswith("live: state at")
        wait_for(lambda: shown("as-of", "NOT LIVE since", "late"), 15, "the state turning amber")
        assert shown("camera-alarm", f"{cameras} camera(s) with no report since", "warning")
        wait_for(lambda: shown("camera-alarm", "gateway gw-prod: no report since", "alarm"), 15,
                 "the gateway turning red")  # fmt: skip
        assert shown("as-of", "no new state for", "silent")
        silent = {row.find_element(By.TAG_NAME, "td").text
                  for row in browser.find_elements(By.XPATH, "//div[@id='cameras']//tr[td]")
                  if "SILENT" in row.text}  # fmt: skip
        assert len(silent) == cameras
        _, metrics = server.get("metrics")
        facility = dashboard_db.twin.facility.facility.id
        text = metrics.decode()
        assert (
            f'locowatch_dashboard_silent{{facility="{facility}",kind="camera",level="silent"}} '
            f"{cameras}.0" in text
        )
        assert (
            f'locowatch_dashboard_silent{{facility="{facility}",kind="gateway",level="silent"}} '
            "2.0" in text  # the prod and dev gateways of the fixture
        )
    finally:
        stop_dashboard(server)
        with psycopg.connect(dashboard_db.owner_url) as conn:
            conn.execute("DELETE FROM camera_health WHERE message = %s", (marker,))
            conn.execute("DELETE FROM state_snapshots WHERE written_at = '2000-01-01'")
