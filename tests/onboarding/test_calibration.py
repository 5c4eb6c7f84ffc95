"""The installer's calibration page in a real browser (headless Chromium): points clicked
on a twin camera's frame, their facility coordinates typed, the pose solved live, saved
into the facility file, and the same pose as `locowatch config check` solves from it."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import requests
import yaml
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver

from locowatch.facility import load_facility
from locowatch.facility.geometry import CameraModel
from sim.streaming import free_port
from tests.conftest import REPO, LocowatchCli
from tests.fixtures.browser import wait_for

CAMERA = "cam-03"  # looks along T1 over 39.5-63.5 m
# Surveyed points an installer would pick: rail heads, a platform edge, marks on columns
# (facility metres; not all on one plane, so the pose is well posed)
WORLD = [
    (44.0, -0.76, 0.0), (44.0, 0.76, 0.0), (50.0, -0.76, 0.0), (50.0, 0.76, 0.0),
    (56.0, -2.5, 0.0), (47.0, 2.5, 0.0), (53.0, -2.0, 2.0), (59.0, 1.5, 3.0),
]  # fmt: skip


@pytest.fixture
def page(recording: Path, tmp_path: Path) -> Iterator[tuple[str, Path, CameraModel]]:
    """The page on a copy of the twin's facility file where the camera has a pose but no
    point pairs yet (an installer starting afresh); and the camera's true pose."""
    truth = load_facility(recording / "facility.truth.yaml")
    true_model = CameraModel.from_config(next(c for c in truth.cameras if c.id == CAMERA))
    raw = yaml.safe_load((recording / "facility.yaml").read_text())
    for camera in raw["cameras"]:
        if camera["id"] == CAMERA:
            camera.pop("point_pairs")
            camera["pose"] = {"rvec": [0.0, 1.0, 0.0], "tvec": [0.0, 0.0, 30.0]}  # a guess
    path = tmp_path / "facility.yaml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True, sort_keys=False))
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "locowatch", "calibrate", "--config", str(path), "--port",
         str(port)],
        cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}/"
    try:
        wait_for(lambda: requests.get(url, timeout=2).ok, 60, "the calibration page")
        yield url, path, true_model
    finally:
        process.terminate()
        process.wait(15)


def click_image_at(browser: WebDriver, u: float, v: float) -> None:
    """Click where image pixel (u, v) shows, as Plotly lays the frame out on the screen."""
    x, y, width, height = browser.execute_script(
        "const gd = document.querySelector('#image .js-plotly-plot');"
        "const xa = gd._fullLayout.xaxis, ya = gd._fullLayout.yaxis;"
        "const svg = gd.querySelector('.main-svg').getBoundingClientRect();"
        "return [xa._offset + xa.d2p(arguments[0]), ya._offset + ya.d2p(arguments[1]),"
        " svg.width, svg.height];",
        u, v,
    )  # fmt: skip
    layer = browser.find_element(By.CSS_SELECTOR, "#image .main-svg")
    ActionChains(browser).move_to_element_with_offset(
        layer, round(x - width / 2), round(y - height / 2)
    ).click().perform()


def marked(browser: WebDriver) -> int:
    """How many clicked points the figure on the page draws (it re-lays out as they come)."""
    return int(browser.execute_script(
        "const gd = document.querySelector('#image .js-plotly-plot');"
        "const t = gd && gd.data ? gd.data.find(t => t.name === 'clicked') : null;"
        "return t ? t.x.length : 0;"))  # fmt: skip


def typed(browser: WebDriver, element_id: str, value: float) -> None:
    field = browser.find_element(By.ID, element_id)
    field.clear()
    field.send_keys(f"{value}", Keys.ENTER)


