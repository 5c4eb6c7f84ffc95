"""Facility scoping in a real browser: a user of one depot gets no page, data or callback
of another, whatever the browser sends."""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

from tests.dashboard.conftest import DashboardDb, DashboardServer, start_dashboard, stop_dashboard
from tests.dashboard.test_service import add_user
from tests.fixtures.browser import bar_labels, wait_for

pytestmark = [pytest.mark.db, pytest.mark.slow]

NORTH = ("north", "north-depot pass")  # sees the North depot only (it has no data yet)
TWIN = ("twin", "twin-depot pass")  # sees the twin depot


@pytest.fixture(scope="module")
def scoped(
    dashboard_db: DashboardDb, tmp_path_factory: pytest.TempPathFactory, locowatch_cli: Any
) -> Iterator[DashboardServer]:
    folder = tmp_path_factory.mktemp("tenancy")
    users = folder / "users.yaml"
    add_user(locowatch_cli, users, *NORTH, "north-depot")
    add_user(locowatch_cli, users, *TWIN, dashboard_db.twin.facility.facility.id)
    north_file = dashboard_db.facility_file.with_name("north.yaml")
    server = start_dashboard(
        dashboard_db.reader_url, dashboard_db.facility_file, folder / "dashboard.log",
        "--facility", str(north_file), "--auth-file", str(users),
    )  # fmt: skip
    yield server
    stop_dashboard(server)


def open_as(browser: WebDriver, server: DashboardServer, user: tuple[str, str]) -> None:
    """Open the page logged in as ``user``, as after the browser's login prompt: the
    credentials go into its cache by an address that carries them (a page opened at such an
    address may not fetch), and from there with the page's callbacks and websocket."""
    login = server.url.replace("http://", f"http://{user[0]}:{quote(user[1])}@", 1)
    browser.get(login + "_dash-layout")
    browser.get(server.url)


def history_callback(server: DashboardServer, user: tuple[str, str], facility: str) -> Any:
    """The history callback's request as a browser sends it, forged for ``facility``:
    (status, visits rows or None)."""
    body = {
        "output": "..timeline.figure...visits.data..",
        "outputs": [{"id": "timeline", "property": "figure"}, {"id": "visits", "property": "data"}],
        "inputs": [
            {"id": "facility", "property": "value", "value": facility},
            {"id": "flow", "property": "value", "value": "prod"},
            {"id": "range", "property": "start_date", "value": "2000-01-01"},
            {"id": "range", "property": "end_date", "value": "2100-01-01"},
            {"id": "refresh-history", "property": "n_clicks", "value": None},
        ],
        "changedPropIds": ["facility.value"],
        "state": [],
    }
    request = urllib.request.Request(
        server.url + "_dash-update-component",
        data=json.dumps(body).encode(),
        headers={
            "Content-Type": "application/json",
            "Authorization": "Basic " + base64.b64encode(":".join(user).encode()).decode(),
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            payload = response.read()
            status = response.status
    except urllib.error.HTTPError as error:
        return error.code, None
    if status != 200:
        return status, None
    return status, json.loads(payload)["response"]["visits"]["data"]


def test_a_user_of_one_depot_gets_no_page_data_or_callback_of_another(
    browser: WebDriver, scoped: DashboardServer, dashboard_db: DashboardDb
) -> None:
    twin_id = dashboard_db.twin.facility.facility.id
    # The twin depot's own user sees its locomotives and visits.
    status, visits = history_callback(scoped, TWIN, twin_id)
    assert status == 200 and visits, "the twin depot's morning has visits"

    # The North depot's user: its page lists North only, and the twin's name is nowhere.
    status, layout = scoped.get("_dash-layout", auth=NORTH)
    assert status == 200
    assert (
        b"North depot" in layout and dashboard_db.twin.facility.facility.name.encode() not in layout
    )
    open_as(browser, scoped, NORTH)
    wait_for(
        lambda: browser.find_element(By.ID, "facility-name").text == "North depot", what="North"
    )
    # Forged in the page: the facility picker set to the twin depot (no such option shown).
    browser.execute_script(
        "window.dash_clientside.set_props('facility', {value: arguments[0]});", twin_id
    )
    wait_for(lambda: "not granted" in browser.find_element(By.ID, "as-of").text, what="refusal")
    assert not bar_labels(browser, "map")
    # Forged by hand: the history callback for the twin depot with North's login.
    assert history_callback(scoped, NORTH, twin_id) == (204, None)
    status, metrics = scoped.get("metrics")
    assert b"locowatch_dashboard_denied_total" in metrics
    denied = next(
        float(line.split()[-1]) for line in metrics.decode().splitlines()
        if line.startswith("locowatch_dashboard_denied_total")
    )  # fmt: skip
    assert denied >= 2  # the page's forged picker and the hand-made request

    # The twin's user in the same browser sees the twin depot's locomotives.
    open_as(browser, scoped, TWIN)
    wait_for(lambda: bar_labels(browser, "map"), what="the twin depot's locomotives")
