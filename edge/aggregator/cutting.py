"""Cut a camera frame into estimator packets with the camera's calibration.

Per camera and track view: a *strip* (the curtain along the view, 0.1 m a column) for the
position estimator, and, where the position estimator found bodies, a *body* window for
the series and the *end faces* facing the camera for the plate. The windows are the ones
the twin's training sets use (``locowatch.facility.rectify``), so the networks see at run
time what they were trained on. Remap tables are computed once per window and cached:
projecting a window's grid through the lens model costs far more than the remap itself.
"""

from __future__ import annotations

import math
from collections.abc import Collection
from dataclasses import dataclass
from functools import cached_property, lru_cache

import numpy as np

from locowatch.facility.config import Camera, FacilityConfig, TrackView
from locowatch.facility.geometry import CameraModel, TrackAxis
from locowatch.facility.rectify import (
    ANCHOR_INSET_M,
    BODY_METRES_PER_PX,
    PLATE_FACE_BANDS,
    PLATE_SIDE,
    Curtain,
    CurtainWindow,
    EndFace,
    Maps,
    body_span,
    body_window,
    remap,
    strip_window,
)

PLATE_SNAP_M = 0.05


@dataclass(frozen=True)
class Crop:
    """A window cut at a body: the pixels and where along the track they belong."""

    image: np.ndarray
    start_m: float
    end_m: float
    anchor_m: float
    window: str = ""  # plate crops: which window (locowatch.models.attributes.PLATE_WINDOWS)


@dataclass(frozen=True, eq=False)
class ViewCutter:
    """One camera's view of one track."""

    camera_id: str
    view: TrackView
    curtain: Curtain

    @cached_property
    def strip(self) -> CurtainWindow:
        return strip_window(self.view.start_m, self.view.end_m)

    @cached_property
    def covered(self) -> tuple[float, float] | None:
        """Metres seen from rail to roof; None when the camera sees no whole height."""
        return self.curtain.covered_span(self.strip)

    @cached_property
    def strip_maps(self) -> Maps:
        map_x, map_y, _ = self.curtain.maps(self.strip)
        return map_x, map_y

    @cached_property
    def faces(self) -> EndFace:
        return EndFace(self.curtain.camera, self.curtain.axis)

    def cut_strip(self, image: np.ndarray) -> np.ndarray:
        return remap(image, self.strip_maps)

    def cut_body(self, image: np.ndarray, start_m: float, end_m: float, tail_real: bool,
                 head_real: bool) -> Crop | None:  # fmt: skip
        """The series window of a body seen from ``start_m`` to ``end_m``, if long enough."""
        span = body_span(start_m, end_m, tail_real, head_real)
        if span is None:
            return None
        # Windows on the 0.05 m grid are column slices of one map of the whole view.
        first, columns = self._body_grid
        lo = min(max(round(span[0] / BODY_METRES_PER_PX) - first, 0), columns - 1)
        hi = min(max(round(span[1] / BODY_METRES_PER_PX) - first, lo + 1), columns)
        map_x, map_y = self._body_maps
        crop = remap(image, (map_x[:, lo:hi], map_y[:, lo:hi]))
        a, b = (first + lo) * BODY_METRES_PER_PX, (first + hi) * BODY_METRES_PER_PX
        return Crop(crop, a, b, (a + b) / 2)

    def cut_plates(
        self,
        image: np.ndarray,
        start_m: float,
        end_m: float,
        tail_real: bool,
        head_real: bool,
        windows: Collection[str] = ("end-high", "end-low"),
    ) -> list[Crop]:
        """The end faces of a body that face this camera (where its number is painted), in
        the ``windows`` asked for (``end-high``, ``end-low``)."""
        crops = []
        for end, real, direction in ((start_m, tail_real, -1), (end_m, head_real, 1)):
            if not real or not self.faces.faces_camera(end, direction):
                continue
            snapped = snap(end)
            anchor = end - direction * ANCHOR_INSET_M
            for band in PLATE_FACE_BANDS:  # under the cab windows, and the buffer beam
                if f"end-{band}" in windows:
                    maps = self.plate_maps(snapped, direction, band)
                    crop = remap(image, maps)
                    crops.append(Crop(crop, snapped, snapped, anchor, f"end-{band}"))
        return crops

    def cut_side_plate(self, image: np.ndarray, metre: float, height_m: float) -> Crop:
        """The window on the body side where the position network saw a plate."""
        snapped, height = snap(metre), snap(height_m)
        half, _ = PLATE_SIDE
        crop = remap(image, self.side_maps(snapped, height))
        return Crop(crop, snapped - half, snapped + half, snapped, "side")

    @cached_property
    def _body_grid(self) -> tuple[int, int]:
        """First 0.05 m column of the view (in metres / 0.05) and the number of columns."""
        first = math.floor(self.view.start_m / BODY_METRES_PER_PX)
        last = math.ceil(self.view.end_m / BODY_METRES_PER_PX)
        return first, last - first

    @cached_property
    def _body_maps(self) -> Maps:
        """Remap tables of the body window over the whole view (computed once: projecting
        a window's grid through the lens model costs far more than remapping it)."""
        first, columns = self._body_grid
        window = body_window(first * BODY_METRES_PER_PX, (first + columns) * BODY_METRES_PER_PX)
        map_x, map_y, _ = self.curtain.maps(window)
        return map_x, map_y

    @lru_cache(maxsize=512)  # noqa: B019 (one cutter per view, alive for the process)
    def side_maps(self, metre: float, height_m: float) -> Maps:
        """Remap maps of the side window at ``metre`` (snapped), ``height_m``."""
        return self.curtain.side_maps(metre, height_m)

    @lru_cache(maxsize=512)  # noqa: B019 (one cutter per view, alive for the process)
    def plate_maps(self, end_m: float, direction: int, band: str) -> Maps:
        """Remap maps of the end-face window at ``end_m`` (snapped), in ``band``."""
        map_x, map_y, _ = self.faces.maps(end_m, direction, band)
        return map_x, map_y


def snap(metre: float) -> float:
    """A plate window's place on the 5 cm grid: the window is 2.2 m wide and the reader
    finds the plate in it; estimated places jitter by centimetres, and each new place
    costs a projection."""
    return round(round(metre / PLATE_SNAP_M) * PLATE_SNAP_M, 3)


class FrameCutter:
    """Every camera's views of the facility, by camera and track."""

    def __init__(self, config: FacilityConfig) -> None:
        self.config = config
        axes = {t.id: TrackAxis.from_config(t) for t in config.tracks}
        self.views: dict[str, list[ViewCutter]] = {}
        for camera in config.cameras:
            model = CameraModel.from_config(camera)
            self.views[camera.id] = [
                ViewCutter(camera.id, view, Curtain(model, axes[view.track]))
                for view in camera.views
            ]

    def camera(self, camera_id: str) -> Camera | None:
        return self.config.camera_by_id.get(camera_id)

    def view(self, camera_id: str, track_id: str) -> ViewCutter | None:
        for view in self.views.get(camera_id, []):
            if view.view.track == track_id:
                return view
        return None
