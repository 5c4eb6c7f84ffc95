"""Training sets: rectified windows line up with the ground truth, labels are complete."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest

from locowatch.facility.geometry import TrackAxis
from locowatch.facility.rectify import BODY_HALF_WIDTH_M, Curtain, EndFace, strip_window
from sim.datasets import (
    bodies_in_view,
    end_plate,
    hidden_in_view,
    plate_box,
    plate_shows,
    side_plate_label,
    side_plates_in_view,
    write_dataset,
)
from sim.faults import NO_FAULTS
from sim.fleet import SECTION_LETTERS, SERIES, SERIES_BY_NAME
from sim.layout import LayoutSpec
from sim.plates import random_plate_text
from sim.scenario import ScenarioSpec
from sim.scene import Face, PlatePlacement, Solid, locomotive_solids, track_box
from sim.twin import Twin, TwinSpec, column_shadows
from sim.variety import VarietySpec

SPEC = TwinSpec(seed=0, scenario=ScenarioSpec(duration_s=600), faults=NO_FAULTS)


@pytest.fixture
def twin(day_twin: Twin) -> Twin:
    return day_twin


def test_curtain_strip_puts_bodies_where_the_geometry_says(twin: Twin) -> None:
    """Rectify the rendered silhouette: the band at 2.5 m ends where the body's side ends.

    The curtain stands just outside the widest body, so for a narrower one the ray through
    a curtain point travels on to the body's side: the band ends at
    ``s_cam + (end - s_cam) * (a - curtain) / (a - half_width)`` for a camera ``a`` metres
    off the centreline, a little short of the true end, and exactly at it for the widest.
    Only ends facing away from the camera are checked: an end face turned towards the
    camera covers the curtain in front of it.
    """
    checked = 0
    for t in (60.0, 180.0, 300.0, 420.0):
        for state in twin.scenario.at(t):
            if state.loco.series.cab not in ("flat", "streamlined"):
                continue
            for camera in twin.facility.cameras:
                view = camera.views[0]
                if (
                    view.track not in ("T1", "T2")
                    or view.track != state.track
                    or not (
                        view.start_m < state.tail_m < view.end_m
                        or view.start_m < state.head_m < view.end_m
                    )
                ):
                    continue
                axis = twin.layout.axis(state.track)
                curtain = Curtain(twin.geometry.cameras[camera.id], axis)
                window = strip_window(view.start_m, view.end_m)
                mask = twin.renderer(camera.id).silhouette(
                    locomotive_solids(state.loco, axis, state.tail_m)
                )
                strip = curtain.rectify(mask, window)
                row = strip[int((window.top_m - 2.5) / window.metres_per_px)]
                metres = window.column_metres()[row > 127]
                assert len(metres), (camera.id, state.loco.loco_id)
                covered = curtain.covered_span(window)
                assert covered is not None
                along, across = axis.to_track(twin.geometry.cameras[camera.id].position)
                s_camera, a = float(along[0]), abs(float(across[0]))
                shrink = (a - BODY_HALF_WIDTH_M) / (a - state.loco.series.width_m / 2)
                if covered[0] + 0.5 < state.tail_m < s_camera:
                    expected = s_camera + (state.tail_m - s_camera) * shrink
                    tolerance = 0.25 + 0.02 * abs(state.tail_m - s_camera)  # a pixel's reach
                    assert metres.min() == pytest.approx(expected, abs=tolerance), camera.id
                    checked += 1
                if s_camera < state.head_m < covered[1] - 0.5:
                    expected = s_camera + (state.head_m - s_camera) * shrink
                    tolerance = 0.25 + 0.02 * abs(state.head_m - s_camera)
                    assert metres.max() == pytest.approx(expected, abs=tolerance), camera.id
                    checked += 1
    assert checked >= 8


def test_end_face_window_holds_the_plate(twin: Twin) -> None:
    """The window on an end facing the camera covers the number painted there."""
    seen = 0
    for state in twin.scenario.at(300.0):
        for camera in twin.facility.cameras:
            if camera.views[0].track != state.track:
                continue
            axis = twin.layout.axis(state.track)
            faces = EndFace(twin.geometry.cameras[camera.id], axis)
            for end, direction in ((state.tail_m, -1), (state.head_m, 1)):
                if not faces.faces_camera(end, direction):
                    continue
                _, _, visible = faces.maps(end, direction)
                position = twin.geometry.cameras[camera.id].position
                if not visible.all() or abs(float(axis.to_track(position)[0][0]) - end) > 20:
                    continue
                mask = twin.renderer(camera.id).silhouette(
                    locomotive_solids(state.loco, axis, state.tail_m)
                )
                window = faces.rectify(mask, end, direction)
                assert (window > 127).mean() > 0.5, (camera.id, state.loco.loco_id)
                seen += 1
    assert seen >= 2


def test_a_plate_is_as_large_as_its_letters_look_not_as_its_extent(twin: Twin) -> None:
    """The same 1.2 x 0.3 m plate 12 m down the track from an along camera: across the
    track (on an end face, square-on) its letters are 4 px wide or more; along it (on the
    body side, at a grazing angle) they are under that, and its height is its upright
    edges, not how many image rows the slanted plate spans. Turned away, it faces the
    camera no more."""
    camera = twin.facility.cameras[0]
    view = camera.views[0]
    model = twin.geometry.cameras[camera.id]
    axis = twin.layout.axis(view.track)
    s, lateral = axis.to_track(model.position)
    ahead = float(s[0]) + 12.0
    heights = np.array([2.3, 2.3, 2.0, 2.0])  # top-left, top-right, bottom-right, bottom-left

    def plate(along: np.ndarray, across: np.ndarray) -> PlatePlacement:
        corners = axis.to_world(along, across, heights + axis.rail_z)
        return PlatePlacement("ТЭМ18-1234", 0, 0, 0, 0, corners)

    # the end face turned towards the camera: seen from it, +lateral is on the left
    square_on = plate(np.full(4, ahead), np.array([0.6, -0.6, -0.6, 0.6]))
    side = float(np.sign(lateral[0])) * 1.6  # the body side facing the camera
    grazing = plate(ahead + np.array([0.0, 1.2, 1.2, 0.0]) * -np.sign(side), np.full(4, side))
    (_, letter), (height, grazing_letter) = square_on.size_px(model), grazing.size_px(model)
    assert letter >= 4.0 > grazing_letter
    assert height < float(np.ptp(model.project(grazing.corners)[:, 1]))
    assert square_on.faces(model) and grazing.faces(model)
    turned = replace(square_on, corners=square_on.corners[[1, 0, 3, 2]])
    assert not turned.faces(model)


def test_dataset_files_and_labels(tmp_path: Path) -> None:
    out = tmp_path / "ds"
    counts = write_dataset(
        SPEC, out, every_s=60.0, camera_ids=["cam-02", "cam-03", "cam-12"], jobs=2, progress=False
    )
    assert counts["position"] == 30 and counts["model"] > 0 and counts["plate"] > 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["counts"] == counts
    for kind in ("position", "model", "plate"):
        rows = [json.loads(line) for line in (out / kind / "labels.jsonl").read_text().splitlines()]
        assert len(rows) == counts[kind]
        for row in rows:
            assert (out / kind / row["image"]).is_file()
    positions = [
        json.loads(line) for line in (out / "position/labels.jsonl").read_text().splitlines()
    ]
    for row in positions:
        lo, hi = row["covered"]
        for body in row["bodies"]:
            assert lo <= body["tail_m"] < body["head_m"] <= hi
            assert (body["tail"] == "cut") == (body["tail_m"] <= lo + 0.3)
    models = [json.loads(line) for line in (out / "model/labels.jsonl").read_text().splitlines()]
    assert all(row["series"] in SERIES_BY_NAME for row in models)
    plates = [json.loads(line) for line in (out / "plate/labels.jsonl").read_text().splitlines()]
    for row in plates:
        if row["plate_box"] is None:  # a bare side, a buffer beam without a number
            assert row["text"] == ""
            continue
        series = next(s for s in SERIES_BY_NAME if row["text"].startswith(s))
        assert row["text"].startswith(SERIES_BY_NAME[series].name + "-")
    assert {row["place"] for row in plates} == {"end", "side"}
    assert {row["band"] for row in plates if row["place"] == "end"} == {"high", "low"}
    assert any(row["place"] == "side" and row["text"] for row in plates)
    assert any(row["plates"] for row in positions)  # the classic cab sides carry numbers
    assert all(np.array([row["infrared"] for row in positions[:1]]) == [True])  # 05:00 is dark


def test_random_plates_repaint_only_the_plates(tmp_path: Path) -> None:
    """--random-plates: each sample wears a new made-up text, its label says which, and
    nothing else in the window changes (same geometry, same pixels outside the plate)."""
    cameras = ["cam-02", "cam-03", "cam-12"]
    painted_spec = replace(SPEC, scenario=replace(SPEC.scenario, random_plates="any"))
    for spec, name in ((SPEC, "real"), (painted_spec, "painted")):
        write_dataset(
            spec, tmp_path / name, 120.0, cameras, jobs=2, progress=False, kinds=("plate",)
        )
    real, painted = (
        [json.loads(line) for line in (tmp_path / name / "plate/labels.jsonl").open()]
        for name in ("real", "painted")
    )
    assert len(real) == len(painted) >= 4
    read = [row for row in painted if row["plate_box"]]  # not the bare stretches of a side
    texts = {row["text"] for row in read}
    assert len(texts) == len({(row["t"], row["loco"]) for row in read})  # one per instant
    assert not texts & {row["text"] for row in real}  # a new text at every sample
    for a, b in zip(real, painted, strict=True):
        assert (a["image"], a["plate_box"], a["plate_px"]) == (
            b["image"],
            b["plate_box"],
            b["plate_px"],
        )
        if a["plate_box"] is None:
            continue
        before = cv2.imread(str(tmp_path / "real/plate" / a["image"])).astype(int)
        after = cv2.imread(str(tmp_path / "painted/plate" / b["image"])).astype(int)
        changed = np.abs(before - after).max(axis=2) > 40
        x0, y0, x1, y1 = a["plate_box"]["box"]
        inside = changed[max(y0 - 3, 0) : y1 + 3, max(x0 - 3, 0) : x1 + 3].sum()
        # side windows magnify the image (1 cm a pixel, plates seen from metres away): a
        # stray pixel of the plate's blurred edge may fall just outside its box
        assert inside > 0 and changed.sum() - inside <= 0.01 * inside, a["image"]


def test_near_plates_change_one_character_of_a_real_series() -> None:
    """--random-plates near: "ТЭЖ18-0421", a letter for a letter or a digit for a digit in
    a twin series' name, with that series' count of number digits."""
    for i in range(300):
        text = random_plate_text(np.random.default_rng(i), "near")
        name, number = text.split("-")
        close = [
            s
            for s in SERIES
            if len(s.name) == len(name)
            and sum(a != b for a, b in zip(s.name, name, strict=True)) == 1
            and all(a.isdigit() == b.isdigit() for a, b in zip(s.name, name, strict=True))
        ]
        assert close, text
        assert name not in SERIES_BY_NAME
        digits = number.rstrip(SECTION_LETTERS)
        assert digits.isdigit() and any(len(digits) == s.number_digits for s in close), text


@pytest.mark.parametrize(("renderer", "whole"), [("painter", 0.99), ("gl", 0.98)])
def test_plate_shows_is_the_share_of_the_plate_nothing_hides(renderer: str, whole: float) -> None:
    """Seed 100, cam-04: L002's tail plate over ten seconds, as a body moves in front of
    it: whole, about half (what the texture check took for visible), then none of it; the
    same through OpenGL, which blends a plate's rim with what is around it (counted over
    all its pixels, a whole plate showed 0.9 there, and readers were taught it was hidden)."""
    spec = TwinSpec(seed=100, scenario=ScenarioSpec(duration_s=600), faults=NO_FAULTS)
    twin = Twin(replace(spec, renderer=renderer))
    axis = twin.layout.axis("T1")
    shares = []
    for t, end_m in ((200.0, 64.559), (205.0, 65.314), (210.0, 69.571)):
        plate = end_plate(twin, axis, "L002", t, end_m)
        assert plate is not None
        shares.append(plate_shows(twin, "cam-04", t, plate))
    assert shares[0] > whole and 0.3 < shares[1] < 0.7 and shares[2] < 0.01, shares


def test_across_strips_label_what_nearer_bodies_hide(tmp_path: Path) -> None:
    """Wall cameras look across several tracks: every view of a camera yields strips, and
    a strip labels the stretches a body on a nearer track hides; no body is labelled
    there, and a body is cut where such a stretch begins (the position estimator's
    OCCUPIED / EMPTY / HIDDEN per column)."""
    spec = replace(SPEC, layout=LayoutSpec(family="across"))
    twin = Twin(spec)
    checked = 0
    for camera in twin.facility.cameras[:4]:
        for view in camera.views[1:]:
            for t in np.arange(0.0, 600.0, 20.0):
                covered = (view.start_m, view.end_m)
                hidden = hidden_in_view(twin, camera.id, view, covered, float(t))
                if not hidden:
                    continue
                for body in bodies_in_view(twin, view.track, covered, float(t), hidden):
                    for a, b in hidden:
                        assert body.head_m <= a + 1e-6 or body.tail_m >= b - 1e-6
                        if abs(body.head_m - a) < 1e-3:
                            assert body.head == "cut"
                        if abs(body.tail_m - b) < 1e-3:
                            assert body.tail == "cut"
                checked += 1
    assert checked >= 5
    out = tmp_path / "across"
    write_dataset(spec, out, every_s=150.0, camera_ids=[twin.camera_ids[0]], jobs=1,
                  progress=False, kinds=("position",))  # fmt: skip
    rows = [json.loads(line) for line in (out / "position" / "labels.jsonl").open()]
    assert {row["view"] for row in rows} == set(range(len(twin.facility.cameras[0].views)))
    assert len(twin.facility.cameras[0].views) >= 2
    assert all("hidden" in row and (out / "position" / row["image"]).exists() for row in rows)


def test_each_piece_of_a_body_cut_by_nearer_ones_has_its_own_windows(tmp_path: Path) -> None:
    """A wall camera sees a far locomotive in pieces between nearer ones: each piece gets
    its own series and plate windows, and no label points at another piece's image."""
    spec = replace(SPEC, layout=LayoutSpec(family="across"))
    out = tmp_path / "pieces"
    write_dataset(spec, out, every_s=600.0, camera_ids=["cam-01"], jobs=1, progress=False,
                  kinds=("model", "plate"))  # fmt: skip
    for kind in ("model", "plate"):
        rows = [json.loads(line) for line in (out / kind / "labels.jsonl").open()]
        images = [row["image"] for row in rows]
        assert len(images) == len(set(images)), kind
    models = [json.loads(line) for line in (out / "model" / "labels.jsonl").open()]
    per_body = {(row["t"], row["view"], row["loco"]) for row in models}
    assert len(per_body) < len(models)  # some locomotive was seen in pieces


