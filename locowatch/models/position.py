"""The position network's contract: a curtain strip in, per-column scores out, intervals back.

The network reads a strip (heights 5.6..0 m by metres along the track, 0.1 m a column) and
scores every column three ways: *occupied* (a body is there), *tail* and *head* (a real end
of a body lies at this column, the start or the end of an interval in growing metres);
networks from position@2 on score a fourth, *hidden* (something nearer the camera, a body
on another track, covers the track here), which the edge reports as hidden blind spans.
Decoding turns the scores into intervals in metres: runs of occupied columns, split where a
head is followed by a tail inside a run (two bodies closer than the occupancy resolves),
each end placed at its score's peak (sub-column) when the end is real, or left at the run's
edge, marked cut, when the body runs on past the view or behind an occluder.

From position@3 on, two more scores point the plate reader at numbers on the body sides:
*plate* (a plate's centre lies at this column) and *plate height* (how high it is, as a
share of the strip's height); ``plate_marks`` turns them into places on the curtain.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from locowatch.facility.rectify import STRIP_HEIGHT, STRIP_METRES_PER_PX

OCCUPIED, TAIL, HEAD, HIDDEN, PLATE, PLATE_HEIGHT = 0, 1, 2, 3, 4, 5
HIDDEN_THRESHOLD = 0.5
MIN_HIDDEN_COLUMNS = 5  # half a metre: narrower hidden runs are noise (a post, a person)
END_SIGMA_COLUMNS = 1.5  # width of an end's target bump in training
OCCUPIED_THRESHOLD = 0.5
PLATE_SIGMA_COLUMNS = 2.0  # width of a plate centre's target bump in training
PLATE_PEAK = 0.3  # a plate score's local maximum above this is a place worth reading
PLATE_APART_COLUMNS = 12  # two marks closer than 1.2 m are one plate
END_PEAK = 0.3  # a local maximum of an end score above this may split a run
# An end is real when its score summed over +-END_SEARCH_COLUMNS reaches this. A trained
# bump sums to about 3.8; on held-out twin scenes 98.5 % of real ends sum above 0.5 and
# 98.7 % of cut ends below it (the peak alone separates them worse: uncertain ends spread).
END_MASS = 0.5
END_SEARCH_COLUMNS = 6  # a real end's peak is looked for this far around the run's edge
MIN_RUN_COLUMNS = 3  # shorter runs are noise (0.3 m of locomotive is not a locomotive)
EDGE_COLUMNS = 3  # an end this close to the covered span's edge is cut by the view


@dataclass(frozen=True)
class Interval:
    """An occupied stretch in track metres, with the kind of each end."""

    start_m: float
    end_m: float
    start_real: bool
    end_real: bool
    confidence: float


def strip_input(strip_bgr: np.ndarray) -> np.ndarray:
    """A BGR strip (56, W, 3) uint8 -> the network's (3, 56, W) float32 (scaling is inside)."""
    return np.ascontiguousarray(strip_bgr.transpose(2, 0, 1), dtype=np.float32)


def end_column(metre: float, start_m: float) -> float:
    """Fractional column index (column centres are integers) of a metre along the strip."""
    return (metre - start_m) / STRIP_METRES_PER_PX - 0.5


def column_metre(column: float, start_m: float) -> float:
    return start_m + (column + 0.5) * STRIP_METRES_PER_PX


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(x, -30, 30)))


def decode(
    logits: np.ndarray, start_m: float, covered: tuple[float, float] | None = None
) -> list[Interval]:
    """Intervals from one strip's (3, W) logits; ``covered`` limits them to the seen span."""
    probs = sigmoid(logits.astype(np.float32))
    width = probs.shape[1]
    lo, hi = _covered_columns(width, start_m, covered)
    occupied = probs[OCCUPIED] > OCCUPIED_THRESHOLD
    occupied[:lo] = False
    occupied[hi:] = False
    intervals = []
    for a, b in _runs(occupied):
        for a2, b2 in _split(probs, a, b):
            if b2 - a2 < MIN_RUN_COLUMNS:
                continue
            start, start_real = _end(probs[TAIL], a2 - 0.5, a2 - lo < EDGE_COLUMNS, start_m)
            end, end_real = _end(probs[HEAD], b2 - 0.5, hi - b2 < EDGE_COLUMNS, start_m)
            if end <= start:  # a short run's end peaks crossed (a head left of a tail):
                # no end of it is known; ingest would refuse the whole view for it
                start, end = column_metre(a2 - 0.5, start_m), column_metre(b2 - 0.5, start_m)
                start_real = end_real = False
            confidence = float(probs[OCCUPIED, a2:b2].mean())
            intervals.append(Interval(start, end, start_real, end_real, confidence))
    return intervals