def test_an_installer_calibrates_a_camera_by_clicking_points_on_its_frame(
    page: tuple[str, Path, CameraModel], browser: WebDriver, locowatch_cli: LocowatchCli
) -> None:
    url, path, true_model = page
    browser.get(f"{url}?camera={CAMERA}")
    wait_for(lambda: browser.execute_script(
        "const g = document.querySelector('#image .js-plotly-plot');"
        "return g && g.data && g.data.length > 0;"), 60, "the camera's frame")  # fmt: skip
    true_pixels = true_model.project(WORLD)
    for number, ((u, v), world) in enumerate(zip(true_pixels, WORLD, strict=True), start=1):
        click_image_at(browser, u, v)
        clicked = wait_for(
            lambda: [browser.find_element(By.ID, f"new-{c}").get_attribute("value") for c in "uv"]
            if all(browser.find_element(By.ID, f"new-{c}").get_attribute("value") for c in "uv")
            and browser.find_element(By.ID, "new-u").get_attribute("value") != str(-1)
            else None,
            10, "the clicked pixel in the u, v fields",
        )  # fmt: skip
        assert abs(float(clicked[0]) - u) <= 2.0 and abs(float(clicked[1]) - v) <= 2.0
        for name, value in zip("xyz", world, strict=True):
            typed(browser, f"new-{name}", value)
        rows = len(browser.find_elements(By.CSS_SELECTOR, "#pairs tbody tr"))
        browser.find_element(By.ID, "add").click()
        wait_for(lambda n=rows: len(browser.find_elements(By.CSS_SELECTOR, "#pairs tbody tr")) > n)
        wait_for(lambda n=number: marked(browser) == n, 20, "the point drawn on the frame")
        for name in "uv":  # the next click fills them afresh
            browser.execute_script(f"document.getElementById('new-{name}').value = ''")

    shown = wait_for(lambda: browser.find_element(By.ID, "rms").text, 20, "the solved pose")
    page_rms = float(re.search(r"([\d.]+) px", shown).group(1))  # type: ignore[union-attr]
    assert page_rms < 2.0  # clicks land within a pixel or two of the surveyed points

    browser.find_element(By.ID, "save").click()
    saved = wait_for(lambda: browser.find_element(By.ID, "saved").text, 20, "the save")
    assert saved.startswith(f"saved {len(WORLD)} point pairs of {CAMERA}"), saved
    assert list(path.parent.glob("facility.yaml.*.bak")), "the previous file is kept"

    checked = locowatch_cli("config", "check", str(path))
    assert checked.returncode == 0, checked.stderr
    line = next(x for x in checked.stdout.splitlines() if f"{CAMERA}: pose solved" in x)
    check_rms = float(re.search(r"RMS ([\d.]+) px", line).group(1))  # type: ignore[union-attr]
    assert abs(check_rms - page_rms) <= 0.1
    # and the pose is the camera's: surveyed points land where they truly show
    solved = CameraModel.from_config(next(c for c in load_facility(path).cameras if c.id == CAMERA))
    assert np.abs(solved.project(WORLD) - true_pixels).max() < 3.0


def test_the_calibration_page_is_for_installers_of_its_facility(
    recording: Path, tmp_path: Path, locowatch_cli: LocowatchCli
) -> None:
    facility = load_facility(recording / "facility.yaml").facility.id
    users = tmp_path / "users.yaml"
    for name, role, grant in (
        ("manager", "viewer", facility),  # sees the dashboard, calibrates nothing
        ("other-installer", "installer", "another-depot"),
        ("installer", "installer", facility),
    ):
        added = locowatch_cli(
            "dashboard", "user", "add", name, "--users-file", str(users), "--role", role,
            "--facility", grant, "--password-stdin", input=f"{name} password\n",
        )  # fmt: skip
        assert added.returncode == 0, added.stderr
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "locowatch", "calibrate", "--config",
         str(recording / "facility.yaml"), "--port", str(port), "--auth-file", str(users)],
        cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}/"
    try:
        wait_for(lambda: requests.get(url, timeout=2).status_code == 401, 60, "the page")
        status = {
            name: requests.get(url, auth=(name, f"{name} password"), timeout=10).status_code
            for name in ("manager", "other-installer", "installer")
        }
        assert status == {"manager": 403, "other-installer": 403, "installer": 200}
    finally:
        process.terminate()
        process.wait(15)
