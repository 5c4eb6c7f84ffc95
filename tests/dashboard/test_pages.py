"""The dashboard in a real browser: what a shift manager sees and does."""

from __future__ import annotations

import csv
import io
import os
import time
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

from tests.dashboard.conftest import DashboardDb, DashboardServer
from tests.fixtures.browser import bar_labels, severe_console_errors, wait_for

pytestmark = [pytest.mark.db, pytest.mark.slow]


def latest(db: DashboardDb, flow: str) -> tuple[Any, list[dict[str, Any]]]:
    with psycopg.connect(db.owner_url) as conn:
        row = conn.execute(
            "SELECT time, locomotives FROM state_snapshots WHERE flow = %s "
            "ORDER BY time DESC LIMIT 1",
            (flow,),
        ).fetchone()
    assert row is not None
    return row[0], row[1]


def test_the_page_shows_the_locomotives_in_the_database(
    browser: WebDriver, dashboard: DashboardServer, dashboard_db: DashboardDb
) -> None:
    browser.get(dashboard.url)
    _, locos = latest(dashboard_db, "prod")
    assert locos, "the twin's morning should have locomotives inside"
    labels = wait_for(lambda: bar_labels(browser, "map"), what="locomotive bars")
    expected = sorted(" · ".join(p for p in (x.get("plate"), x.get("series")) if p) or x["id"]
                      for x in locos)  # fmt: skip
    assert sorted(labels) == expected
    inside = browser.find_element(By.ID, "kpi-inside").text
    assert inside == str(len(locos))
    browser.save_screenshot("/tmp/dash.png")
    assert severe_console_errors(browser) == []


def pick(browser: WebDriver, dropdown_id: str, option: str) -> None:
    """Choose ``option`` in a dcc.Dropdown the way a user does: open it, click the option."""
    browser.find_element(By.ID, dropdown_id).click()
    choice = wait_for(
        lambda: next(
            (e for e in browser.find_elements(By.CSS_SELECTOR, "[role=option]")
             if e.text.strip() == option),
            None,
        ),
        what=f"option {option!r} of #{dropdown_id}",
    )  # fmt: skip
    choice.click()


def shown_time(db: DashboardDb, flow: str) -> str:
    at, _ = latest(db, flow)
    return f"{at.astimezone(ZoneInfo(db.twin.facility.facility.timezone)):%Y-%m-%d %H:%M:%S}"


def test_the_live_map_follows_new_state_rows(
    browser: WebDriver, dashboard: DashboardServer, dashboard_db: DashboardDb
) -> None:
    browser.get(dashboard.url)
    before = shown_time(dashboard_db, "prod")
    wait_for(lambda: before in browser.find_element(By.ID, "as-of").text, what="first state")
    dashboard_db.extend(20)
    after = shown_time(dashboard_db, "prod")
    assert after > before
    wait_for(lambda: after in browser.find_element(By.ID, "as-of").text, what="pushed update")
    _, locos = latest(dashboard_db, "prod")
    assert browser.find_element(By.ID, "kpi-inside").text == str(len(locos))
    assert severe_console_errors(browser) == []


def test_the_flow_picker_and_the_comparison(
    browser: WebDriver, dashboard: DashboardServer, dashboard_db: DashboardDb
) -> None:
    browser.get(dashboard.url)
    wait_for(lambda: bar_labels(browser, "map"), what="the prod map")
    pick(browser, "flow", "dev")
    dev_time = shown_time(dashboard_db, "dev")
    wait_for(lambda: "dev:" in title(browser, "map"), what="the dev map")
    assert dev_time in browser.find_element(By.ID, "as-of").text
    _, dev = latest(dashboard_db, "dev")
    assert len(bar_labels(browser, "map")) == len(dev)

    pick(browser, "compare", "prod")
    panel = browser.find_element(By.ID, "compare-panel")
    wait_for(panel.is_displayed, what="the comparison panel")
    wait_for(lambda: "prod:" in title(browser, "map-compare"), what="the prod map beside dev")
    lines = browser.execute_script(
        "return document.querySelector('#disagreement .js-plotly-plot').data.map(t => t.y.length);"
    )
    assert len(lines) == 3 and min(lines) > 10, "count, position and identity over time"
    assert severe_console_errors(browser) == []


