"""Calibrating a camera from clicked points: the solve, what to draw over the frame to
check it by eye, and writing the result into the facility file.

The pose is solved exactly as the product solves it everywhere else
(``CameraModel.from_config``: SQPnP, then Levenberg-Marquardt), so the page shows the pose
and reprojection error that ``locowatch config check`` and every service will compute from
the saved point pairs.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pydantic import ValidationError

from edge.capture.sources import SourceError, SourceOptions, open_source
from locowatch.errors import UsageError
from locowatch.facility.config import Camera, FacilityConfig, PointPair
from locowatch.facility.geometry import CameraModel, TrackAxis
from locowatch.facility.loading import dump_facility, load_facility
from locowatch.facility.rectify import Curtain, strip_window
from locowatch.files import write_atomic

MIN_POINTS = 6  # what the facility file asks for (Camera._pose_or_point_pairs)
GRAB_TRIES = 25  # frames read before giving up (a stream's first frames may be grey)
LINE_STEP_M = 0.5  # track lines are drawn through points this far apart


def grab_frame(camera: Camera, timeout_s: float = 10.0) -> np.ndarray:
    """One frame of the camera, read through capture's own source code."""
    options = SourceOptions(open_timeout_s=timeout_s, read_timeout_s=timeout_s)
    try:
        source = open_source(camera.source_url(), options)
    except SourceError as error:
        raise UsageError(f"{camera.id}: {error}") from None
    try:
        for _ in range(GRAB_TRIES):
            ok, image = source.read()
            if ok and image is not None:
                return np.asarray(image)
    finally:
        source.release()
    raise UsageError(f"{camera.id}: no frame from {camera.source.split('@')[-1]}")


def solve(camera: Camera, pairs: list[PointPair]) -> CameraModel | None:
    """The camera as ``pairs`` calibrate it (None below MIN_POINTS), with its reprojection
    errors; ValueError when no pose fits them."""
    if len(pairs) < MIN_POINTS:
        return None
    return CameraModel.from_config(camera.model_copy(update={"pose": None, "point_pairs": pairs}))


@dataclass(frozen=True)
class Overlay:
    name: str  # "track T1", "covered T1", "station T1-S2"
    u: list[float | None]  # image points, None between separate pieces
    v: list[float | None]


def overlays(config: FacilityConfig, camera: Camera, model: CameraModel) -> list[Overlay]:
    """Track centre lines, station boundaries and the stretch of each view the camera sees
    from rail to roof (the coverage), as the solved pose puts them in the image."""
    out = []
    axes = {t.id: TrackAxis.from_config(t) for t in config.tracks}
    for track in config.tracks:
        metres = np.arange(0.0, track.length_m + LINE_STEP_M, LINE_STEP_M)
        out.append(Overlay(f"track {track.id}", *_visible(model, axes[track.id].to_world(metres))))
    for station in config.stations:
        axis = axes[station.track]
        for end in (station.start_m, station.end_m):
            across = axis.to_world(np.full(9, end), np.linspace(-2, 2, 9))
            out.append(Overlay(f"station {station.id}", *_visible(model, across)))
    for view in camera.views:
        axis = axes[view.track]
        covered = Curtain(model, axis).covered_span(strip_window(view.start_m, view.end_m))
        if covered is None:
            continue
        metres = np.arange(covered[0], covered[1] + LINE_STEP_M / 2, LINE_STEP_M)
        out.append(Overlay(f"covered {view.track}", *_visible(model, axis.to_world(metres))))
    return [o for o in out if any(x is not None for x in o.u)]


def _visible(model: CameraModel, world: np.ndarray) -> tuple[list[float | None], ...]:
    """Image points of ``world``, None where the camera does not see them (line breaks)."""
    pixels, inside = model.image_points(world)
    u = [float(p[0]) if ok else None for p, ok in zip(pixels, inside, strict=True)]
    v = [float(p[1]) if ok else None for p, ok in zip(pixels, inside, strict=True)]
    return u, v


def save_point_pairs(path: Path, camera_id: str, pairs: list[PointPair]) -> Path:
    """Write ``pairs`` as the camera's calibration (its pose is then solved from them),
    after checking the whole file still validates; the old file is kept beside it."""
    config = load_facility(path)
    cameras = [
        c.model_copy(update={"pose": None, "point_pairs": pairs}) if c.id == camera_id else c
        for c in config.cameras
    ]
    if camera_id not in {c.id for c in config.cameras}:
        raise UsageError(f"no camera {camera_id!r} in {path}")
    try:
        updated = FacilityConfig.model_validate(
            config.model_copy(update={"cameras": cameras}).model_dump(mode="json")
        )
    except ValidationError as error:
        raise UsageError(f"the calibration was not saved: {error}") from None
    backup = path.with_name(f"{path.name}.{time.strftime('%Y%m%d-%H%M%S')}.bak")
    shutil.copy2(path, backup)
    header = f"Facility {updated.facility.id}: calibrated in the browser ({camera_id})."
    write_atomic(path, dump_facility(updated, header))
    return backup
