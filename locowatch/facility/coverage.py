"""Coverage of a facility's tracks by its cameras' views, for installers.

``coverage_report`` says, per track, which metres each configured view sees and how
(the whole body height, or the lower body only), which metres no view sees, and what is
wrong: a view partly or wholly out of view is a warning that names the camera, the track
and the metres, because the edge ignores those metres. ``propose_views`` derives each
camera's views from its calibration, so nobody reads metres off an image by hand.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from locowatch.facility.config import FacilityConfig, TrackView
from locowatch.facility.geometry import FloatArray
from locowatch.facility.visibility import (
    FacilityVisibility,
    Span,
    merge_spans,
    subtract_spans,
)

MIN_VIEW_M = 3.0  # proposed views shorter than this are not worth a packet per frame


@dataclass(frozen=True)
class Finding:
    level: Literal["warning", "error"]
    message: str


@dataclass(frozen=True)
class ViewCoverage:
    """One configured view: what of it the camera sees, and how."""

    camera_id: str
    track_id: str
    view: Span
    low: list[Span]  # the lower body in frame: bodies and ends can be placed
    full: list[Span]  # the whole body height in frame
    hidden_by: list[str]  # nearer tracks whose bodies can hide parts of it

    @property
    def out_of_view(self) -> list[Span]:
        return subtract_spans([self.view], self.low)


@dataclass(frozen=True)
class TrackCoverage:
    track_id: str
    length_m: float
    doors: list[str]
    views: list[ViewCoverage] = field(default_factory=list)

    @property
    def seen(self) -> list[Span]:
        return merge_spans(s for v in self.views for s in v.low)

    @property
    def unseen(self) -> list[Span]:
        return subtract_spans([(0.0, self.length_m)], self.seen)


def coverage_report(
    config: FacilityConfig, visibility: FacilityVisibility
) -> tuple[list[TrackCoverage], list[Finding]]:
    tracks = {t.id: TrackCoverage(t.id, t.length_m, list(t.doors)) for t in config.tracks}
    findings: list[Finding] = []
    for camera in config.cameras:
        seen_by = visibility.cameras[camera.id]
        for view in camera.views:
            span = (view.start_m, view.end_m)
            model = seen_by.tracks[view.track]
            shadows = seen_by.shadows.get(view.track, [])
            coverage = ViewCoverage(
                camera.id,
                view.track,
                span,
                model.low_spans(span),
                model.full_spans(span),
                sorted({s.near_track for s in shadows if _shades(s.metres, s.near_lo, span)}),
            )
            tracks[view.track].views.append(coverage)
            findings += _view_findings(coverage)
    return list(tracks.values()), findings


def _shades(metres: FloatArray, near_lo: FloatArray, span: Span) -> bool:
    """Whether a shadow reaches into ``span`` (some metre there has a hiding stretch)."""
    inside = (metres >= span[0]) & (metres <= span[1])
    return bool((~np.isnan(near_lo[inside])).any())


def _view_findings(view: ViewCoverage) -> list[Finding]:
    name = f"{view.camera_id} view of {view.track_id} ({_span(view.view)})"
    if not view.low:
        return [
            Finding(
                "warning",
                f"{name}: the lower body is out of view everywhere in it: the view is not used",
            )
        ]
    missing = [s for s in view.out_of_view if s[1] - s[0] >= 0.5]
    if not missing:
        return []
    metres = ", ".join(_span(s) for s in missing)
    return [
        Finding(
            "warning",
            f"{name}: {metres} out of view (the lower body is not in frame there): not used there",
        )
    ]


def propose_views(
    config: FacilityConfig, visibility: FacilityVisibility, min_view_m: float = MIN_VIEW_M
) -> dict[str, list[TrackView]]:
    """Per camera, a view of every track whose lower body it has in frame (the longest
    stretch of each track, at least ``min_view_m``)."""
    proposal: dict[str, list[TrackView]] = {}
    for camera in config.cameras:
        views = []
        for track in config.tracks:
            spans = visibility.track(camera.id, track.id).low_spans()
            if not spans:
                continue
            a, b = max(spans, key=lambda s: s[1] - s[0])
            if b - a >= min_view_m:
                views.append(TrackView(track=track.id, start_m=round(a, 1), end_m=round(b, 1)))
        proposal[camera.id] = views
    return proposal


def _span(span: Span) -> str:
    return f"{span[0]:.1f}-{span[1]:.1f} m"


def describe(tracks: list[TrackCoverage]) -> list[str]:
    """The report as lines for a terminal."""
    lines = []
    for track in tracks:
        doors = ", ".join(track.doors) or "none (dead ends)"
        lines.append(f"  {track.track_id} (0-{track.length_m:.0f} m, doors: {doors}):")
        for view in sorted(track.views, key=lambda v: v.view):
            partial = subtract_spans(view.low, view.full)
            how = (
                "whole body"
                if not partial
                else "lower body only at " + ", ".join(_span(s) for s in partial)
            )
            seen = ", ".join(_span(s) for s in view.low) or "nothing"
            hidden = (
                f"; hidden where a locomotive stands on {', '.join(view.hidden_by)}"
                if view.hidden_by
                else ""
            )
            lines.append(f"    {view.camera_id}: sees {seen} ({how}){hidden}")
        unseen = ", ".join(_span(s) for s in track.unseen if s[1] - s[0] >= 0.5)
        lines.append(f"    no camera sees: {unseen or 'nothing (fully covered)'}")
    return lines
