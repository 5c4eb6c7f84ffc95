"""Geometry: world -> image -> track metres round trips within 1 cm on real camera models."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from locowatch.facility import (
    CameraModel,
    FacilityGeometry,
    PointPair,
    load_facility,
    pose_looking_at,
    solve_pose,
)

REPO = Path(__file__).resolve().parents[3]
EXAMPLE = REPO / "examples" / "depot.yaml"
TOLERANCE_M = 0.01


@pytest.fixture(scope="module")
def geometry() -> FacilityGeometry:
    return FacilityGeometry(load_facility(EXAMPLE))


def _visible_track_points(
    geometry: FacilityGeometry,
    *,
    camera_id: str,
    track_id: str,
    start: float,
    end: float,
    height: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Track metres and lateral offsets of a grid over the view, kept where they are in frame."""
    s, lateral = np.meshgrid(np.linspace(start, end, 25), [-0.76, 0.0, 0.76, 1.5])
    s, lateral = s.ravel(), lateral.ravel()
    pixels = geometry.track_to_image(camera_id, track_id, s, lateral, height)
    camera = geometry.cameras[camera_id]
    inside = (
        (pixels[:, 0] >= 0)
        & (pixels[:, 0] < camera.width)
        & (pixels[:, 1] >= 0)
        & (pixels[:, 1] < camera.height)
    )
    return s[inside], lateral[inside]


@pytest.mark.parametrize("height", [0.0, 3.2], ids=["rail", "cab-window"])
def test_track_image_track_round_trip_within_1cm(geometry: FacilityGeometry, height: float) -> None:
    facility = load_facility(EXAMPLE)
    checked = 0
    for camera in facility.cameras:
        for view in camera.views:
            s, lateral = _visible_track_points(
                geometry,
                camera_id=camera.id,
                track_id=view.track,
                start=view.start_m,
                end=view.end_m,
                height=height,
            )
            pixels = geometry.track_to_image(camera.id, view.track, s, lateral, height)
            s_back, lateral_back = geometry.image_to_track(camera.id, view.track, pixels, height)
            np.testing.assert_allclose(s_back, s, atol=TOLERANCE_M, err_msg=camera.id)
            np.testing.assert_allclose(lateral_back, lateral, atol=TOLERANCE_M, err_msg=camera.id)
            checked += len(s)
    assert checked > 500


def test_round_trip_exercises_lens_distortion(geometry: FacilityGeometry) -> None:
    """The points above are displaced by the lens by tens of pixels, so distortion counts."""
    camera = geometry.cameras["cam-01"]
    s, lateral = _visible_track_points(
        geometry, camera_id="cam-01", track_id="T1", start=1.5, end=32.5, height=0.0
    )
    world = geometry.tracks["T1"].to_world(s, lateral)
    undistorted = CameraModel(
        camera.camera_id,
        camera.width,
        camera.height,
        camera.camera_matrix,
        np.zeros(5),
        camera.rvec,
        camera.tvec,
    )
    shift = np.linalg.norm(camera.project(world) - undistorted.project(world), axis=1)
    assert shift.max() > 20


def test_example_poses_solved_from_point_pairs_fit_them(geometry: FacilityGeometry) -> None:
    solved = {cid: m.pose_rms_px for cid, m in geometry.cameras.items() if m.pose_rms_px}
    assert set(solved) == {"cam-02", "cam-04", "cam-06"}
    assert all(rms < 0.5 for rms in solved.values()), solved  # pairs carry ~0.1 px noise