def test_a_column_between_camera_and_track_hides_the_metres_behind_it() -> None:
    """A column stands floor to roof: between a camera and a track it hides the metres
    behind it at every height; beyond the track it hides nothing."""
    axis = TrackAxis("T1", 100.0, np.array([0.0, 0.0]), np.array([1.0, 0.0]))
    camera = np.array([50.0, 12.0, 6.0])  # 12 m to the left of the track, 6 m up

    def column(lateral: float) -> np.ndarray:
        box = track_box(axis, (49.8, 50.2), (lateral - 0.2, lateral + 0.2), (0, 12), (90, 90, 90))
        return box.corners.reshape(-1, 3)

    # halfway, its shadow on the body's near side (1.72 m) is 49.57-50.43 m
    ((a, b),) = column_shadows(camera, axis, (0.0, 100.0), [column(7.0)])
    assert 49.3 < a < 49.7 and 50.3 < b < 50.7
    assert column_shadows(camera, axis, (0.0, 100.0), [column(-5.0)]) == []
    assert column_shadows(camera, axis, (60.0, 100.0), [column(7.0)]) == []  # not in the view


def test_columns_hide_track_from_wall_cameras_but_not_from_cameras_along_it() -> None:
    """The twin's truth counts the hall's columns: a wall camera looking across the tracks
    has stretches hidden on an empty depot; a camera along its track, none."""
    for family, hidden_somewhere in (("across", True), ("along", False)):
        twin = Twin(replace(SPEC, layout=LayoutSpec(family=family)))
        blind = [
            (a, b)
            for camera in twin.facility.cameras
            for view in camera.views
            for a, b, hidden in twin.seen(camera.id, view, [])[1]
            if hidden
        ]
        assert bool(blind) == hidden_somewhere, family