def hidden_spans(
    logits: np.ndarray, start_m: float, covered: tuple[float, float] | None = None
) -> list[tuple[float, float]]:
    """Stretches (metres) the network says are hidden behind something nearer; none from a
    network without the hidden score (position@1)."""
    if logits.shape[0] <= HIDDEN:
        return []
    hidden = sigmoid(logits[HIDDEN].astype(np.float32)) > HIDDEN_THRESHOLD
    lo, hi = _covered_columns(hidden.size, start_m, covered)
    hidden[:lo] = False
    hidden[hi:] = False
    return [
        (column_metre(a - 0.5, start_m), column_metre(b - 0.5, start_m))
        for a, b in _runs(hidden)
        if b - a >= MIN_HIDDEN_COLUMNS
    ]


@dataclass(frozen=True)
class PlateMark:
    """Where the network says a plate's centre is on the strip's curtain."""

    metre: float
    height_m: float
    confidence: float


def plate_marks(
    logits: np.ndarray, start_m: float, covered: tuple[float, float] | None = None
) -> list[PlateMark]:
    """Plate centres from one strip's logits, strongest first, at least 1.2 m apart; none
    from a network without the plate scores (before position@3)."""
    if logits.shape[0] <= PLATE_HEIGHT:
        return []
    score = sigmoid(logits[PLATE].astype(np.float32))
    lo, hi = _covered_columns(score.size, start_m, covered)
    peaks = sorted(
        _peaks(score, max(lo - 1, 0), min(hi + 1, score.size), PLATE_PEAK),
        key=lambda c: -score[c],
    )
    kept: list[int] = []
    for column in peaks:
        if all(abs(column - k) >= PLATE_APART_COLUMNS for k in kept):
            kept.append(column)
    top = STRIP_HEIGHT[1]
    heights = sigmoid(logits[PLATE_HEIGHT].astype(np.float32)) * top
    return [
        PlateMark(
            column_metre(c + _parabola(score, c), start_m), float(heights[c]), float(score[c])
        )
        for c in kept
    ]


def view_confidence(logits: np.ndarray) -> float:
    """How sure the network is about the strip as a whole: mean certainty of occupancy."""
    p = sigmoid(logits[OCCUPIED].astype(np.float32))
    return float(np.abs(p - 0.5).mean() * 2)


def _covered_columns(
    width: int, start_m: float, covered: tuple[float, float] | None
) -> tuple[int, int]:
    """[lo, hi) columns of a strip ``width`` columns wide inside the covered span."""
    if covered is None:
        return 0, width
    lo = max(0, round((covered[0] - start_m) / STRIP_METRES_PER_PX))
    hi = min(width, round((covered[1] - start_m) / STRIP_METRES_PER_PX))
    return lo, hi


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """[a, b) column ranges where ``mask`` is true."""
    padded = np.concatenate(([False], mask, [False]))
    edges = np.flatnonzero(padded[1:] != padded[:-1])
    return list(zip(edges[::2].tolist(), edges[1::2].tolist(), strict=True))


def _peaks(score: np.ndarray, a: int, b: int, floor: float = END_PEAK) -> list[int]:
    """Local maxima above ``floor`` within [a, b)."""
    seg = score[a:b]
    if seg.size < 3:
        return []
    inner = (seg[1:-1] > floor) & (seg[1:-1] >= seg[:-2]) & (seg[1:-1] > seg[2:])
    return (np.flatnonzero(inner) + a + 1).tolist()


def _split(probs: np.ndarray, a: int, b: int) -> list[tuple[int, int]]:
    """Split a run where a real head is followed (or met) by a real tail inside it."""
    margin = END_SEARCH_COLUMNS
    heads = _peaks(probs[HEAD], a + margin, b - margin)
    tails = _peaks(probs[TAIL], a + margin, b - margin)
    pieces, cursor = [], a
    for head in heads:
        following = [t for t in tails if head - 2 <= t <= head + 40 and t > cursor]
        if not following or head + 1 <= cursor:
            continue
        pieces.append((cursor, head + 1))
        cursor = max(following[0], head + 1)
    pieces.append((cursor, b))
    return pieces


def _end(score: np.ndarray, edge: float, at_view_edge: bool, start_m: float) -> tuple[float, bool]:
    """Metre of an end near column boundary ``edge`` and whether it is a real end."""
    centre = round(edge + 0.5)
    a = max(0, centre - END_SEARCH_COLUMNS)
    b = min(score.size, centre + END_SEARCH_COLUMNS + 1)
    peak = a + int(np.argmax(score[a:b]))
    if at_view_edge or score[a:b].sum() < END_MASS:
        return column_metre(edge, start_m), False
    return column_metre(peak + _parabola(score, peak), start_m), True


def _parabola(score: np.ndarray, i: int) -> float:
    """Sub-column offset of a peak from a parabola through its neighbours."""
    if i <= 0 or i >= score.size - 1:
        return 0.0
    left, mid, right = score[i - 1], score[i], score[i + 1]
    denominator = left - 2 * mid + right
    if denominator >= 0:
        return 0.0
    return float(np.clip(0.5 * (left - right) / denominator, -0.5, 0.5))