def title(browser: WebDriver, graph_id: str) -> str:
    return str(
        browser.execute_script(
            "const g = document.querySelector(arguments[0] + ' .js-plotly-plot');"
            "return g && g.layout && g.layout.title ? g.layout.title.text : '';",
            f"#{graph_id}",
        )
    )


def test_the_visits_csv_download_matches_the_report(
    browser: WebDriver,
    dashboard: DashboardServer,
    dashboard_db: DashboardDb,
    download_dir: Path,
    locowatch_cli: Any,
) -> None:
    browser.get(dashboard.url)
    wait_for(lambda: browser.find_elements(By.CSS_SELECTOR, "#visits td"), what="visits table")
    for old in download_dir.glob("*.csv"):
        old.unlink()
    browser.find_element(By.ID, "download-csv").click()
    path = wait_for(lambda: next(download_dir.glob("*-visits-*.csv"), None), what="the CSV")
    with path.open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    at, _ = latest(dashboard_db, "prod")
    day = at.astimezone(ZoneInfo(dashboard_db.twin.facility.facility.timezone)).date()
    report = locowatch_cli(
        "report", "visits", "--from", day.isoformat(), "--flow", "prod", "--csv",
        "--db", dashboard_db.owner_url,
    )  # fmt: skip
    expected = list(csv.DictReader(io.StringIO(report.stdout)))
    assert rows and [r["loco_id"] for r in rows] == [r["loco_id"] for r in expected]
    assert [r["plate"] for r in rows] == [r["plate"] for r in expected]


def dark_cameras(browser: WebDriver) -> set[str]:
    rows = browser.find_elements(By.XPATH, "//div[@id='cameras']//tr[td]")
    return {row.find_element(By.TAG_NAME, "td").text for row in rows if "DARK" in row.text}


def test_a_dark_camera_raises_the_alarm(
    browser: WebDriver, dashboard: DashboardServer, dashboard_db: DashboardDb
) -> None:
    browser.get(dashboard.url)
    cameras = [c.id for c in dashboard_db.twin.facility.cameras]
    wait_for(lambda: len(browser.find_elements(By.XPATH, "//div[@id='cameras']//tr[td]"))
             == len(cameras), what="the camera table")  # fmt: skip
    dark_before = dark_cameras(browser)  # the twin's own faults may have some down now
    camera = next(c for c in cameras if c not in dark_before)
    with psycopg.connect(dashboard_db.owner_url) as conn:
        conn.execute(
            "INSERT INTO camera_health (time, facility_id, gateway_id, seq, camera_id, state, "
            "fps, last_frame_time, reconnects, decode_errors, message) "
            "SELECT max(time) + INTERVAL '1 second', facility_id, 'gw-prod', 0, %s, "
            "'reconnecting', 0, NULL, 3, 0, 'connection refused' "
            "FROM camera_health GROUP BY facility_id",
            (camera,),
        )

    def alarm_names_it() -> str | None:
        text = browser.find_element(By.ID, "camera-alarm").text
        return text if camera in text else None

    alarm = wait_for(alarm_names_it, what="the camera alarm")
    assert alarm.startswith(f"{len(dark_before) + 1} camera(s) dark")
    assert "alarm" in browser.find_element(By.ID, "camera-alarm").get_attribute("class")
    assert dark_cameras(browser) == dark_before | {camera}
    row = browser.find_element(
        By.XPATH, f"//div[@id='cameras']//tr[td[normalize-space(.)='{camera}']]"
    )
    assert "reconnecting" in row.text