def test_side_plates_are_labelled_where_the_strip_shows_them_and_read_left_to_right() -> None:
    """Plates on the cab and body sides: a strip labels each one facing the camera at the
    metres and heights where the camera sees it on the curtain (a narrow hood's side shows
    shifted along it), and a side window centred there holds the plate with its text
    running left to right, from either side of the track."""
    spec = replace(
        SPEC,
        seed=31,
        layout=LayoutSpec(family="across"),
        variety=VarietySpec.parse("plates=cab-side+body-side"),
    )
    twin = Twin(spec)
    sides_seen = set()
    for t in (300.0,):
        for camera_id in ("cam-01", "cam-10", "cam-12"):  # both walls (seen on this day)
            renderer = twin.renderer(camera_id)
            for view in twin.facility.camera_by_id[camera_id].views:
                curtain = Curtain(twin.geometry.cameras[camera_id], twin.layout.axis(view.track))
                covered = curtain.covered_span(strip_window(view.start_m, view.end_m))
                if covered is None:
                    continue
                hidden = hidden_in_view(twin, camera_id, view, covered, t)
                for side in side_plates_in_view(twin, curtain, covered, t, hidden):
                    if side_plate_label(curtain, side)["plate_px"] < 10:
                        continue
                    map_x, map_y = curtain.side_maps(*side.centre)
                    area = renderer.silhouette([Solid([Face(side.plate.corners, (0, 0, 0))], "p")])
                    window = cv2.remap(area, map_x, map_y, cv2.INTER_LINEAR) > 127
                    rows, cols = np.nonzero(window)
                    assert len(cols) > 100, (camera_id, side.plate.text)
                    height, width = window.shape
                    assert abs(cols.mean() - width / 2) < 8 and abs(rows.mean() - height / 2) < 8
                    grid = np.stack([map_x.ravel(), map_y.ravel()], axis=1)
                    corners = curtain.camera.project(side.plate.corners[:2])  # text's top edge
                    nearest = ((grid[None] - corners[:, None]) ** 2).sum(axis=2).argmin(axis=1)
                    left, right = nearest % width
                    assert left < right, (camera_id, side.plate.text, curtain.reads_reversed)
                    sides_seen.add(curtain.reads_reversed)
    assert sides_seen == {False, True}


def test_a_buffer_beam_number_lies_in_the_low_end_window() -> None:
    """Numbers low on the cab front (``end-low``) fall in the end face's low window, not
    in the one under the cab windows; both windows are labelled apart."""
    spec = replace(SPEC, seed=33, variety=VarietySpec.parse("plates=end-low"))
    twin = Twin(spec)
    inside = 0
    for state in twin.scenario.at(300.0):
        axis = twin.layout.axis(state.track)
        for camera in twin.facility.cameras[:12]:
            faces = EndFace(twin.geometry.cameras[camera.id], axis)
            for end, direction in ((state.tail_m, -1), (state.head_m, 1)):
                if not faces.faces_camera(end, direction):
                    continue
                low = end_plate(twin, axis, state.loco.loco_id, 300.0, end, "low")
                assert end_plate(twin, axis, state.loco.loco_id, 300.0, end, "high") is None
                if low is None:
                    continue
                box = plate_box(faces.maps(end, direction, "low")[:2], faces.camera, low)
                inside += box["inside"]
    assert inside >= 3
