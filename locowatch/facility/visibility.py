"""What a camera sees of a track, metre by metre, and what a nearer body hides from it.

A camera judges a stretch of track by the track's *curtain* there: the body side facing
it (``rectify.Curtain``). Where the *low band* of the curtain (``LOW_BAND``: bogies,
frame and lower body, where the ends of a body show) is in frame, the position
estimator can place bodies and their ends; where the whole body height is
(``FULL_BAND``), the series estimator sees the body too. A camera close beside a track
sees its lower body much further than its roof, so a view that needs the whole height
throws away metres that the low band alone would place.

A camera looking obliquely across several tracks sees a far track only where nothing
stands on the nearer ones in between. ``Shadow`` maps each metre of a far track to the
stretch of a nearer track whose body would stand in the way, so that, per frame, the
bodies seen on the nearer track say which metres of the far track are *hidden*: not
seen empty, not seen at all.

All of it is computed once per facility from the calibration (``FacilityVisibility``);
``config check`` prints it per track, and ``config views`` proposes each camera's views.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from locowatch.facility.config import FacilityConfig
from locowatch.facility.geometry import CameraModel, FloatArray, TrackAxis
from locowatch.facility.rectify import BODY_HALF_WIDTH_M, Curtain

GRID_M = 0.25  # metres between the points the model is computed at
LOW_BAND = (0.3, 2.0)  # heights above the rail: bogies, frame, lower body (ends show here)
FULL_BAND = (0.0, 4.6)  # rail to roof of the common series
BODY_HEIGHT_M = 5.0  # a body on a nearer track hides what lies behind it up to here
HEIGHT_STEP_M = 0.1
MIN_SPAN_M = 2.0  # shorter visible runs are slivers (a gap between two columns of pixels)

Span = tuple[float, float]


@dataclass(frozen=True)
class TrackVisibility:
    """How one camera sees one track: per grid metre, whether each band is in frame."""

    camera_id: str
    track_id: str
    metres: FloatArray  # grid cell centres along the track
    low: np.ndarray  # (n,) bool: the low band is in frame (bodies and ends can be placed)
    full: np.ndarray  # (n,) bool: the whole body height is in frame

    def low_spans(self, within: Span | None = None) -> list[Span]:
        return flag_spans(self.metres, self.low, within)

    def full_spans(self, within: Span | None = None) -> list[Span]:
        return flag_spans(self.metres, self.full, within)

    def low_metres(self, within: Span) -> float:
        return sum(b - a for a, b in self.low_spans(within))


@dataclass(frozen=True)
class Shadow:
    """Where a body on ``near_track`` hides the low band of ``far_track`` from a camera.

    Per grid metre of the far track, the stretch ``near_lo..near_hi`` of the near track
    (NaN: none) whose body, if one stands there, is in the way of some ray to the low band.
    """

    camera_id: str
    far_track: str
    near_track: str
    metres: FloatArray
    near_lo: FloatArray
    near_hi: FloatArray

    def hidden(self, near_bodies: Iterable[Span]) -> list[Span]:
        """Stretches of the far track hidden by bodies standing at these near-track spans."""
        blocked = np.zeros(len(self.metres), dtype=bool)
        for a, b in near_bodies:
            with np.errstate(invalid="ignore"):
                blocked |= (self.near_lo < b) & (self.near_hi > a)
        return flag_spans(self.metres, blocked, None, min_m=0.0)


@dataclass
class CameraVisibility:
    """One camera's view of every track, and the shadows nearer tracks cast on farther ones."""

    camera_id: str
    tracks: dict[str, TrackVisibility]
    shadows: dict[str, list[Shadow]] = field(default_factory=dict)  # far track -> shadows
    nearest_first: list[str] = field(default_factory=list)  # track ids, nearest the camera first

    def hidden(self, track_id: str, bodies: dict[str, list[Span]]) -> list[Span]:
        """Stretches of ``track_id`` hidden behind ``bodies`` (near track -> spans seen)."""
        spans: list[Span] = []
        for shadow in self.shadows.get(track_id, []):
            spans += shadow.hidden(bodies.get(shadow.near_track, []))
        return merge_spans(spans)


