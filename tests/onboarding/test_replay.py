"""Recording cameras and replaying a recording through every flow, as a depot's team does:
``locowatch record`` on real RTSP twin cameras, ``locowatch replay`` as a user runs it."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import psycopg
import yaml

from edge.recordings import load_manifest
from sim.twin import Twin
from tests.conftest import LocowatchCli
from tests.onboarding.conftest import CAMERAS, CREDENTIALS, SPEC, Recorded

FRAMES = 3 * 40  # three cameras, 20 s at 2 fps


def replay(
    cli: LocowatchCli, recording: Path, state: Path, *more: str, config: Path | None = None
) -> str:
    config = config or recording / "facility.yaml"
    result = cli(
        "replay", "--config", str(config), "--recording", str(recording), "--state", str(state),
        "--no-progress", *more,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_a_recording_replays_every_frame_into_the_same_state_every_run(
    recording: Path, locowatch_cli: LocowatchCli, tmp_path: Path
) -> None:
    estimations = tmp_path / "estimations.bin"
    out = replay(
        locowatch_cli, recording, tmp_path / "first.jsonl", "--estimations", str(estimations)
    )
    assert f"{FRAMES} frames (0 refused)" in out, out
    # the flows compared (their position network is the same: they see the same bodies)
    assert "dev against prod, over 18 snapshots: the same count in 100.0%" in out, out
    replay(locowatch_cli, recording, tmp_path / "second.jsonl")
    first, second = lines(tmp_path / "first.jsonl"), lines(tmp_path / "second.jsonl")
    assert {s["flow"] for s in first} == {"prod", "dev"}
    assert first == second  # deterministic: a model version is scored on the same frames

    # On the recording's clock (the twin's scenario clock): the truth's locomotives, where
    # they are, and which they are
    truth = lines(recording / "ground_truth.jsonl")[-1]
    true = {loco["id"]: loco for loco in truth["locomotives"]}
    last = [s for s in first if s["flow"] == "prod"][-1]
    assert abs(last["time"] - Twin(SPEC).scenario.spec.start_time.timestamp() - 195.5) <= 1.0
    seen = sorted(last["locomotives"], key=lambda loco: loco["tail_m"])
    assert len(seen) == 3  # L015, L014, and the end of L006 that cam-04 sees
    for state, loco_id in zip(seen, ("L015", "L014"), strict=False):  # the demo's 0.5 m goal
        assert abs(state["tail_m"] - true[loco_id]["tail_m"]) < 0.5, (state, true[loco_id])
        assert abs(state["head_m"] - true[loco_id]["head_m"]) < 0.5, (state, true[loco_id])
    assert (seen[0]["series"], seen[0]["plate"]) == ("2ТЭ116", true["L015"]["plate"])

    # the kept estimations fuse into the same state without the networks, and into
    # another one with other FSE settings
    facility = recording / "facility.yaml"
    assert fuse(locowatch_cli, facility, estimations, tmp_path / "fused.jsonl") == 0
    assert lines(tmp_path / "fused.jsonl") == first
    stricter = yaml.safe_load(facility.read_text(encoding="utf-8"))
    for flow in stricter["flows"]:
        flow["fse"] = {**flow.get("fse", {}), "identify_min_votes": 100_000}
    other = tmp_path / "stricter.yaml"
    other.write_text(yaml.safe_dump(stricter, allow_unicode=True), encoding="utf-8")
    assert fuse(locowatch_cli, other, estimations, tmp_path / "strict.jsonl") == 0
    strict = lines(tmp_path / "strict.jsonl")
    assert len(strict) == len(first)
    assert not any(loco["series"] or loco["plate"] for s in strict for loco in s["locomotives"])
    cut = tmp_path / "cut.bin"
    cut.write_bytes(estimations.read_bytes()[:-3])
    result = locowatch_cli(
        "fuse", "--config", str(facility), "--estimations", str(cut), "--state", str(tmp_path / "x")
    )
    assert result.returncode == 2 and "ends inside an envelope" in result.stderr, result.stderr


def fuse(cli: LocowatchCli, config: Path, estimations: Path, state: Path) -> int:
    result = cli(
        "fuse", "--config", str(config), "--estimations", str(estimations), "--state", str(state)
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "fused" in result.stdout and "prod:" in result.stdout, result.stdout
    return result.returncode


def test_a_replay_is_stored_for_the_reports_but_never_mixed_into_stored_state(
    recording: Path, locowatch_cli: LocowatchCli, cloud_db: str, tmp_path: Path
) -> None:
    state = tmp_path / "state.jsonl"
    out = replay(locowatch_cli, recording, state, "--flow", "prod", "--store", "--db", cloud_db)
    assert "stored in the database" in out
    with psycopg.connect(cloud_db) as conn:
        rows = conn.execute("SELECT count(*), min(flow) FROM state_snapshots").fetchone()
        estimations = conn.execute("SELECT count(*) FROM position_estimations").fetchone()
    assert rows == (len(lines(state)), "prod") and estimations and estimations[0] > 0
    again = locowatch_cli(
        "replay", "--config", str(recording / "facility.yaml"), "--recording", str(recording),
        "--state", str(tmp_path / "again.jsonl"), "--flow", "prod", "--store", "--db", cloud_db,
        "--no-progress",
    )  # fmt: skip
    assert again.returncode == 2 and "replay into another database" in again.stderr


def test_cameras_recorded_over_rtsp_replay_on_the_times_capture_stamped(
    recorded: Recorded, locowatch_cli: LocowatchCli, tmp_path: Path
) -> None:
    folder = recorded.folder
    manifest = load_manifest(folder)
    assert sorted(manifest.cameras) == sorted(CAMERAS), recorded.output
    for camera_id, camera in manifest.cameras.items():
        assert camera.frame_times is not None
        times = [float(t) for t in (folder / camera.frame_times).read_text().split()]
        assert len(times) >= 8, camera_id  # 9 s at 2 fps, less the time to open the stream
        assert all(0.3 < b - a < 0.7 for a, b in itertools.pairwise(times))
        assert times[0] == camera.first_frame_time.timestamp()
    # The streams asked for a login: capture gave the one the facility file refers to.
    assert recorded.without_login != "opened"
    # The facility file it was recorded with lies beside it, the references but no password.
    beside = (folder / "facility.yaml").read_text()
    assert "password_env: LW_TEST_CAMERA_PASSWORD" in beside
    assert CREDENTIALS.split(":")[1] not in beside
    state = tmp_path / "state.jsonl"
    result = locowatch_cli(  # with the facility file recorded beside it
        "replay", "--recording", str(folder), "--state", str(state), "--no-progress"
    )
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout
    snapshots = [s for s in lines(state) if s["flow"] == "prod"]
    first = min(c.first_frame_time.timestamp() for c in manifest.cameras.values())
    assert snapshots and all(first < s["time"] < first + 12 for s in snapshots), out
    assert all(s["locomotives"] for s in snapshots[2:])  # the clip's locomotives, seen
