"""What part of the twin depot a demo runs: whole tracks with their cameras, and a window.

A demo with fewer cameras than the depot has runs whole tracks, so that every locomotive
on them is seen and the score against ground truth means something. When not even one
track fits, it runs the first cameras of the first track and scores only the metres they
cover; the track its gateway and FSE are given then ends where those cameras stop seeing
it, in a door: beyond, the depot goes on under cameras the demo does not run, and a
locomotive that drives on there has left the demo (as the truth, clipped to the same
metres, says). The cameras keep their views of other tracks (a wall camera sees the near
tracks in front of the scope's far one): the gateway and FSE follow those too, and the
score keeps to the scope's tracks.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from locowatch.facility.config import TRACK_ENDS, Camera, FacilityConfig, Station, Track
from sim.twin import Twin


@dataclass(frozen=True)
class DemoScope:
    tracks: tuple[str, ...]
    cameras: tuple[str, ...]
    coverage: dict[str, tuple[float, float]]  # per track: the metres its cameras see
    window: tuple[float, float]  # scenario seconds played

    @property
    def duration_s(self) -> float:
        return self.window[1] - self.window[0]


def choose_cameras(facility: FacilityConfig, count: int) -> tuple[list[str], list[str]]:
    """The tracks and cameras of the whole-track set with the most cameras, at most ``count``."""
    on_track = {t.id: [c.id for c in facility.cameras if _sees(c, t.id)] for t in facility.tracks}
    best: tuple[str, ...] = ()
    for size in range(1, len(on_track) + 1):
        for tracks in itertools.combinations(on_track, size):
            cameras = _cameras_of(on_track, tracks)
            if len(cameras) <= count and len(cameras) > len(_cameras_of(on_track, best)):
                best = tracks
    if best:
        return list(best), _cameras_of(on_track, best)
    first = facility.tracks[0].id
    by_id = {c.id: c for c in facility.cameras}
    along = sorted(
        on_track[first],
        key=lambda c: min(v.start_m for v in by_id[c].views if v.track == first),
    )
    return [first], along[:count]


def coverage(
    facility: FacilityConfig, tracks: list[str], cameras: list[str]
) -> dict[str, tuple[float, float]]:
    """Per track, from the first metre any chosen camera sees to the last."""
    spans: dict[str, tuple[float, float]] = {}
    by_id = {c.id: c for c in facility.cameras}
    for camera_id in cameras:
        for view in by_id[camera_id].views:
            if view.track in tracks:
                start, end = spans.get(view.track, (view.start_m, view.end_m))
                spans[view.track] = (min(start, view.start_m), max(end, view.end_m))
    return spans


def busiest_window(
    twin: Twin, tracks: list[str], duration_s: float, step_s: float = 15.0
) -> tuple[float, float]:
    """The stretch of the day where the most locomotives move on ``tracks``."""
    day = twin.spec.scenario.duration_s
    if duration_s >= day:
        return (0.0, day)
    moving = np.array(
        [
            sum(
                1
                for loco in twin.truth(float(t))["locomotives"]
                if loco["track"] in tracks and loco["speed_mps"] > 0
            )
            for t in range(int(day))
        ]
    )
    starts = np.arange(0.0, day - duration_s + 1e-9, step_s)
    scores = [moving[int(s) : int(s + duration_s)].sum() for s in starts]
    start = float(starts[int(np.argmax(scores))])
    return (start, start + duration_s)


def scoped_facility(facility: FacilityConfig, scope: DemoScope) -> FacilityConfig:
    """``facility`` with the scope's cameras, every view they have, and the tracks those
    views are on (with their stations). A wall or roof camera sees other tracks in front
    of the scope's: the gateway must see the bodies there to know what they hide (as at
    a depot, where every view is configured); the score keeps to the scope's tracks."""
    by_id = {c.id: c for c in facility.cameras}
    cameras = [by_id[camera_id] for camera_id in scope.cameras]
    viewed = {v.track for c in cameras for v in c.views} | set(scope.tracks)
    tracks = [_cut(t, scope.coverage.get(t.id)) for t in facility.tracks if t.id in viewed]
    lengths = {t.id: t.length_m for t in tracks}
    stations = [_on(s, lengths[s.track]) for s in facility.stations if s.track in lengths]
    return facility.model_copy(
        update={
            "tracks": tracks,
            "stations": [s for s in stations if s is not None],
            "cameras": cameras,
        }
    )


def _cut(track: Track, covered: tuple[float, float] | None) -> Track:
    """``track`` ending, in a door, where the scope's cameras stop seeing it."""
    if covered is None or covered[1] >= track.length_m:
        return track
    doors = [end for end in TRACK_ENDS if end in track.doors or end == "end"]
    return track.model_copy(update={"length_m": covered[1], "doors": doors})


def _on(station: Station, length_m: float) -> Station | None:
    """``station`` as far as it lies on a track cut at ``length_m``."""
    if station.start_m >= length_m:
        return None
    return station.model_copy(update={"end_m": min(station.end_m, length_m)})


def _sees(camera: Camera, track_id: str) -> bool:
    return any(view.track == track_id for view in camera.views)


def _cameras_of(on_track: dict[str, list[str]], tracks: tuple[str, ...]) -> list[str]:
    return list(dict.fromkeys(c for t in tracks for c in on_track[t]))


def busiest_camera(twin: Twin, scope: DemoScope, period: tuple[float, float]) -> str:
    """The camera that sees the most locomotive metres over ``period`` (scenario seconds):
    the one to cut, to see whether the state keeps what it can no longer see."""
    by_id = {c.id: c for c in twin.facility.cameras}
    seen = dict.fromkeys(scope.cameras, 0.0)
    for t in np.arange(period[0], period[1], 1.0):
        locos = [x for x in twin.truth(float(t))["locomotives"] if x["track"] in scope.tracks]
        for camera_id in scope.cameras:
            seen[camera_id] += sum(
                max(0.0, min(view.end_m, loco["head_m"]) - max(view.start_m, loco["tail_m"]))
                for view in by_id[camera_id].views
                for loco in locos
                if loco["track"] == view.track
            )
    return max(scope.cameras, key=lambda c: seen[c])
