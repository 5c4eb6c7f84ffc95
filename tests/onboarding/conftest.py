"""Onboarding fixtures: a twin recording, and a real Label Studio server."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from locowatch.facility import load_facility
from locowatch.facility.config import FacilityConfig
from sim.recording import record, write_facility
from sim.scenario import ScenarioSpec
from sim.streaming import TwinStreamer, free_port
from sim.twin import TwinSpec

REPO = Path(__file__).resolve().parents[2]
CAMERAS = ("cam-02", "cam-03", "cam-04")
SPEC = TwinSpec(seed=0, scenario=ScenarioSpec(duration_s=600))
WINDOW = (176.0, 196.0)  # L015 pulls in under these cameras beside standing L014 and L006
CREDENTIALS = "installer:s3cret-pw"  # the login the twin's RTSP streams ask for
PASSWORD_ENV = "LW_TEST_CAMERA_PASSWORD"
LABEL_STUDIO_START_S = 240.0  # first start migrates its SQLite database: ~30-50 s here


@pytest.fixture(scope="session")
def recording(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The twin's footage of three cameras, 20 s at 2 fps: a recording replay reads."""
    folder = tmp_path_factory.mktemp("recording")
    return record(SPEC, folder, 2.0, list(CAMERAS), progress=False, window=WINDOW)


@dataclass(frozen=True)
class Recorded:
    folder: Path  # what `locowatch record` wrote
    config: Path  # the facility file it recorded with (RTSP sources)
    output: str  # what it printed
    without_login: str  # what opening a stream without the login gave


@pytest.fixture(scope="session")
def recorded(recording: Path, tmp_path_factory: pytest.TempPathFactory) -> Recorded:
    """`locowatch record` of the three twin cameras served over real RTSP for 9 s. The
    streams ask for a login, as IP cameras do; the facility file names it by reference
    (two cameras' password in an environment variable, one in a file)."""
    from edge.capture.sources import SourceError, SourceOptions, open_source

    folder = tmp_path_factory.mktemp("recorded")
    user, _, password = CREDENTIALS.partition(":")
    (folder / "cam-04.password").write_text(password + "\n", encoding="utf-8")
    by_file = {"username": user, "password_file": str(folder / "cam-04.password")}
    by_env = {"username": user, "password_env": PASSWORD_ENV}
    streamer = TwinStreamer(list(CAMERAS), recording=recording, fps=2.0, login=CREDENTIALS)
    with streamer:
        raw = load_facility(recording / "facility.yaml").model_dump(mode="json", exclude_none=True)
        raw["cameras"] = [
            {**camera, "source": streamer.urls()[camera["id"]],
             "credentials": by_file if camera["id"] == "cam-04" else by_env}
            for camera in raw["cameras"]
            if camera["id"] in CAMERAS
        ]  # fmt: skip
        config = folder / "facility.yaml"
        write_facility(config, FacilityConfig.model_validate(raw), "recorded over RTSP")
        try:
            open_source(streamer.urls()["cam-02"], SourceOptions(5.0, 5.0)).release()
            without_login = "opened"
        except SourceError as error:
            without_login = str(error)
        result = subprocess.run(
            [sys.executable, "-m", "locowatch", "record", "--config", str(config), "--out",
             str(folder / "recording"), "--minutes", "0.15", "--no-progress"],
            capture_output=True, text=True, timeout=120, check=False, cwd=REPO,
            env={**os.environ, PASSWORD_ENV: password},
        )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    return Recorded(folder / "recording", config, result.stdout, without_login)


@dataclass(frozen=True)
class LabelStudioServer:
    url: str
    token: str
    root: Path  # LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT: exported windows go under it

    def call_raw(self, method: str, path: str, body: object = None) -> requests.Response:
        response = requests.request(
            method, self.url + path, json=body, timeout=60,
            headers={"Authorization": f"Token {self.token}"},
        )  # fmt: skip
        response.raise_for_status()
        return response

    def call(self, method: str, path: str, body: object = None) -> Any:
        response = self.call_raw(method, path, body)
        return response.json() if response.content else None


@pytest.fixture(scope="session")
def label_studio(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabelStudioServer]:
    """Label Studio as `make label-studio` installs it, on a fresh SQLite database, with
    local files served from a scratch document root and a legacy API token (what the
    `locowatch label` commands use)."""
    binary = Path(
        os.environ.get("LOCOWATCH_LABEL_STUDIO", REPO / ".venv-labelstudio/bin/label-studio")
    )
    if not binary.is_file():
        pytest.fail(f"no Label Studio at {binary}: run `make label-studio` (make test does)")
    folder = tmp_path_factory.mktemp("label-studio")
    root = folder / "files"
    root.mkdir()
    port, token = free_port(), secrets.token_hex(20)
    env = {
        **os.environ,
        "LABEL_STUDIO_ENABLE_LEGACY_API_TOKEN": "true",
        "LABEL_STUDIO_LOCAL_FILES_SERVING_ENABLED": "true",
        "LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT": str(root),
    }
    log = (folder / "server.log").open("wb")
    process = subprocess.Popen(
        [str(binary), "start", "--no-browser", "--host", "127.0.0.1", "--port", str(port),
         "--data-dir", str(folder / "data"), "--username", "labeller@example.com",
         "--password", secrets.token_urlsafe(12), "--user-token", token],
        env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + LABEL_STUDIO_START_S
        while True:
            try:
                if requests.get(url + "/health", timeout=2).status_code == 200:
                    break
            except requests.RequestException:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(
                    f"Label Studio did not start:\n{(folder / 'server.log').read_text()[-4000:]}"
                )
            time.sleep(1.0)
        yield LabelStudioServer(url, token, root)
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(30)
        log.close()
