"""The visibility model: what each camera sees of each track, and what nearer bodies hide.

Checked on the twin's ``across`` family (wall cameras looking obliquely across three
tracks), where both matter, and through ``locowatch config check`` / ``config views``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from locowatch.facility.config import FacilityConfig, TrackView
from locowatch.facility.geometry import TrackAxis
from locowatch.facility.loading import dump_facility, load_facility
from locowatch.facility.rectify import BODY_HALF_WIDTH_M, Curtain
from locowatch.facility.visibility import (
    BODY_HEIGHT_M,
    LOW_BAND,
    FacilityVisibility,
    merge_spans,
    subtract_spans,
)
from sim.layout import build_layout, family_spec


@pytest.fixture(scope="module")
def across() -> FacilityConfig:
    return build_layout(3, family_spec("across")).config


@pytest.fixture(scope="module")
def visibility(across: FacilityConfig) -> FacilityVisibility:
    return FacilityVisibility(across)


def test_the_lower_body_is_seen_wherever_the_whole_body_is_and_further(
    across: FacilityConfig, visibility: FacilityVisibility
) -> None:
    partial = 0.0
    for camera in across.cameras:
        for track in across.tracks:
            seen = visibility.track(camera.id, track.id)
            assert not (seen.full & ~seen.low).any(), (camera.id, track.id)
            partial += float((seen.low & ~seen.full).sum())
    assert partial > 0  # cameras close to a track lose its roof before its lower body


def test_a_nearer_body_hides_exactly_what_rays_to_the_lower_body_cross(
    across: FacilityConfig, visibility: FacilityVisibility
) -> None:
    """Against a brute force: sample each ray finely, see whether a point is in the box."""
    from locowatch.facility.geometry import CameraModel

    rng = np.random.default_rng(0)
    checked = hidden_cells = 0
    for camera in across.cameras[:4]:
        model = CameraModel.from_config(camera)
        for shadows in visibility.cameras[camera.id].shadows.values():
            for shadow in shadows:
                far = TrackAxis.from_config(across.track_by_id[shadow.far_track])
                near = TrackAxis.from_config(across.track_by_id[shadow.near_track])
                lateral = Curtain(model, far).lateral_m
                start = float(rng.uniform(0, near.length_m - 20))
                body = (start, start + float(rng.uniform(12, 20)))
                hidden = shadow.hidden([body])
                with np.errstate(invalid="ignore"):  # and the cells around its shadow
                    near_it = np.flatnonzero(
                        (shadow.near_lo < body[1] + 3) & (shadow.near_hi > body[0] - 3)
                    )
                anywhere = rng.choice(len(shadow.metres), 20, replace=False)
                around = rng.choice(near_it, min(20, len(near_it)), replace=False)
                cells = np.concatenate([anywhere, around])
                for k in cells:
                    s = float(shadow.metres[k])
                    expected = _ray_hits_box(model.position, far, near, s, lateral, body)
                    inside = any(a <= s <= b for a, b in hidden)
                    assert inside == expected, (camera.id, shadow.far_track, s, body)
                    checked += 1
                    hidden_cells += expected
    assert checked > 300 and hidden_cells > 60, hidden_cells  # hidden metres were sampled


def _ray_hits_box(
    eye: np.ndarray,
    far: TrackAxis,
    near: TrackAxis,
    s: float,
    lateral: float,
    body: tuple[float, float],
) -> bool:
    for height in np.linspace(*LOW_BAND, 4):
        target = far.to_world([s], lateral, height)[0]
        points = eye + np.linspace(0.0, 1.0, 20_001)[1:-1, None] * (target - eye)
        along, side = near.to_track(points)
        up = points[:, 2] - near.rail_z
        inside = (
            (along >= body[0])
            & (along <= body[1])
            & (np.abs(side) <= BODY_HALF_WIDTH_M)
            & (up >= 0)
            & (up <= BODY_HEIGHT_M)
        )
        if inside.any():
            return True
    return False


@pytest.mark.parametrize(
    ("spans", "holes", "left"),
    [
        ([(0, 10)], [(2, 3), (5, 6)], [(0, 2), (3, 5), (6, 10)]),  # holes inside
        ([(0, 10)], [(-1, 12)], []),  # all hidden
        ([(0, 4), (3, 10)], [(9, 20)], [(0, 9)]),  # overlapping spans merge first
        ([(0, 10)], [], [(0, 10)]),
    ],
)
def test_span_arithmetic(spans: list, holes: list, left: list) -> None:  # type: ignore[type-arg]
    assert subtract_spans(spans, holes) == left
    assert merge_spans(left + holes) == merge_spans(spans + holes) or not holes


def _write(path: Path, config: FacilityConfig) -> Path:
    path.write_text(dump_facility(config, "test"), encoding="utf-8")
    return path


def test_config_check_warns_of_views_out_of_view_by_camera_track_and_metres(
    across: FacilityConfig, visibility: FacilityVisibility, tmp_path: Path, locowatch_cli
) -> None:  # type: ignore[no-untyped-def]
    camera = across.cameras[0]
    view = camera.views[0]
    seen = visibility.track(camera.id, view.track).low_spans()
    too_long = TrackView(track=view.track, start_m=seen[0][0], end_m=seen[0][1] + 30.0)
    unseen = next(
        (track.id, float(a), float(a) + 5.0)
        for track in across.tracks
        for a in np.arange(0.0, track.length_m - 5.0, 5.0)
        if not visibility.track(camera.id, track.id).low_spans((float(a), float(a) + 5.0))
    )
    nowhere = unseen[0]
    last = TrackView(track=nowhere, start_m=unseen[1], end_m=unseen[2])
    bad = camera.model_copy(update={"views": [too_long, last]})
    path = _write(tmp_path / "f.yaml", across.model_copy(update={"cameras": [bad]}))

    result = locowatch_cli("config", "check", str(path))
    assert result.returncode == 0, result.stderr
    a, b, end = too_long.start_m, too_long.end_m, seen[0][1]
    warning = f"warning: {camera.id} view of {view.track} ({a:.1f}-{b:.1f} m): {end:.1f}-{b:.1f} m"
    assert f"{warning} out of view" in result.stderr, result.stderr
    assert f"{camera.id} view of {nowhere} " in result.stderr
    assert "the view is not used" in result.stderr
    assert "no camera sees:" in result.stdout and "lower body only" in result.stdout
    strict = locowatch_cli("config", "check", "--strict", str(path))
    assert strict.returncode == 1


def test_proposed_views_are_what_the_cameras_see_and_check_clean(
    tmp_path: Path, locowatch_cli
) -> None:  # type: ignore[no-untyped-def]
    layout = build_layout(4, family_spec("across"))
    installer = layout.installer_config(np.random.default_rng(1))  # point pairs, not poses
    unviewed = [c.model_copy(update={"views": [TrackView(track="T1", start_m=0, end_m=1)]})
                for c in installer.cameras]  # fmt: skip
    path = _write(tmp_path / "f.yaml", installer.model_copy(update={"cameras": unviewed}))
    out = tmp_path / "proposed.yaml"

    result = locowatch_cli("config", "views", str(path), "--write", str(out))
    assert result.returncode == 0, result.stderr
    proposed = load_facility(out)  # from solved poses: within a grid step of the true ones
    for camera, true in zip(proposed.cameras, layout.config.cameras, strict=True):
        assert [v.track for v in camera.views] == [v.track for v in true.views], camera.id
        for view, true_view in zip(camera.views, true.views, strict=True):
            assert abs(view.start_m - true_view.start_m) <= 0.6, (camera.id, view)
            assert abs(view.end_m - true_view.end_m) <= 0.6, (camera.id, view)
    assert "- {track: T2," in result.stdout
    check = locowatch_cli("config", "check", "--strict", str(out))
    assert check.returncode == 0, check.stderr