def test_pose_from_noisy_point_pairs_recovers_the_true_camera() -> None:
    rng = np.random.default_rng(3)
    matrix = np.array([[1100.0, 0, 960], [0, 1100.0, 540], [0, 0, 1]])
    distortion = np.array([-0.31, 0.11, 0.0007, -0.0004, -0.02])
    rvec, tvec = pose_looking_at([40.0, -7.0, 9.0], [55.0, 3.0, 0.0])
    truth = CameraModel("true", 1920, 1080, matrix, distortion, rvec, tvec)
    world = np.column_stack(
        [rng.uniform(42, 70, 30), rng.uniform(-1, 8, 30), rng.choice([0.0, 1.2, 4.0], 30)]
    )
    pixels = truth.project(world) + rng.normal(0, 0.3, (30, 2))
    pairs = [
        PointPair(image=(float(u), float(v)), world=(float(x), float(y), float(z)))
        for (u, v), (x, y, z) in zip(pixels, world, strict=True)
    ]
    solution = solve_pose(pairs, matrix, distortion)
    solved = CameraModel("solved", 1920, 1080, matrix, distortion, solution.rvec, solution.tvec)
    assert solution.rms_px < 0.6
    assert np.linalg.norm(solved.position - truth.position) < 0.05
    # What matters downstream: where a pixel lands on the floor, 10-30 m away.
    floor = np.column_stack([np.linspace(45, 68, 10), np.full(10, 3.0), np.zeros(10)])
    landed = solved.image_to_plane(truth.project(floor))
    assert np.abs(landed - floor).max() < 0.05


def test_camera_looking_at_a_point_sees_it_at_the_principal_point() -> None:
    matrix = np.array([[800.0, 0, 640], [0, 800.0, 360], [0, 0, 1]])
    rvec, tvec = pose_looking_at([0.0, -5.0, 7.0], [12.0, 3.0, 0.0])
    camera = CameraModel("c", 1280, 720, matrix, np.zeros(5), rvec, tvec)
    np.testing.assert_allclose(camera.project([12.0, 3.0, 0.0]), [[640.0, 360.0]], atol=1e-6)
    np.testing.assert_allclose(camera.position, [0.0, -5.0, 7.0], atol=1e-9)
    # image x stays horizontal: points at the same height left and right share a row
    left, right = camera.project([[12.0, 4.0, 7.0], [12.0, 2.0, 7.0]])
    assert left[0] < right[0]


def test_pixels_above_the_horizon_do_not_land_on_the_floor() -> None:
    matrix = np.array([[800.0, 0, 640], [0, 800.0, 360], [0, 0, 1]])
    rvec, tvec = pose_looking_at([0.0, 0.0, 5.0], [10.0, 0.0, 5.0])  # level: horizon mid-image
    camera = CameraModel("c", 1280, 720, matrix, np.zeros(5), rvec, tvec)
    sky, floor = camera.image_to_plane([[640.0, 100.0], [640.0, 600.0]])
    assert np.isnan(sky).all()
    np.testing.assert_allclose(floor, [5.0 * 800 / 240, 0.0, 0.0], atol=1e-9)


def test_wrong_point_shapes_are_clear_errors(geometry: FacilityGeometry) -> None:
    with pytest.raises(ValueError, match=r"expected \(n, 3\), got \(4, 2\)"):
        geometry.cameras["cam-01"].project(np.zeros((4, 2)))
    with pytest.raises(ValueError, match=r"expected \(n, 2\), got \(3,\)"):
        geometry.cameras["cam-01"].rays(np.zeros(3))


def test_heights_on_a_raised_track_count_from_its_rail_head() -> None:
    """A track 0.25 m above the floor: a cab window 3.2 m above the rail is 3.45 m above
    the floor, and a pixel read back at 3.2 m above that rail lands where it came from."""
    config = load_facility(EXAMPLE)
    raised = config.model_copy(
        update={"tracks": [t.model_copy(update={"rail_height_m": 0.25}) for t in config.tracks]}
    )
    flat, lifted = FacilityGeometry(config), FacilityGeometry(raised)
    assert lifted.tracks["T1"].to_world([10.0], 0.0, 3.2)[0, 2] == pytest.approx(3.45)
    s, lateral = _visible_track_points(
        lifted, camera_id="cam-01", track_id="T1", start=1.5, end=32.5, height=3.2
    )
    pixels = lifted.track_to_image("cam-01", "T1", s, lateral, 3.2)
    s_back, _ = lifted.image_to_track("cam-01", "T1", pixels, 3.2)
    np.testing.assert_allclose(s_back, s, atol=TOLERANCE_M)
    moved = np.abs(pixels - flat.track_to_image("cam-01", "T1", s, lateral, 3.2)).max()
    assert moved > 2.0  # the rail height is not a no-op: points move by pixels