class FacilityVisibility:
    """The visibility model of a whole facility, built once from its config."""

    def __init__(self, config: FacilityConfig, max_range_m: float | None = None) -> None:
        axes = {t.id: TrackAxis.from_config(t) for t in config.tracks}
        self.cameras: dict[str, CameraVisibility] = {}
        for camera in config.cameras:
            model = CameraModel.from_config(camera)
            tracks = {tid: track_visibility(model, axis, max_range_m) for tid, axis in axes.items()}
            seen = {tid for tid, v in tracks.items() if v.low.any()}
            shadows: dict[str, list[Shadow]] = {}
            for far in sorted(seen):
                for near in sorted(axes):
                    if near == far:
                        continue
                    shadow = track_shadow(model, axes[far], axes[near])
                    if shadow is not None:
                        shadows.setdefault(far, []).append(shadow)
            distance = {tid: abs(float(axis.to_track(model.position)[1][0]))
                        for tid, axis in axes.items()}  # fmt: skip
            nearest = sorted(axes, key=lambda tid: distance[tid])
            self.cameras[camera.id] = CameraVisibility(camera.id, tracks, shadows, nearest)

    def track(self, camera_id: str, track_id: str) -> TrackVisibility:
        return self.cameras[camera_id].tracks[track_id]


def track_visibility(
    camera: CameraModel, axis: TrackAxis, max_range_m: float | None = None
) -> TrackVisibility:
    """Which bands of ``axis``'s curtain ``camera`` has in frame, grid metre by metre."""
    metres = np.arange(GRID_M / 2, axis.length_m, GRID_M)
    lateral = Curtain(camera, axis).lateral_m
    heights = np.arange(0.0, FULL_BAND[1] + HEIGHT_STEP_M / 2, HEIGHT_STEP_M)
    ss, hh = np.meshgrid(metres, heights)  # (heights, metres)
    world = axis.to_world(ss.ravel(), lateral, hh.ravel())
    visible = camera.visible(world).reshape(hh.shape)
    if max_range_m is not None:
        ground = axis.to_world(metres)[:, :2] - camera.position[:2]
        visible &= (np.hypot(ground[:, 0], ground[:, 1]) <= max_range_m)[None, :]
    in_low = (heights >= LOW_BAND[0] - 1e-9) & (heights <= LOW_BAND[1] + 1e-9)
    return TrackVisibility(
        camera_id=camera.camera_id,
        track_id=axis.track_id,
        metres=metres,
        low=np.asarray(visible[in_low].all(axis=0)),
        full=np.asarray(visible.all(axis=0)),
    )


