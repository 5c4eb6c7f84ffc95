"""Rectify camera images onto a track's *curtain*: the side of a locomotive body.

A locomotive on a track fills a box; the side of that box facing a camera is a vertical
plane parallel to the track, about 1.65 m from its centreline. Mapping the image onto that
plane gives a strip in which the horizontal axis is metres along the track and the
vertical axis is height above the rail, whatever the camera's angle and lens: bodies
appear as bands whose ends sit at their true metres. The position estimator reads such
strips; the attribute estimators read finer windows of them (the body for the series,
the cab side for the number plate).

The edge (aggregator) and the twin's training sets use these same functions, so a model
sees at run time exactly what it was trained on.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import cv2
import numpy as np

from locowatch.facility.geometry import CameraModel, TrackAxis

BODY_HALF_WIDTH_M = 1.65  # where the side of a 3.1-3.4 m wide body stands


@dataclass(frozen=True)
class CurtainWindow:
    """A window on a track's curtain: metres ``start_m..end_m``, heights ``bottom_m..top_m``."""

    start_m: float
    end_m: float
    bottom_m: float
    top_m: float
    metres_per_px: float

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) in pixels."""
        width = max(1, round((self.end_m - self.start_m) / self.metres_per_px))
        height = max(1, round((self.top_m - self.bottom_m) / self.metres_per_px))
        return width, height

    def column_metres(self) -> np.ndarray:
        """Track metre at the centre of each column."""
        width, _ = self.size
        return self.start_m + (np.arange(width) + 0.5) * self.metres_per_px


# What the estimators look at (the packet kinds of locowatch.v1.PacketKind).
STRIP_METRES_PER_PX = 0.1  # position: 31 m of track -> 310 columns
STRIP_HEIGHT = (0.0, 5.6)
BODY_METRES_PER_PX = 0.05  # series: a body window of up to 12 m
PLATE_METRES_PER_PX = 0.02  # plate: 2 cm per pixel, a 1.6 m plate is 80 px wide
PLATE_BAND = (2.3, 3.5)  # heights where cab-side numbers are painted
PLATE_REACH_M = 8.0  # plates sit within this distance of a body's real end


def strip_window(start_m: float, end_m: float) -> CurtainWindow:
    return CurtainWindow(start_m, end_m, *STRIP_HEIGHT, STRIP_METRES_PER_PX)


def body_window(start_m: float, end_m: float) -> CurtainWindow:
    return CurtainWindow(start_m, end_m, 0.6, 5.2, BODY_METRES_PER_PX)


def plate_window(end_m: float, direction: int) -> CurtainWindow:
    """The cab-side band next to a real end; ``direction`` +1 for a head, -1 for a tail."""
    a, b = end_m, end_m - direction * PLATE_REACH_M
    return CurtainWindow(min(a, b), max(a, b), *PLATE_BAND, PLATE_METRES_PER_PX)


@dataclass(frozen=True)
class Curtain:
    """One camera's view of one track's curtain, on the camera's side of the track."""

    camera: CameraModel
    axis: TrackAxis

    @cached_property
    def lateral_m(self) -> float:
        """Lateral offset of the curtain: the body side facing this camera."""
        _, lateral = self.axis.to_track(self.camera.position)
        return float(np.sign(lateral[0]) or -1.0) * BODY_HALF_WIDTH_M

    def maps(self, window: CurtainWindow) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``cv2.remap`` maps of a window (float32) and the mask of pixels the camera sees."""
        width, height = window.size
        s = window.column_metres()
        z = window.top_m - (np.arange(height) + 0.5) * window.metres_per_px
        ss, zz = np.meshgrid(s, z)
        world = self.axis.to_world(ss.ravel(), self.lateral_m, zz.ravel())
        pixels = self.camera.project(world)
        visible = self.camera.visible(world).reshape(height, width)
        map_x = pixels[:, 0].reshape(height, width).astype(np.float32)
        map_y = pixels[:, 1].reshape(height, width).astype(np.float32)
        map_x[~visible] = -1.0  # remap fills these with the border value (black)
        map_y[~visible] = -1.0
        return map_x, map_y, visible

    def rectify(self, image: np.ndarray, window: CurtainWindow) -> np.ndarray:
        map_x, map_y, _ = self.maps(window)
        return np.asarray(
            cv2.remap(
                image, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0
            )
        )

    def covered_span(self, window: CurtainWindow) -> tuple[float, float] | None:
        """Metres of the window whose whole height (rail to roof) is in view."""
        _, _, visible = self.maps(window)
        full = visible.all(axis=0)
        if not full.any():
            return None
        columns = window.column_metres()[full]
        half = window.metres_per_px / 2
        return float(columns.min() - half), float(columns.max() + half)
