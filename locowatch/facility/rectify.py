"""Rectify camera images onto a track's *curtain*: the side of a locomotive body.

A locomotive on a track fills a box; the side of that box facing a camera is a vertical
plane parallel to the track, here 1.72 m from its centreline: just outside the widest body,
so that a ray reaching the curtain beyond a body's end never grazes its side. Mapping the
image onto that plane gives a strip in which the horizontal axis is metres along the track and the
vertical axis is height above the rail, whatever the camera's angle and lens: bodies
appear as bands whose ends sit at their true metres. The position estimator reads such
strips; the series estimator reads finer windows of them. Numbers are read from end
faces (``EndFace``): a camera looking along the track sees the ends that face it head-on,
while it sees the side of a body far too obliquely to read anything painted there.

The price of a single curtain for all series: for a body narrower than the curtain, the
band ends short of a far end (the one facing away from the camera) by
``(end - s_camera) * (1 - (a - curtain) / (a - half_width))`` for a camera ``a`` metres
off the centreline; near ends and ends facing the camera are where positions are sharp.

The edge (aggregator) and the twin's training sets use these same functions, so a model
sees at run time exactly what it was trained on.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import cv2
import numpy as np

from locowatch.facility.geometry import CameraModel, TrackAxis

Maps = tuple[np.ndarray, np.ndarray]  # cv2.remap's x and y tables of a window


def remap(image: np.ndarray, maps: Maps) -> np.ndarray:
    """A window's pixels from a camera image; what the camera does not see stays black."""
    return np.asarray(
        cv2.remap(image, maps[0], maps[1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    )


BODY_HALF_WIDTH_M = 1.72  # just outside the side of the widest (3.4 m) bodies


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
PLATE_METRES_PER_PX = 0.01  # plate: 1 cm per pixel, a 1.2 m end plate is 120 px wide
# an end face is read in two windows of the same size: under the cab windows (``high``)
# and on the buffer beam (``low``); both are 1.1 m tall
PLATE_FACE_BANDS: dict[str, tuple[float, float]] = {"high": (1.6, 2.7), "low": (0.6, 1.7)}
PLATE_FACE = (1.1, *PLATE_FACE_BANDS["high"])  # half width, bottom, top (m): the high one
PLATE_SIDE = (1.1, 0.55)  # half width, half height (m) of a window on a body side
PLATE_INSET_M = 0.5  # end faces of hood units stand back from the body's real end


BODY_MIN_M = 5.0  # a shorter visible stretch says too little about the series
BODY_MAX_M = 12.0  # series windows are at most this long (the cab end says most)
ANCHOR_INSET_M = 1.5  # a reading from an end belongs this far inside the body


def body_span(
    tail_m: float, head_m: float, tail_real: bool, head_real: bool
) -> tuple[float, float] | None:
    """The stretch of a visible body to read the series from: at most 12 m, next to a real
    end when there is one (the cab), else the middle; None when less than 5 m shows."""
    if head_m - tail_m < BODY_MIN_M:
        return None
    if head_real:
        return max(tail_m, head_m - BODY_MAX_M), head_m
    if tail_real:
        return tail_m, min(head_m, tail_m + BODY_MAX_M)
    middle = (tail_m + head_m) / 2
    return max(tail_m, middle - BODY_MAX_M / 2), min(head_m, middle + BODY_MAX_M / 2)


def strip_window(start_m: float, end_m: float) -> CurtainWindow:
    return CurtainWindow(start_m, end_m, *STRIP_HEIGHT, STRIP_METRES_PER_PX)


def body_window(start_m: float, end_m: float) -> CurtainWindow:
    return CurtainWindow(start_m, end_m, 0.6, 5.2, BODY_METRES_PER_PX)


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
        pixels, inside = self.camera.image_points(world)  # one projection for both
        visible = inside.reshape(height, width)
        map_x = pixels[:, 0].reshape(height, width).astype(np.float32)
        map_y = pixels[:, 1].reshape(height, width).astype(np.float32)
        map_x[~visible] = -1.0  # remap fills these with the border value (black)
        map_y[~visible] = -1.0
        return map_x, map_y, visible

    def rectify(self, image: np.ndarray, window: CurtainWindow) -> np.ndarray:
        map_x, map_y, _ = self.maps(window)
        return remap(image, (map_x, map_y))

    @property
    def reads_reversed(self) -> bool:
        """Whether text on the side facing the camera reads against growing metres (seen
        from the left of the track, as the axis runs): such windows are mirrored back."""
        return self.lateral_m > 0

    def side_maps(self, centre_m: float, height_m: float) -> Maps:
        """Remap maps of a plate window on the body side centred at ``centre_m``,
        ``height_m``: as large as an end-face window, text upright and left to right."""
        half, half_height = PLATE_SIDE
        window = CurtainWindow(
            centre_m - half,
            centre_m + half,
            height_m - half_height,
            height_m + half_height,
            PLATE_METRES_PER_PX,
        )
        map_x, map_y, _ = self.maps(window)
        if self.reads_reversed:
            map_x, map_y = map_x[:, ::-1].copy(), map_y[:, ::-1].copy()
        return map_x, map_y

    def seen_at(self, world: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Where the camera sees world points ``(n, 3)`` on the curtain: (metres, heights).

        A side nearer the track than the curtain (a narrow hood) shows shifted along it,
        away from the camera, as in the strip.
        """
        points = np.asarray(world, dtype=np.float64).reshape(-1, 3)
        camera = self.camera.position.reshape(1, 3)
        _, camera_lateral = self.axis.to_track(camera)
        _, lateral = self.axis.to_track(points)
        k = (self.lateral_m - camera_lateral[0]) / (lateral - camera_lateral[0])
        on = camera + k[:, None] * (points - camera)
        metres, _ = self.axis.to_track(on)
        return metres, on[:, 2] - self.axis.rail_z

    def covered_span(self, window: CurtainWindow) -> tuple[float, float] | None:
        """Metres of the window whose whole height (rail to roof) is in view."""
        _, _, visible = self.maps(window)
        full = visible.all(axis=0)
        if not full.any():
            return None
        columns = window.column_metres()[full]
        half = window.metres_per_px / 2
        return float(columns.min() - half), float(columns.max() + half)


@dataclass(frozen=True)
class EndFace:
    """The end of a body (a cab front, a hood end) seen by one camera, where numbers are.

    A camera looking along the track sees the ends that face it nearly head-on, so the
    number painted there is readable where the side of the body is seen far too obliquely.
    """

    camera: CameraModel
    axis: TrackAxis

    def faces_camera(self, end_m: float, direction: int) -> bool:
        """Whether the end at ``end_m`` (``direction`` +1 head, -1 tail) faces the camera."""
        s_camera = float(self.axis.to_track(self.camera.position)[0][0])
        return (s_camera - end_m) * direction > PLATE_INSET_M

    def window_size(self) -> tuple[int, int]:
        half, bottom, top = PLATE_FACE
        return round(2 * half / PLATE_METRES_PER_PX), round((top - bottom) / PLATE_METRES_PER_PX)

    def maps(
        self, end_m: float, direction: int, band: str = "high"
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Remap maps of the face window (``band`` of PLATE_FACE_BANDS) on the plane just
        inside the end, text upright and left to right as read from in front of that end."""
        half = PLATE_FACE[0]
        _, top = PLATE_FACE_BANDS[band]
        width, height = self.window_size()
        lateral = (np.arange(width) + 0.5) * PLATE_METRES_PER_PX - half
        if direction < 0:  # in front of a tail one looks along growing metres: left is +lateral
            lateral = lateral[::-1]
        z = top - (np.arange(height) + 0.5) * PLATE_METRES_PER_PX
        ll, zz = np.meshgrid(lateral, z)
        plane = end_m - direction * PLATE_INSET_M / 2
        world = self.axis.to_world(np.full(ll.size, plane), ll.ravel(), zz.ravel())
        pixels, inside = self.camera.image_points(world)  # one projection for both
        visible = inside.reshape(height, width)
        map_x = pixels[:, 0].reshape(height, width).astype(np.float32)
        map_y = pixels[:, 1].reshape(height, width).astype(np.float32)
        map_x[~visible] = -1.0
        map_y[~visible] = -1.0
        return map_x, map_y, visible

    def rectify(
        self, image: np.ndarray, end_m: float, direction: int, band: str = "high"
    ) -> np.ndarray:
        map_x, map_y, _ = self.maps(end_m, direction, band)
        return remap(image, (map_x, map_y))
