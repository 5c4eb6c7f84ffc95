"""Score a demo run: the twin's ground truth on the run's clock, accuracy per flow, latency.

The gateway stamps frames with the wall clock when it grabs them; the twin's truth is in
scenario seconds. The footage starts playing at a known wall time, so the truth is
restamped onto the wall clock (and kept to the demo's tracks and the metres its cameras
cover) and written where ``locowatch eval --truth`` reads it.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import psycopg

from demo.scope import DemoScope
from locowatch.facility.config import Camera
from sim.evaluation import (
    Loco,
    Scores,
    Snapshot,
    clip_span,
    evaluate,
    read_snapshots,
    read_snapshots_from_db,
)
from sim.twin import Twin

TRUTH_STEP_S = 0.1  # truth lines this far apart: eval pairs each snapshot with the nearest


def scope_truth(twin: Twin, scope: DemoScope) -> list[dict[str, Any]]:
    """The twin's truth every TRUTH_STEP_S of the scope's window (scenario seconds), as
    the demo's cameras see it; computed once for the delay fit and the truth file."""
    start, end = scope.window
    return [twin.truth(float(t), scope.cameras) for t in np.arange(start, end, TRUTH_STEP_S)]


def write_truth(
    truth: list[dict[str, Any]], scope: DemoScope, played_at: float, path: Path
) -> Path:
    """Ground truth of the scope from scenario second ``scope.window[0]`` = wall ``played_at``."""
    start, end = scope.window
    with path.open("w", encoding="utf-8") as out:
        for t, record in zip(np.arange(start, end, TRUTH_STEP_S), truth, strict=True):
            locos = [_clipped(loco, scope) for loco in record["locomotives"]]
            line = {
                "time": played_at + (float(t) - start),
                "t": record["t"],
                "locomotives": [loco for loco in locos if loco is not None],
            }
            out.write(json.dumps(line, ensure_ascii=False) + "\n")
    return path


# The delay between the twin showing a frame and the gateway stamping it (RTSP server,
# network, decoder; under a loaded machine, frames can queue). The twin cannot know it, so
# it is measured: the delay that best lines the gateway's real ends up with the true ones.
# Searched wide: before the streamer waited for its replays to start, they started while
# the gateway's services loaded and took 2 to 6 s (a fit stuck at a 5 s bound misplaced
# every truth). Below zero too: the twin's clock is the replays' median start, which
# some cameras beat by a little.
DELAYS_S = np.arange(-1.0, 10.001, 0.05)
END_ERROR_CAP_M = 2.0  # an end further than this from every true end is an outlier
MIN_FIT_ENDS = 100  # a flow with fewer real ends in a run does not choose the delay
DELAY_TIE_M = 0.01  # delays whose mean end error is this close to the best fit as well
REAL_ENDS_SQL = """
    SELECT extract(epoch FROM time), track_id, interval_start_m, interval_end_m,
           start_real, end_real
    FROM position_estimations
    WHERE flow = %(flow)s AND time BETWEEN %(start)s AND %(end)s
      AND track_id = ANY(%(tracks)s)
"""


@dataclass(frozen=True)
class StreamDelay:
    """The camera delay that best lines one flow's real ends up with the true ones."""

    seconds: float
    flow: str
    ends: int  # real ends the fit used
    error_m: float  # their mean distance to the nearest true end then (capped)


def stream_delay(
    db_url: str,
    truth: list[dict[str, Any]],
    scope: DemoScope,
    played_at: float,
    flows: Sequence[str] = ("prod",),
) -> StreamDelay:
    """The camera delay that best explains the raw estimations, fitted on each flow's real
    ends: the flow whose ends it explains best gives it (on a camera family the prod
    network was never trained on, its ends are noise and fit any delay about as badly)."""
    true_ends = [_true_ends(record, scope) for record in truth]
    fits = [_fit_delay(db_url, flow, played_at, scope, true_ends) for flow in flows]
    enough = [fit for fit in fits if fit.ends >= MIN_FIT_ENDS] or fits
    return min(enough, key=lambda fit: (fit.error_m, -fit.ends))


def _fit_delay(
    db_url: str,
    flow: str,
    played_at: float,
    scope: DemoScope,
    true_ends: list[dict[str, list[float]]],
) -> StreamDelay:
    params = {
        "flow": flow,
        "start": datetime.fromtimestamp(played_at, UTC),
        "end": datetime.fromtimestamp(played_at + scope.duration_s + 5, UTC),
        "tracks": list(scope.tracks),
    }
    with psycopg.connect(db_url) as conn:
        rows = conn.execute(REAL_ENDS_SQL, params).fetchall()
    # the ends the truth can judge at every delay searched, so each delay is judged on
    # the same ends (dropping the ends a delay pushes out of the truth's window favoured
    # the longest delays by a hair when nothing moved)
    first, last = played_at + DELAYS_S[-1], played_at + scope.duration_s + DELAYS_S[0]
    observed = [
        (float(stamp), track, float(metre))
        for stamp, track, starts, ends, starts_real, ends_real in rows
        if first <= float(stamp) < last
        for metres, real in ((starts, starts_real), (ends, ends_real))
        for metre, is_real in zip(metres, real, strict=True)
        if is_real
    ]
    if not observed:
        return StreamDelay(0.0, flow, 0, END_ERROR_CAP_M)
    costs = np.array([_mean_end_error(observed, delay, played_at, true_ends) for delay in DELAYS_S])
    best = best_delay(costs)
    return StreamDelay(float(DELAYS_S[best]), flow, len(observed), float(costs[best]))


