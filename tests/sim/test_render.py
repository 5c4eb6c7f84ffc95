"""Rendering: reproducible frames, locomotives where the ground truth says, faults as planned."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge.recordings import load_manifest
from locowatch.facility import FacilityGeometry, load_facility
from sim.faults import NO_FAULTS, Fault, FaultPlan, FaultSpec
from sim.recording import record
from sim.scenario import ScenarioSpec
from sim.scene import locomotive_solids
from sim.twin import Twin, TwinSpec

DAY_SPEC = TwinSpec(seed=0, scenario=ScenarioSpec(duration_s=600), faults=NO_FAULTS)


@pytest.fixture
def twin(day_twin: Twin) -> Twin:
    return day_twin


def test_frames_are_reproducible_and_alive(twin: Twin) -> None:
    again = Twin(DAY_SPEC)
    first = twin.frame("cam-04", 300.0)
    assert first is not None and first.shape == (720, 1280, 3)
    assert np.array_equal(first, again.frame("cam-04", 300.0))
    later = twin.frame("cam-04", 300.5)
    assert later is not None and not np.array_equal(first, later)  # sensor noise differs
    assert 40 < first.mean() < 220  # by day: neither black nor blown out


def test_the_start_stamp_moves_the_clock_and_nothing_else(twin: Twin) -> None:
    """Same seed, same frames and truth whatever the date: the start only stamps them."""
    spec = twin.spec.scenario
    year_on = Twin(replace(twin.spec, scenario=replace(spec, start_time=spec.start_time
                                                       + timedelta(days=365))))  # fmt: skip
    assert np.array_equal(twin.frame("cam-04", 300.0), year_on.frame("cam-04", 300.0))
    truth, later = twin.truth(300.0), year_on.truth(300.0)
    assert truth["locomotives"] == later["locomotives"]
    moved = datetime.fromisoformat(later["time"]) - datetime.fromisoformat(truth["time"])
    assert moved == timedelta(days=365)


def test_night_frames_are_infrared_greyscale(twin: Twin) -> None:
    night = twin.frame("cam-04", 2.0)  # 05:03
    assert night is not None
    channels = night.astype(np.int16)
    assert np.abs(channels[..., 0] - channels[..., 2]).mean() < 3  # no colour left
    day = twin.frame("cam-04", 300.0)
    assert day is not None
    assert np.abs(day[..., 0].astype(np.int16) - day[..., 2]).mean() > 5


def test_ground_truth_ends_land_on_the_rendered_locomotive_edge(twin: Twin) -> None:
    """On the camera-facing side of a locomotive, just inside a true end is locomotive and
    just outside is not.

    Only ends that point away from the camera are checked: empty space in front of an end
    that faces the camera is, in the image, covered by the end face behind it.
    """
    checked = 0
    for t in np.arange(0.0, 600.0, 50.0):
        for camera in twin.facility.cameras:
            if camera.views[0].track not in ("T1", "T3"):
                continue  # half the depot keeps the test quick (each camera costs ~2 s)
            renderer = twin.renderer(camera.id)
            model = twin.geometry.cameras[camera.id]
            for state in twin.scenario.at(t):
                series = state.loco.series
                if state.track != camera.views[0].track or series.cab not in (
                    "flat",
                    "streamlined",
                ):
                    continue  # full-width bodies, seen from their side
                axis = twin.layout.axis(state.track)
                s_camera = float(axis.to_track(model.position)[0][0])
                mask = None
                for end, outward in ((state.tail_m, -1.0), (state.head_m, 1.0)):
                    if (s_camera - end) * outward >= 0:
                        continue  # this end faces the camera
                    points = np.vstack(
                        [  # on the side face just inside; just outside, a little off it
                            axis.to_world([end - 0.4 * outward], -series.width_m / 2 + 0.02, 2.2),
                            axis.to_world([end + 0.4 * outward], -series.width_m / 2 - 0.15, 2.2),
                        ]
                    )
                    if not model.visible(points).all():
                        continue
                    if np.linalg.norm(points[0] - model.position) > 30:
                        continue
                    pixels = model.project(points)
                    if np.linalg.norm(pixels[0] - pixels[1]) < 6:
                        continue
                    if mask is None:
                        mask = renderer.silhouette(
                            locomotive_solids(state.loco, axis, state.tail_m, state.speed_mps)
                        )
                    assert mask[_px(pixels[0])] > 127, (camera.id, state.loco.loco_id, end)
                    assert mask[_px(pixels[1])] < 128, (camera.id, state.loco.loco_id, end)
                    checked += 1
    assert checked >= 20


def _px(p: np.ndarray) -> tuple[int, int]:
    return round(p[1]), round(p[0])


def test_each_fault_appears_as_configured() -> None:
    twin = Twin(DAY_SPEC)
    twin.faults = FaultPlan(
        [
            Fault("cam-04", "freeze", 300.0, 305.0),
            Fault("cam-04", "black", 310.0, 312.0),
            Fault("cam-04", "dropout", 320.0, 330.0),
        ]
    )
    frozen_at = twin.frame("cam-04", 300.0)
    assert frozen_at is not None
    for t in (301.0, 303.5, 304.5):
        assert np.array_equal(twin.frame("cam-04", t), frozen_at), t
    after = twin.frame("cam-04", 305.0)
    assert after is not None and not np.array_equal(after, frozen_at)
    black = twin.frame("cam-04", 311.0)
    assert black is not None and black.mean() < 12
    assert twin.frame("cam-04", 320.0) is None and twin.frame("cam-04", 329.5) is None
    assert twin.frame("cam-04", 330.0) is not None
    assert twin.frame("cam-05", 325.0) is not None  # faults stay on their camera
    # the ground truth does not count a faulted camera as seeing anything
    seen = {c for loco in twin.truth(325.0)["locomotives"] for c in loco["cameras"]}
    assert "cam-04" not in seen


def test_fault_plan_follows_its_spec() -> None:
    cameras = [f"cam-{i:02d}" for i in range(1, 41)]
    spec = FaultSpec(probability=0.5, dead_cameras=("cam-07",), dead_from_s=100.0)
    plan = FaultPlan.draw(cameras, 600.0, np.random.default_rng(0), spec)
    dead = [f for f in plan.faults if f.camera_id == "cam-07" and f.start_s == 100.0]
    assert dead and dead[0].kind == "dropout" and dead[0].end_s > 600
    kinds = {f.kind for f in plan.faults}
    assert kinds == {"freeze", "black", "dropout"}
    for fault in plan.faults:
        if fault.camera_id == "cam-07" and fault.start_s == 100.0:
            continue
        low, high = spec.duration(fault.kind)
        assert low - 1e-6 <= fault.end_s - fault.start_s <= min(high, 60.0) + 0.01
    assert 0.3 < len([f for f in plan.faults if f.kind == "freeze"]) / len(cameras) < 0.7


def test_record_writes_videos_truth_faults_and_an_installer_calibration(tmp_path: Path) -> None:
    spec = replace(
        DAY_SPEC,
        scenario=ScenarioSpec(duration_s=4.0),
        faults=FaultSpec(probability=0.0, dead_cameras=("cam-02",), dead_from_s=2.0),
    )
    out = record(
        spec, tmp_path / "run", fps=2.0, camera_ids=["cam-01", "cam-02"], jobs=2, progress=False
    )
    for camera in ("cam-01", "cam-02"):
        capture = cv2.VideoCapture(str(out / "video" / f"{camera}.mp4"))
        frames = []
        while True:
            ok, image = capture.read()
            if not ok:
                break
            frames.append(image)
        assert len(frames) == 8, camera
        assert frames[0].shape == (720, 1280, 3)
    capture = cv2.VideoCapture(str(out / "video" / "cam-02.mp4"))
    means = [capture.read()[1].mean() for _ in range(8)]
    assert min(means[:4]) > 30 and max(means[4:]) < 5  # dead from 2 s: black in the file
    truth = [json.loads(line) for line in (out / "ground_truth.jsonl").read_text().splitlines()]
    assert [r["t"] for r in truth] == [0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5]
    faults = [json.loads(line) for line in (out / "faults.jsonl").read_text().splitlines()]
    assert faults == [{"camera_id": "cam-02", "kind": "dropout", "start_s": 2.0, "end_s": 5.0}]
    installer = load_facility(out / "facility.yaml")
    assert all(c.point_pairs and c.pose is None for c in installer.cameras)
    solved = FacilityGeometry(installer)
    assert max(m.pose_rms_px or 0 for m in solved.cameras.values()) < 1.0
    manifest = load_manifest(out)  # a recording, as `locowatch replay` reads it
    assert list(manifest.cameras) == ["cam-01", "cam-02"] and manifest.model_extra["fps"] == 2.0
    first = spec.scenario.start_time.timestamp()  # the window starts at scenario second 0
    assert all(c.first_frame_time.timestamp() == first for c in manifest.cameras.values())


def test_the_opengl_canvas_draws_what_the_painters_renderer_draws(twin: Twin) -> None:
    """The candidate OpenGL canvas (``sim.gl_render``, Mesa's software rasterizer) on the
    same scene: the same hall, locomotives, decals and plates, pixel for pixel but for
    edges (anti-aliasing) and plate texture filtering."""
    from sim.gl_render import GlCanvas, render_gl
    from sim.render import Lighting

    camera = twin.camera_ids[1]
    renderer = twin.renderer(camera)
    canvas = GlCanvas(renderer)
    try:
        t = 150.0
        solids = twin.solids(renderer, t)
        assert any(s.tag.startswith("L") for s in solids)
        light = Lighting.at_hour(twin.scenario.hour_of_day(t))
        painted = renderer.render(solids, light, finish=False)
        drawn = render_gl(renderer, canvas, solids, light, finish=False)
        assert drawn.shape == painted.shape
        close = np.abs(drawn.astype(np.int16) - painted.astype(np.int16)).max(axis=2) <= 30
        assert close.mean() >= 0.97
        hall_only = render_gl(renderer, canvas, [], light, finish=False)
        assert (np.abs(drawn.astype(np.int16) - hall_only).max(axis=2) > 30).mean() > 0.05
    finally:
        canvas.release()


def test_a_twin_drawn_with_opengl_delivers_the_same_frames(twin: Twin) -> None:
    """``TwinSpec(renderer="gl")`` (``sim frame|render|dataset --renderer gl``): the same
    camera frame as the painter's renderer, finished alike (light, noise, JPEG)."""
    gl_twin = Twin(replace(DAY_SPEC, renderer="gl"))
    camera = twin.camera_ids[2]
    painted, drawn = twin.frame(camera, 290.0), gl_twin.frame(camera, 290.0)
    assert painted is not None and drawn is not None
    close = np.abs(drawn.astype(np.int16) - painted.astype(np.int16)).max(axis=2) <= 30
    assert close.mean() >= 0.97
