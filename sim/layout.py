"""The twin's facility: parallel repair tracks with stations, and the cameras that cover them.

The layout is a ``FacilityConfig`` like any real depot's, built deterministically from a
seed, in one of four camera *families* (``LayoutSpec.family``), the ways real depots hang
their cameras:

- ``along`` (the demo depot): cameras on the columns beside each track (about 7 m up,
  3 m to the side) look along it, so each sees a 20-25 m stretch of one track: never a
  whole long locomotive; neighbours overlap by a few metres; every metre is seen.
- ``across``: cameras on both walls, 7-9 m up and 7 m beside the outer tracks, look
  obliquely across all three tracks: a locomotive on a nearer track hides the farther
  ones, and a camera has the lower body of a track in frame further than its roof.
- ``sparse``: a few such cameras on one wall see a stretch from near the doors (all at
  metre 0: the far ends are buffers) to past the middle; the doorways and the deep ends
  are seen by no camera.
- ``roof``: cameras 11-13 m up between two tracks look down along them.

The views of the ``along`` cameras are their whole-height stretch within 30 m; the other
families' views are what ``locowatch config views`` proposes from the calibration (the
product's own visibility model), as an installer would take them.

The twin knows the true pose of every camera; ``installer_config`` writes what an
installer would have instead: surveyed image-to-world point pairs with a little noise.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

from locowatch.facility.config import (
    Camera,
    CloudEndpoint,
    EstimatorRef,
    FacilityConfig,
    FacilityInfo,
    Flow,
    FseSettings,
    Gateway,
    Intrinsics,
    PointPair,
    Pose,
    Resolution,
    Station,
    Track,
    TrackView,
)
from locowatch.facility.geometry import CameraModel, TrackAxis, pose_looking_at
from sim.fleet import PLATE_FORM

CameraFamily = Literal["along", "across", "sparse", "roof"]
CAMERA_FAMILIES: tuple[CameraFamily, ...] = ("along", "across", "sparse", "roof")
# Sensor families a depot's cameras are drawn from (depots mix camera generations): the
# lens keeps its field of view, so a larger sensor sees the same scene with more pixels,
# which is what decides whether a number plate can be read (docs/twin.md, Resolution).
RESOLUTIONS: dict[str, tuple[int, int]] = {
    "720p": (1280, 720),
    "1080p": (1920, 1080),
    "1440p": (2560, 1440),
}


@dataclass(frozen=True)
class LayoutSpec:
    """Knobs of the generated facility; the defaults make the demo depot."""

    family: CameraFamily = "along"
    facility_id: str = "twin-depot"
    tracks: int = 4
    track_lengths_m: tuple[float, float] = (120.0, 200.0)
    track_spacing_m: float = 7.0
    stations_per_track: tuple[int, int] = (3, 5)
    width: int = 1280
    height: int = 720
    camera_spacing_m: float = 20.0
    camera_height_m: float = 7.0
    camera_side_m: float = 3.0  # right of the centreline, on a bracket off the column row
    camera_aim_ahead_m: float = 12.0
    max_range_m: float = 30.0  # beyond, the body side is seen too obliquely to place its ends
    fps: float = 2.0
    wall_offset_m: float = 7.0  # across, sparse: walls this far beside the outer tracks
    wall_height_m: tuple[float, float] = (7.0, 9.0)
    roof_height_m: tuple[float, float] = (11.0, 13.0)
    view_range_m: float = 40.0  # across, sparse, roof: ``config views --max-range``
    dead_ends: bool = False  # the tracks' far ends are buffers: one door, at metre 0
    resolutions: tuple[str, ...] = ("720p",)  # RESOLUTIONS each camera draws its sensor from


def family_spec(family: CameraFamily, **changes: object) -> LayoutSpec:
    """The layout of a camera family: ``along`` is the demo depot; the others are halls
    of three tracks 6 m apart, like the independently built depot of the geometry issue."""
    base: dict[str, object] = {"family": family}
    if family == "across":
        base |= {"tracks": 3, "track_spacing_m": 6.0, "track_lengths_m": (130.0, 160.0),
                 "camera_spacing_m": 24.0}  # fmt: skip
    elif family == "sparse":  # like the geometry issue's depot: doors at one end only
        base |= {"tracks": 3, "track_spacing_m": 6.0, "track_lengths_m": (140.0, 160.0),
                 "camera_spacing_m": 22.0, "dead_ends": True}  # fmt: skip
    elif family == "roof":
        base |= {"tracks": 4, "track_spacing_m": 6.5, "camera_spacing_m": 22.0}
    return LayoutSpec(**(base | changes))  # type: ignore[arg-type]


@dataclass(frozen=True)
class TwinLayout:
    config: FacilityConfig  # true poses
    spec: LayoutSpec = field(default_factory=LayoutSpec)

    def installer_config(self, rng: np.random.Generator, noise_px: float = 0.3) -> FacilityConfig:
        """The same facility with cameras calibrated from noisy point pairs, not true poses."""
        cameras = [
            camera.model_copy(
                update={"pose": None, "point_pairs": _survey(camera, rng, noise_px, self)}
            )
            for camera in self.config.cameras
        ]
        return self.config.model_copy(update={"cameras": cameras})

    def axis(self, track_id: str) -> TrackAxis:
        return TrackAxis.from_config(self.config.track_by_id[track_id])


def build_layout(seed: int = 0, spec: LayoutSpec | None = None) -> TwinLayout:
    spec = spec or LayoutSpec()
    rng = np.random.default_rng(seed)
    tracks = [
        Track(
            id=f"T{i + 1}",
            length_m=_track_length(rng, spec),
            origin=(0.0, i * spec.track_spacing_m),
            heading_deg=0.0,
            doors=["start"] if spec.dead_ends else ["start", "end"],
        )
        for i in range(spec.tracks)
    ]
    stations = [s for track in tracks for s in _stations(track, rng, spec)]
    cameras: list[Camera] = []
    if spec.family == "along":
        for track in tracks:
            cameras += _cameras_along(track, rng, spec, first_index=len(cameras) + 1)
    else:
        cameras = _hall_cameras(tracks, rng, spec)
    if spec.resolutions != LayoutSpec.resolutions:
        cameras = _with_sensors(cameras, np.random.default_rng([seed, 41]), spec.resolutions)
    config = FacilityConfig(
        version=1,
        facility=FacilityInfo(
            id=spec.facility_id, name="Twin locomotive depot", timezone="Europe/Moscow"
        ),
        tracks=tracks,
        stations=stations,
        cameras=cameras,
        flows=default_flows(),
        gateway=Gateway(
            id=f"gw-{spec.facility_id}-1",
            cloud=CloudEndpoint(
                endpoint="localhost:50051", tls=False, token_file=Path("secrets/gateway.token")
            ),
        ),
    )
    if spec.family != "along":
        config = _with_proposed_views(config, spec)
    return TwinLayout(config=config, spec=spec)


def _with_sensors(
    cameras: list[Camera], rng: np.random.Generator, resolutions: tuple[str, ...]
) -> list[Camera]:
    """Each camera with a sensor drawn from ``resolutions``: the same lens and field of
    view (the intrinsics scale with the width; the distortion is in normalised units)."""
    unknown = set(resolutions) - set(RESOLUTIONS)
    if unknown or not resolutions:
        raise ValueError(f"resolutions must be some of {', '.join(RESOLUTIONS)}: {resolutions}")
    out = []
    for camera in cameras:
        width, height = RESOLUTIONS[resolutions[int(rng.integers(len(resolutions)))]]
        scale = width / camera.resolution.width
        k = camera.intrinsics
        lens = Intrinsics(fx=k.fx * scale, fy=k.fy * scale, cx=k.cx * scale, cy=k.cy * scale)
        sensor = Resolution(width=width, height=height)
        out.append(camera.model_copy(update={"resolution": sensor, "intrinsics": lens}))
    return out


def _track_length(rng: np.random.Generator, spec: LayoutSpec) -> float:
    """A length in whole tens of metres within the spec's range."""
    low, high = (int(v // 10) for v in spec.track_lengths_m)
    return float(rng.integers(low, high + 1) * 10)


def default_flows() -> list[Flow]:
    """prod: the networks that work on depots they never saw (docs/demo.md); dev: the
    series classifier trained on this classic twin alone, beside it."""
    plate = EstimatorRef(model="plate@4", accept=PLATE_FORM)
    return [
        Flow(
            name="prod",
            position=EstimatorRef(model="position@3"),
            attributes={"model": EstimatorRef(model="model@2"), "plate": plate},
        ),
        Flow(
            name="dev",
            position=EstimatorRef(model="position@3"),
            attributes={"model": EstimatorRef(model="model@1"), "plate": plate},
            fse=FseSettings(join_gap_m=0.4),
        ),
    ]


def _stations(track: Track, rng: np.random.Generator, spec: LayoutSpec) -> list[Station]:
    count = int(rng.integers(spec.stations_per_track[0], spec.stations_per_track[1] + 1))
    margin = 5.0
    # Equal shares of the track, each station a little shorter than its share.
    share = (track.length_m - 2 * margin) / count
    stations = []
    for i in range(count):
        start = margin + i * share + float(rng.uniform(0.5, 2.0))
        end = margin + (i + 1) * share - float(rng.uniform(0.5, 2.0))
        stations.append(
            Station(
                id=f"{track.id}-S{i + 1}",
                track=track.id,
                start_m=round(start, 1),
                end_m=round(end, 1),
            )
        )
    return stations


def _cameras_along(
    track: Track, rng: np.random.Generator, spec: LayoutSpec, first_index: int
) -> list[Camera]:
    axis = TrackAxis.from_config(track)
    cameras: list[Camera] = []
    mount = -6.0  # the first camera stands before metre 0 to see locomotives come in
    while True:
        index = first_index + len(cameras)
        camera = _camera(f"cam-{index:02d}", axis, mount, rng, spec)
        if camera is not None:
            cameras.append(camera)
            if camera.views[0].end_m >= track.length_m - 0.5:
                break
        mount += spec.camera_spacing_m
        if mount > track.length_m + spec.camera_spacing_m:
            break
    return cameras


def _camera(
    camera_id: str, axis: TrackAxis, mount_m: float, rng: np.random.Generator, spec: LayoutSpec
) -> Camera | None:
    jitter = rng.uniform(-0.3, 0.3, 3)
    position = axis.to_world(
        mount_m + jitter[0], -spec.camera_side_m + jitter[1], spec.camera_height_m + jitter[2]
    )[0]
    target = axis.to_world(mount_m + spec.camera_aim_ahead_m, 0.0, 1.0)[0]
    draft = _draft_camera(camera_id, position, target, rng, spec, axis.track_id)
    span = _visible_span(CameraModel.from_config(draft), axis, position, spec)
    if span is None:
        return None
    return draft.model_copy(
        update={"views": [TrackView(track=axis.track_id, start_m=span[0], end_m=span[1])]}
    )


def _draft_camera(
    camera_id: str,
    position: np.ndarray,
    target: np.ndarray,
    rng: np.random.Generator,
    spec: LayoutSpec,
    track_id: str,
) -> Camera:
    """A camera at ``position`` aimed at ``target`` with a drawn lens; its one view is a
    placeholder on ``track_id`` until the caller knows what it sees."""
    rvec, tvec = pose_looking_at(position, target)
    focal = float(rng.uniform(740, 820))
    intrinsics = Intrinsics(
        fx=focal,
        fy=focal,
        cx=spec.width / 2 + float(rng.uniform(-6, 6)),
        cy=spec.height / 2 + float(rng.uniform(-6, 6)),
    )
    distortion = _lens_distortion(rng, math.hypot(spec.width, spec.height) / 2 / focal)
    pose = Pose(
        rvec=(float(rvec[0]), float(rvec[1]), float(rvec[2])),
        tvec=(float(tvec[0]), float(tvec[1]), float(tvec[2])),
    )
    return Camera(
        id=camera_id,
        source=f"sim://{spec.facility_id}/{camera_id}",
        fps=spec.fps,
        resolution=Resolution(width=spec.width, height=spec.height),
        intrinsics=intrinsics,
        distortion=distortion,
        pose=pose,
        views=[TrackView(track=track_id, start_m=0.0, end_m=1.0)],
    )


def _hall_cameras(tracks: list[Track], rng: np.random.Generator, spec: LayoutSpec) -> list[Camera]:
    """Wall cameras looking across the tracks (across, sparse) or roof cameras looking
    down along them (roof), placed along the hall."""
    length = max(t.length_m for t in tracks)
    far_y = tracks[-1].origin[1]
    cameras: list[Camera] = []
    for x, y, z, aim in _mounts(spec, length, far_y, rng):
        jitter = rng.uniform(-0.3, 0.3, 3)
        position = np.array([x, y, z]) + jitter
        camera_id = f"cam-{len(cameras) + 1:02d}"
        cameras.append(_draft_camera(camera_id, position, np.array(aim), rng, spec, tracks[0].id))
    return cameras


def _mounts(
    spec: LayoutSpec, length: float, far_y: float, rng: np.random.Generator
) -> list[tuple[float, float, float, tuple[float, float, float]]]:
    """(x, y, height, aim point) of each camera of a hall family."""
    middle_y = far_y / 2
    mounts = []
    if spec.family == "roof":
        for lane in range(spec.tracks - 1):  # above the middle between two tracks
            y = (lane + 0.5) * spec.track_spacing_m
            for x in np.arange(-4.0 + lane * 6.0, length, spec.camera_spacing_m):
                z = float(rng.uniform(*spec.roof_height_m))
                mounts.append((float(x), y, z, (float(x) + 16.0, y, 0.0)))
        return mounts
    walls = [-spec.wall_offset_m, far_y + spec.wall_offset_m]
    if spec.family == "sparse":  # one wall, from near the door to past the middle
        for x in np.arange(0.08 * length, 0.5 * length, spec.camera_spacing_m):
            z = float(rng.uniform(*spec.wall_height_m))
            mounts.append((float(x), walls[0], z, (float(x) + 10.0, middle_y + 3.0, 0.5)))
        return mounts
    for index, x in enumerate(np.arange(-2.0, length + 2.0, spec.camera_spacing_m / 2)):
        wall = walls[index % 2]  # staggered between the two walls
        z = float(rng.uniform(*spec.wall_height_m))
        ahead = float(rng.uniform(6.0, 14.0)) * (1 if index % 4 < 2 else -1)
        mounts.append((float(x), wall, z, (float(x) + ahead, middle_y, 0.5)))
    return mounts


def _with_proposed_views(config: FacilityConfig, spec: LayoutSpec) -> FacilityConfig:
    """Each camera's views as ``locowatch config views`` proposes them; cameras that see
    no track are left out."""
    from locowatch.facility.coverage import propose_views
    from locowatch.facility.visibility import FacilityVisibility

    proposal = propose_views(config, FacilityVisibility(config, max_range_m=spec.view_range_m))
    cameras = [
        c.model_copy(update={"views": proposal[c.id]}) for c in config.cameras if proposal[c.id]
    ]
    return config.model_copy(update={"cameras": cameras})


def _lens_distortion(rng: np.random.Generator, corner_radius: float) -> list[float]:
    """Barrel distortion of a wide CCTV lens, redrawn until the image corners are valid.

    The radial polynomial r (1 + k1 r^2 + k2 r^4 + k3 r^6) turns back beyond some radius;
    where that happens inside the image, corner pixels have no viewing ray at all.
    """
    radii = np.linspace(0.0, 3.0, 3001)
    while True:
        k1, k2, k3 = rng.uniform(-0.34, -0.24), rng.uniform(0.06, 0.12), rng.uniform(-0.02, 0.0)
        distorted = radii * (1 + k1 * radii**2 + k2 * radii**4 + k3 * radii**6)
        turning = np.flatnonzero(np.diff(distorted) <= 0)
        reach = distorted[turning[0]] if len(turning) else distorted[-1]
        if reach >= 1.1 * corner_radius:
            p1, p2 = rng.uniform(-1e-3, 1e-3, 2)
            return [float(k1), float(k2), float(p1), float(p2), float(k3)]


def _visible_span(
    model: CameraModel, axis: TrackAxis, position: np.ndarray, spec: LayoutSpec
) -> tuple[float, float] | None:
    """Metres of the track where the whole body height is in frame and within range."""
    s = np.arange(0.0, axis.length_m + 1e-9, 0.5)
    ok = np.hypot(*(axis.to_world(s)[:, :2] - position[:2]).T) <= spec.max_range_m
    for lateral, height in ((-1.6, 0.0), (1.6, 0.0), (0.0, 4.8)):
        ok &= model.visible(axis.to_world(s, lateral, height))
    if ok.sum() < 10:
        return None
    seen = s[ok]
    return float(seen.min()), float(seen.max())


def _survey(
    camera: Camera, rng: np.random.Generator, noise_px: float, layout: TwinLayout
) -> list[PointPair]:
    """Marks an installer would survey: rail edges and column marks across the view."""
    model = CameraModel.from_config(camera)
    view = camera.views[0]
    axis = layout.axis(view.track)
    pairs = []
    for s in np.linspace(view.start_m + 1.0, view.end_m - 1.0, 6):
        for lateral, height in ((-0.76, 0.0), (0.76, 0.0), (-2.5, 0.0), (2.4, 3.0)):
            world = axis.to_world(float(s), lateral, height)[0]
            pixel = model.project(world)[0]
            if 4 < pixel[0] < model.width - 4 and 4 < pixel[1] < model.height - 4:
                noisy = pixel + rng.normal(0.0, noise_px, 2)
                pairs.append(
                    PointPair(
                        image=(round(float(noisy[0]), 1), round(float(noisy[1]), 1)),
                        world=(
                            round(float(world[0]), 3),
                            round(float(world[1]), 3),
                            round(float(world[2]), 3),
                        ),
                    )
                )
    return pairs