def track_shadow(camera: CameraModel, far: TrackAxis, near: TrackAxis) -> Shadow | None:
    """The shadow a body on ``near`` casts on ``far``'s low band, or None if it never does.

    A ray from the camera to a point of the far curtain crosses the near track's body
    volume (``BODY_HALF_WIDTH_M`` either side of its centreline, rail to
    ``BODY_HEIGHT_M``) for a range of its parameter ``t`` in (0, 1); the near-track metres
    at the ends of that range bound the bodies that hide the point. Lateral offset and
    height are both linear in ``t``, so the range is exact.
    """
    metres = np.arange(GRID_M / 2, far.length_m, GRID_M)
    lateral = Curtain(camera, far).lateral_m
    heights = np.linspace(LOW_BAND[0], LOW_BAND[1], 4)
    ss, hh = np.meshgrid(metres, heights)
    target = far.to_world(ss.ravel(), lateral, hh.ravel())  # (k, 3)
    eye = camera.position
    s0, d0 = (float(v[0]) for v in near.to_track(eye))
    s1, d1 = near.to_track(target)
    z0, z1 = float(eye[2]) - near.rail_z, target[:, 2] - near.rail_z
    t_lo, t_hi = np.full(len(target), 1e-6), np.full(len(target), 1.0 - 1e-6)
    for start, end, lo, hi in ((d0, d1, -BODY_HALF_WIDTH_M, BODY_HALF_WIDTH_M),
                               (z0, z1, 0.0, BODY_HEIGHT_M)):  # fmt: skip
        t_lo, t_hi = _clip_linear(start, end, lo, hi, t_lo, t_hi)
    crossed = t_lo < t_hi
    if not crossed.any():
        return None
    m_a, m_b = s0 + t_lo * (s1 - s0), s0 + t_hi * (s1 - s0)
    near_lo = np.where(crossed, np.minimum(m_a, m_b), np.nan).reshape(hh.shape)
    near_hi = np.where(crossed, np.maximum(m_a, m_b), np.nan).reshape(hh.shape)
    lo_m, hi_m = np.fmin.reduce(near_lo, axis=0), np.fmax.reduce(near_hi, axis=0)  # NaN: none
    on_track = (hi_m > 0.0) & (lo_m < near.length_m)
    lo_m, hi_m = np.where(on_track, lo_m, np.nan), np.where(on_track, hi_m, np.nan)
    if np.isnan(lo_m).all():
        return None
    return Shadow(camera.camera_id, far.track_id, near.track_id, metres, lo_m, hi_m)


def _clip_linear(
    start: float | FloatArray,
    end: FloatArray,
    lo: float,
    hi: float,
    t_lo: FloatArray,
    t_hi: FloatArray,
) -> tuple[FloatArray, FloatArray]:
    """Narrow ``[t_lo, t_hi]`` to where ``start + t (end - start)`` lies in ``[lo, hi]``."""
    slope = end - start
    with np.errstate(divide="ignore", invalid="ignore"):
        a, b = (lo - start) / slope, (hi - start) / slope
    flat = np.abs(slope) < 1e-12
    inside = (np.asarray(start) >= lo) & (np.asarray(start) <= hi)
    enter = np.where(flat, np.where(inside, -np.inf, np.inf), np.minimum(a, b))
    leave = np.where(flat, np.where(inside, np.inf, -np.inf), np.maximum(a, b))
    return np.maximum(t_lo, enter), np.minimum(t_hi, leave)


def merge_spans(spans: Iterable[Span], gap_m: float = 1e-6) -> list[Span]:
    """Overlapping or touching spans as one, sorted."""
    out: list[Span] = []
    for a, b in sorted(spans):
        if out and a <= out[-1][1] + gap_m:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out


def subtract_spans(spans: Iterable[Span], holes: Iterable[Span]) -> list[Span]:
    """What of ``spans`` lies outside every hole."""
    out: list[Span] = []
    holes = merge_spans(holes)
    for a, b in merge_spans(spans):
        start = a
        for lo, hi in holes:
            if hi <= start or lo >= b:
                continue
            if lo > start:
                out.append((start, lo))
            start = max(start, hi)
        if start < b:
            out.append((start, b))
    return out


def flag_spans(
    metres: FloatArray, flags: np.ndarray, within: Span | None, min_m: float = MIN_SPAN_M
) -> list[Span]:
    """Runs of True cells as metre spans (cell edges), clipped to ``within``."""
    half = GRID_M / 2
    padded = np.concatenate([[False], flags, [False]])
    edges = np.flatnonzero(np.diff(padded.astype(np.int8)))
    spans = []
    for i, j in zip(edges[::2], edges[1::2], strict=True):
        a, b = float(metres[i] - half), float(metres[j - 1] + half)
        if within is not None:
            a, b = max(a, within[0]), min(b, within[1])
        if b - a >= max(min_m, 1e-9):
            spans.append((round(a, 3), round(b, 3)))
    return spans