def test_the_timeline_shows_where_each_locomotive_stood(
    browser: WebDriver, dashboard: DashboardServer, dashboard_db: DashboardDb
) -> None:
    """The timeline shows standing (from the FSE's motion events); the analysts' per-second
    station_stays view counts presence, moving in and out included. Every bar lies within
    a presence of the same locomotive at the same station, and every presence of more
    than a minute has its bar."""
    browser.get(dashboard.url)
    shown = wait_for(
        lambda: browser.execute_script(
            "const g = document.querySelector('#timeline .js-plotly-plot');"
            "return g && g.data && g.data[0].y.length ? "
            "g.data[0].y.map((s, i) => [s, g.data[0].customdata[i], g.data[0].base[i], "
            "g.data[0].x[i]]) : null;"
        ),
        what="timeline bars",
    )
    tz = ZoneInfo(dashboard_db.twin.facility.facility.timezone)
    bars = []
    for station, loco_id, base, length_ms in shown:  # bases are the facility's wall clock
        start = datetime.fromisoformat(base).replace(tzinfo=tz).timestamp()
        bars.append((station, loco_id, start, start + length_ms / 1000))
    with psycopg.connect(dashboard_db.owner_url) as conn:
        rows = conn.execute(
            "SELECT station_id, loco_id, extract(epoch FROM from_time)::float8, "
            "extract(epoch FROM to_time)::float8 FROM station_stays WHERE flow = 'prod'"
        ).fetchall()
    presence = [(station, loco, start, end) for station, loco, start, end in rows]
    assert len(bars) >= 5
    for station, loco_id, start, end in bars:
        assert any(
            s == station and lo == loco_id and a - 2 <= start and end <= b + 2
            for s, lo, a, b in presence
        ), f"{loco_id} standing at {station} outside any presence there"
    for station, loco_id, a, b in presence:
        if b - a > 60:
            found = any(
                s == station and lo == loco_id and a - 2 <= start <= b for s, lo, start, _ in bars
            )
            assert found, f"no bar for {loco_id} at {station}"


def test_screenshots_of_the_map_and_the_timeline(
    browser: WebDriver, dashboard: DashboardServer, tmp_path: Path
) -> None:
    """The views pictured in docs/dashboard.md: LOCOWATCH_SCREENSHOTS=DIR keeps them."""
    out = Path(os.environ.get("LOCOWATCH_SCREENSHOTS") or tmp_path)
    out.mkdir(parents=True, exist_ok=True)
    browser.get(dashboard.url)
    wait_for(lambda: bar_labels(browser, "map"), what="the map")
    wait_for(lambda: title(browser, "timeline").startswith("prod"), what="the timeline")
    pick(browser, "compare", "dev")
    wait_for(lambda: "dev:" in title(browser, "map-compare"), what="the comparison")
    time.sleep(1.0)  # let plotly finish its transitions
    shots = {
        "dashboard-live.png": "//header/..",
        "dashboard-timeline.png": "//section[.//div[@id='timeline']]",
        "dashboard-compare.png": "//section[@id='compare-panel']",
    }
    for name, xpath in shots.items():
        assert browser.find_element(By.XPATH, xpath).screenshot(str(out / name))
        assert (out / name).stat().st_size > 20_000, f"{name} looks empty"


def test_open_alerts_show_and_go_when_resolved(
    browser: WebDriver, dashboard: DashboardServer, dashboard_db: DashboardDb
) -> None:
    """Alerts the plant service fires (cloud/plant) are listed, worst first, and leave the
    page when resolved, with no new state meanwhile."""
    fid = dashboard_db.twin.facility.facility.id
    browser.get(dashboard.url)
    wait_for(lambda: bar_labels(browser, "map"), what="the page")
    with psycopg.connect(dashboard_db.owner_url) as conn:
        conn.execute(
            "INSERT INTO alerts (facility_id, flow, rule, subject, severity, message, fired_at) "
            "VALUES (%s, 'health', 'gateway-silent', 'gw-prod', 'critical', "
            "'gateway gw-prod: no report since 08:05', now()), "
            "(%s, 'prod', 'long-dwell', 'fse-3', 'warning', 'fse-3 at T2-S1 for 49.0 h', now())",
            (fid, fid),
        )
    try:
        items = wait_for(
            lambda: [e.text for e in browser.find_elements(By.CSS_SELECTOR, "#alerts li")],
            what="the alerts",
        )
        assert items[0].startswith("gateway-silent: gateway gw-prod: no report since 08:05")
        assert items[1].startswith("long-dwell: fse-3 at T2-S1 for 49.0 h")
        with psycopg.connect(dashboard_db.owner_url) as conn:
            conn.execute("UPDATE alerts SET resolved_at = now() WHERE rule = 'gateway-silent'")
        wait_for(
            lambda: len(browser.find_elements(By.CSS_SELECTOR, "#alerts li")) == 1,
            what="the resolved alert gone",
        )
    finally:
        with psycopg.connect(dashboard_db.owner_url) as conn:
            conn.execute("DELETE FROM alerts")
