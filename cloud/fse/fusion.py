"""Fuse what every camera says about one track into bodies: occupied stretches with ends.

Each camera's latest position estimation is evidence on a grid along the track (10 cm
cells): inside its intervals it votes "occupied", elsewhere in the stretch it covers it
votes "empty", weighted by confidence. Stretches a camera could not judge get no vote
from it: those it says were blind (hidden behind a nearer body, out of view), and those
between two cut ends or next to a cut end, where an occluder may stand.
Cells that no fresh camera covers are *unknown*: a body running into them is open-ended.

A body's end is placed at a real end some camera saw near the edge of the occupied run
(averaged, so two overlapping cameras beat one); failing that, at the run's edge, and
marked not real. Runs are cells, but ends keep the estimators' sub-cell precision.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field

from cloud.records import Interval, PositionRecord
from locowatch.facility.visibility import merge_spans, subtract_spans

GRID_M = 0.1
END_SNAP_M = 0.6  # a real end this close to a run's edge places that edge
MIN_BODY_M = 1.5  # shorter occupied runs inside known-empty track are noise...
ENTRY_M = 0.5  # ... unless this close to a track end: a nose driving in
VIEW_EDGE_M = 0.25  # a real end this close to a camera's view edge may be a cut
MAX_BODY_M = 45.0  # the longest locomotive (two-section units reach 40 m) and some slack
# Votes are summed in floating point: a camera's "empty" vote laid and taken back leaves
# a residue of about 1e-16, which must not read as "occupied" (it made whole unseen
# stretches of track one locomotive while cameras were still coming up).
VOTE_EPS = 1e-6


@dataclass(frozen=True, slots=True)
class Body:
    """One occupied stretch of a track, as all fresh cameras together see it."""

    tail_m: float
    head_m: float
    tail_real: bool  # a camera saw the real end there
    head_real: bool
    tail_open: bool  # beyond the tail is unknown (no camera) or the track's end
    head_open: bool
    tail_age_s: float = 0.0  # how old the estimations that placed a real end are
    head_age_s: float = 0.0
    tail_split: bool = False  # the tracker cut the body here between two locomotives
    head_split: bool = False

    @property
    def length_m(self) -> float:
        return self.head_m - self.tail_m


@dataclass(frozen=True)
class TrackView:
    """The fused picture of one track at one instant."""

    length_m: float
    bodies: list[Body]
    known: list[tuple[int, int]]  # runs of grid cells [a, b) some fresh camera judged
    cells: int  # grid cells along the track
    # The first and last metre some fresh camera has in view, hidden or not (None: none):
    # beyond them the track is a doorway no camera can see.
    in_view_m: tuple[float, float] | None = None
    # Every real end (tail or head) some fresh camera saw and others do not outvote by
    # seeing one body run on through it (``_not_seen_through``):
    # where nobody saw one, nothing says two locomotives meet there.
    real_ends_m: tuple[float, ...] = ()

    def known_fraction(self, tail_m: float, head_m: float) -> float:
        """Share of ``[tail_m, head_m]`` (clipped to the track) that some camera judged."""
        a, b = _cells(max(tail_m, 0.0), min(head_m, self.length_m), self.cells)
        if b <= a:
            return 0.0
        judged = sum(min(hi, b) - max(lo, a) for lo, hi in self.known if lo < b and hi > a)
        return judged / (b - a)


def fuse_track(
    length_m: float,
    now: float,
    observations: Iterable[PositionRecord],
    join_gap_m: float = 0.5,
    max_occluded_m: float = 3.0,
    min_confidence: float = 0.0,
) -> TrackView:
    n = math.ceil(length_m / GRID_M)
    # Votes are collected as spans (start m, end m, score, judged) and laid on the grid
    # at once with a difference array (``_lay``), not span by span.
    spans: list[tuple[float, float, float, int]] = []
    real_tails: list[RealEnd] = []
    real_heads: list[RealEnd] = []
    in_view: list[tuple[float, float]] = []
    sightings: list[_Sighting] = []  # per camera: its bodies and its real ends
    for obs in observations:
        if obs.confidence < min_confidence:
            continue
        w = obs.confidence
        in_view += _in_view(obs)
        spans.append((obs.covered_start_m, obs.covered_end_m, -w, 1))
        intervals = [i for i in obs.intervals if i.confidence >= min_confidence]
        age = now - obs.time
        if intervals:  # (most cameras see nothing on most tracks)
            sighting = _Sighting([(i.start_m, i.end_m, w * i.confidence) for i in intervals])
            sightings.append(sighting)
        for i in intervals:
            spans.append((i.start_m, i.end_m, 2 * w, 0))
            # A "real" end right at the camera's own view edge cannot be told from a cut.
            if i.start_real and i.start_m > obs.covered_start_m + VIEW_EDGE_M:
                real_tails.append(RealEnd(i.start_m, w * i.confidence, age))
                sighting.reals.append(real_tails[-1])
            if i.end_real and i.end_m < obs.covered_end_m - VIEW_EDGE_M:
                real_heads.append(RealEnd(i.end_m, w * i.confidence, age))
                sighting.reals.append(real_heads[-1])
        # Next to cut ends: this camera's "empty" vote taken back. Hidden or out of view
        # in this frame: no vote at all, once per metre (the position network's hidden
        # stretches and the edge's own, behind bodies on nearer tracks, overlap, and a
        # vote taken back twice read as "occupied").
        unjudged = _unjudged(obs, intervals, join_gap_m, max_occluded_m)
        blind = merge_spans((b.start_m, b.end_m) for b in obs.blind) if obs.blind else []
        if unjudged and blind and any(a < d and c < b for a, b in unjudged for c, d in blind):
            spans += [(lo, hi, w, 0) for lo, hi in unjudged + blind]
            # a camera judges a metre or it does not: off the judges once where they
            # overlap (twice made track that other cameras judge unknown)
            spans += [(lo, hi, 0.0, -1) for lo, hi in merge_spans(unjudged + blind)]
        else:
            spans += [(lo, hi, w, -1) for lo, hi in unjudged + blind]
    cuts, scores, judged = _lay(spans, n)
    known = [j > 0 for j in judged]
    occupied = [x > VOTE_EPS for x in scores]
    occupied = _bridge_hidden(cuts, occupied, known, max_occluded_m, real_tails, real_heads)
    bodies = _bodies(cuts, occupied, known, length_m, real_tails, real_heads)
    # A run no camera reported any of is a residue of votes taken back next to a cut end
    # inside a blind stretch (a column's shadow beside a nose at a door): nothing seen.
    seen = [(a, z) for sighting in sightings for a, z, _ in sighting.bodies]
    bodies = [b for b in bodies if any(a < b.head_m and z > b.tail_m for a, z in seen)]
    known_cells = [(cuts[i], cuts[j]) for i, j in _runs(known)]
    extent = (min(a for a, _ in in_view), max(b for _, b in in_view)) if in_view else None
    reals = tuple(r.position_m for r in _not_seen_through(sightings))
    return TrackView(length_m, bodies, known_cells, n, extent, reals)


@dataclass(frozen=True, slots=True)
class _Sighting:
    """What one camera reported of a track: its bodies (start, end, weight), real ends."""

    bodies: list[tuple[float, float, float]]
    reals: list[RealEnd] = field(default_factory=list)


def _not_seen_through(sightings: list[_Sighting]) -> Iterable[RealEnd]:
    """The real ends that other cameras do not outvote by seeing one body run on through.

    A door's jambs, a louvre's edge or a section joint can read as a real end to one
    camera; cameras that see the body continue on both sides of it, with no end of their
    own there, say it is not where one locomotive ends. Their weight against the end's
    decides, as votes decide occupancy. Only the tracker reads these (``real_ends_m``:
    whether two neighbours on one body are one locomotive); body ends snap to all."""
    if len(sightings) < 2:  # one camera cannot outvote itself
        yield from (real for sighting in sightings for real in sighting.reals)
        return
    long = [
        (k, a, b, weight)
        for k, sighting in enumerate(sightings)
        for a, b, weight in sighting.bodies
        if b - a >= 2 * END_SNAP_M
    ]
    for k, sighting in enumerate(sightings):
        for real in sighting.reals:
            lo, hi = real.position_m - END_SNAP_M, real.position_m + END_SNAP_M
            through = sum(
                weight
                for j, a, b, weight in long
                if a <= lo
                and b >= hi
                and j != k
                and not any(lo <= r.position_m <= hi for r in sightings[j].reals)
            )
            if through <= real.weight:
                yield real


def _in_view(obs: PositionRecord) -> list[tuple[float, float]]:
    """What the camera has in view of its covered span: all but what it says is out of
    view (hidden track is in view: a locomotive driving in there would be seen once the
    one in front moves)."""
    out = [(b.start_m, b.end_m) for b in obs.blind if not b.hidden]
    return subtract_spans([(obs.covered_start_m, obs.covered_end_m)], out)


def _lay(
    spans: list[tuple[float, float, float, int]], n: int
) -> tuple[list[int], list[float], list[int]]:
    """Sum span votes over grid cells whose centres lie inside each span.

    The sums come back as segments: ``cuts`` (from 0 to n), and for the cells from
    ``cuts[k]`` up to ``cuts[k + 1]`` their score and how many cameras judged them. A
    track has a few dozen spans and ~1,500 cells, so the difference array is kept sparse
    (a dict of the cells where a sum changes) and everything after works on segments:
    twenty-odd small numpy calls per track were most of the FSE's time at replay speed.
    The sums are taken in the order a dense cumulative sum takes them: the same floats."""
    score: dict[int, float] = {0: 0.0, n: 0.0}
    judged: dict[int, int] = {0: 0, n: 0}
    cells = [_cells(lo, hi, n) for lo, hi, _, _ in spans]
    for (first, _), (_, _, vote, judge) in zip(cells, spans, strict=True):
        score[first] = score.get(first, 0.0) + vote
        judged[first] = judged.get(first, 0) + judge
    for (_, stop), (_, _, vote, judge) in zip(cells, spans, strict=True):
        score[stop] = score.get(stop, 0.0) - vote
        judged[stop] = judged.get(stop, 0) - judge
    cuts = sorted(score)
    running_score, running_judged = 0.0, 0
    scores, judges = [], []
    for cut in cuts[:-1]:
        running_score += score[cut]
        running_judged += judged[cut]
        scores.append(running_score)
        judges.append(running_judged)
    return cuts, scores, judges


def _unjudged(
    obs: PositionRecord, intervals: list[Interval], join_gap_m: float, max_occluded_m: float
) -> list[tuple[float, float]]:
    """Stretches of a camera's view it cannot call empty: next to cut ends.

    Between two facing cut ends (an occluder in front of one body) up to
    ``max_occluded_m``; next to a single cut end, ``join_gap_m`` (the estimator's edge
    uncertainty). A cut end at the camera's own view edge needs nothing: beyond it the
    camera says nothing anyway.
    """
    spans = []
    edge = 2 * GRID_M
    previous_end, previous_cut = obs.covered_start_m, False
    for i in intervals:
        gap = i.start_m - previous_end
        start_cut = not i.start_real and i.start_m > obs.covered_start_m + edge
        if start_cut and previous_cut and gap <= max_occluded_m:
            spans.append((previous_end, i.start_m))
        else:
            if previous_cut:
                spans.append((previous_end, previous_end + join_gap_m))
            if start_cut:
                spans.append((i.start_m - join_gap_m, i.start_m))
        previous_end = i.end_m
        previous_cut = not i.end_real and i.end_m < obs.covered_end_m - edge
    if previous_cut:
        spans.append((previous_end, previous_end + join_gap_m))
    return spans


def _bridge_hidden(
    cuts: list[int],
    occupied: list[bool],
    known: list[bool],
    max_occluded_m: float,
    real_tails: list[RealEnd],
    real_heads: list[RealEnd],
) -> list[bool]:
    """Fill unjudged stretches between occupied cells: one body runs on behind them.

    Up to ``max_occluded_m`` whatever the ends (a person or a crane stood in front).
    Longer (a locomotive on a nearer track in front, a stretch no camera sees) when
    nothing says two bodies stand there: no real end seen at either side of the gap, and
    the joined body no longer than the longest locomotive. Per segment (see ``_lay``);
    segments ``i`` up to ``j`` are one hidden stretch."""
    out, m = occupied[:], len(occupied)
    max_cells = int(max_occluded_m / GRID_M)
    hidden = [not (o or k) for o, k in zip(occupied, known, strict=True)]
    for i, j in _runs(hidden):
        if not (i > 0 and j < m and out[i - 1] and out[j]):
            continue
        if cuts[j] - cuts[i] <= max_cells:
            out[i:j] = [True] * (j - i)
            continue
        gap_from, gap_to = cuts[i] * GRID_M, cuts[j] * GRID_M
        ends_seen = _near(gap_from, real_heads) or _near(gap_to, real_tails)
        first, last = _run_from(out, i - 1, -1), _run_from(out, j, 1)
        if not ends_seen and (cuts[last + 1] - cuts[first]) * GRID_M <= MAX_BODY_M:
            out[i:j] = [True] * (j - i)
    return out


def _run_from(flags: list[bool], k: int, step: int) -> int:
    """The last index of the run of True through ``k``, walking by ``step``."""
    while 0 <= k + step < len(flags) and flags[k + step]:
        k += step
    return k


def _near(edge_m: float, reals: list[RealEnd]) -> bool:
    return any(abs(r.position_m - edge_m) <= END_SNAP_M for r in reals)


def _bodies(
    cuts: list[int],
    occupied: list[bool],
    known: list[bool],
    length_m: float,
    real_tails: list[RealEnd],
    real_heads: list[RealEnd],
) -> list[Body]:
    """Occupied stretches (runs of occupied segments) as bodies with their ends."""
    bodies, m = [], len(occupied)
    for i, j in _runs(occupied):
        a, b = cuts[i], cuts[j]
        tail_open = i == 0 or not known[i - 1]
        head_open = j == m or not known[j]
        edge_a, edge_b = a * GRID_M, min(b * GRID_M, length_m)
        # a real end snaps only to a run it lies inside of: one just beyond a sliver's far
        # edge belongs to the next run and would turn the sliver inside out
        tail = _snap(edge_a, [r for r in real_tails if r.position_m < edge_b])
        head = _snap(edge_b, [r for r in real_heads if r.position_m > edge_a])
        short = head.position_m - tail.position_m < MIN_BODY_M
        at_door = at_track_end(tail.position_m, head.position_m, length_m)
        if short and not (tail_open or head_open or at_door):
            continue
        bodies.append(
            Body(
                tail.position_m,
                head.position_m,
                tail.weight > 0,
                head.weight > 0,
                tail_open,
                head_open,
                tail.age_s,
                head.age_s,
            )
        )
    return bodies


@dataclass(frozen=True, slots=True)
class RealEnd:
    position_m: float
    weight: float
    age_s: float


def at_track_end(tail_m: float, head_m: float, length_m: float) -> bool:
    """A span within ``ENTRY_M`` of either end of the track: driving in or out there."""
    return tail_m <= ENTRY_M or head_m >= length_m - ENTRY_M


def _snap(edge_m: float, reals: list[RealEnd]) -> RealEnd:
    """The real ends near a run's edge, averaged; weight 0 when there are none."""
    near = [r for r in reals if abs(r.position_m - edge_m) <= END_SNAP_M]
    if not near:
        return RealEnd(edge_m, 0.0, 0.0)
    weight = sum(r.weight for r in near)
    return RealEnd(
        sum(r.position_m * r.weight for r in near) / weight,
        weight,
        sum(r.age_s * r.weight for r in near) / weight,
    )


def _cells(start_m: float, end_m: float, n: int) -> tuple[int, int]:
    """Grid cells ``a`` up to ``b`` (exclusive) whose centres lie in [start_m, end_m],
    clamped to the track (comparisons, not min/max: this runs ~50 times a track a tick)."""
    a = math.ceil(start_m / GRID_M - 0.5)
    a = 0 if a < 0 else n if a > n else a
    b = math.floor(end_m / GRID_M - 0.5) + 1
    return a, a if b < a else n if b > n else b


def _runs(flags: list[bool]) -> list[tuple[int, int]]:
    """Index ranges [i, j) of the runs of True in ``flags``."""
    runs: list[tuple[int, int]] = []
    start = None
    for k, flag in enumerate(flags):
        if flag and start is None:
            start = k
        elif not flag and start is not None:
            runs.append((start, k))
            start = None
    if start is not None:
        runs.append((start, len(flags)))
    return runs