def best_delay(costs: np.ndarray) -> int:
    """Index into DELAYS_S of the delay to take, from each delay's mean end error. Ends of
    standing locomotives fit every delay alike: of the delays within DELAY_TIE_M of the
    best, the one nearest the twin's own clock (0 s)."""
    near_best = np.flatnonzero(costs <= costs.min() + DELAY_TIE_M)
    return int(near_best[np.argmin(np.abs(DELAYS_S[near_best]))])


def _mean_end_error(
    observed: list[tuple[float, str, float]],
    delay: float,
    played_at: float,
    true_ends: list[dict[str, list[float]]],
) -> float:
    errors = []
    for stamp, track, metre in observed:
        index = min(max(round((stamp - delay - played_at) / TRUTH_STEP_S), 0), len(true_ends) - 1)
        candidates = true_ends[index].get(track, [])
        nearest = min((abs(metre - e) for e in candidates), default=END_ERROR_CAP_M)
        errors.append(min(nearest, END_ERROR_CAP_M))
    return float(np.mean(errors))


def _true_ends(record: dict[str, object], scope: DemoScope) -> dict[str, list[float]]:
    ends: dict[str, list[float]] = {}
    for loco in record["locomotives"]:  # type: ignore[attr-defined]
        if loco["track"] in scope.tracks:
            ends.setdefault(loco["track"], []).extend([loco["tail_m"], loco["head_m"]])
    return ends


def score_flow(
    db_url: str, truth_path: Path, flow: str, start: float, tracks: Collection[str]
) -> Scores:
    """What ``locowatch eval --truth TRUTH --db URL --flow FLOW --tracks ...`` prints, from
    ``start`` on: the scope's tracks (its cameras' views of others give the state more)."""
    truth = [s for s in read_snapshots(truth_path) if s.time >= start - 1]
    state = read_snapshots_from_db(db_url, flow, start, truth[-1].time + 1)
    return evaluate(truth, state, tracks=tracks)


@dataclass(frozen=True)
class Latency:
    """Frame capture to the first state row that includes it, in seconds."""

    frames: int
    median_s: float | None
    p95_s: float | None


# For each position estimation (one per camera frame and track) of the flow, the first
# state snapshot at or after the frame's capture time: when its row was written.
LATENCY_SQL = """
    SELECT count(*), percentile_cont(0.5) WITHIN GROUP (ORDER BY latency),
           percentile_cont(0.95) WITHIN GROUP (ORDER BY latency)
    FROM (
        SELECT extract(epoch FROM s.written_at - p.time) AS latency
        FROM position_estimations p
        CROSS JOIN LATERAL (
            SELECT written_at FROM state_snapshots s
            WHERE s.facility_id = p.facility_id AND s.flow = p.flow AND s.time >= p.time
            ORDER BY s.time LIMIT 1
        ) s
        WHERE p.flow = %(flow)s AND p.time BETWEEN %(start)s AND %(end)s
    ) frames
"""


def capture_to_state_latency(db_url: str, flow: str, start: float, end: float) -> Latency:
    params = {
        "flow": flow,
        "start": datetime.fromtimestamp(start, UTC),
        "end": datetime.fromtimestamp(end, UTC),
    }
    with psycopg.connect(db_url) as conn:
        row = conn.execute(LATENCY_SQL, params).fetchone()
    assert row is not None
    frames, median, p95 = row
    return Latency(int(frames), _float(median), _float(p95))


def _clipped(loco: dict[str, object], scope: DemoScope) -> dict[str, object] | None:
    """A truth line's locomotive kept to the scope's metres; partly past them, it is in
    the door (the demo's track ends there)."""
    span = scope.coverage.get(str(loco["track"]))
    if span is None:
        return None
    clipped = clip_span(float(loco["tail_m"]), float(loco["head_m"]), span)  # type: ignore[arg-type]
    if clipped is None:
        return None
    tail, head, in_door = clipped
    return {**loco, "tail_m": tail, "head_m": head, "in_door": in_door}


def _float(value: object) -> float | None:
    return None if value is None else float(value)  # type: ignore[arg-type]


@dataclass(frozen=True)
class DarkCamera:
    """How the state did while one camera was cut."""

    camera_id: str
    snapshots: int
    locomotives_under_it: int  # true (snapshot, locomotive) pairs in its view
    lost: int  # of those, missing from the state


def score_while_dark(
    db_url: str,
    truth_path: Path,
    flow: str,
    camera: Camera,
    dark: tuple[float, float],
) -> DarkCamera:
    """The locomotives a cut camera would have seen: does the state still hold them?"""
    start, end = dark
    views = [(v.track, v.start_m, v.end_m) for v in camera.views]

    def under_it(loco: Loco) -> bool:
        return any(
            loco.track == track and loco.tail_m < stop and loco.head_m > begin
            for track, begin, stop in views
        )

    truth = [
        Snapshot(s.time, tuple(x for x in s.locos if under_it(x)), s.written_at)
        for s in read_snapshots(truth_path)
        if start - 1 <= s.time <= end + 1
    ]
    state = list(read_snapshots_from_db(db_url, flow, start, end))
    scores = evaluate(truth, state)
    return DarkCamera(camera.id, scores.snapshots, scores.matched + scores.missed, scores.missed)
