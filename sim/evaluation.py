"""Score a facility-state stream against the twin's ground truth.

Both sides are snapshots in time: the ground truth (``ground_truth.jsonl`` of a twin run)
and the estimated state (JSONL of the same shape, one line per snapshot; the cloud's
state snapshots export to it). A state line looks like::

    {"time": "2026-11-02T02:00:01+00:00", "flow": "prod", "written_at": "...",
     "locomotives": [{"id": "fse-3", "track": "T1", "tail_m": 12.1, "head_m": 29.4,
                      "series": "ЧМЭ3", "plate": "ЧМЭ3-8506", "stale": false}]}

Each estimated snapshot is compared with the ground truth line nearest in time. On each
track, estimated and true locomotives are paired greedily by overlap (intersection over
union of their spans, at least ``MIN_IOU``). True spans are clipped to the track, since
no camera sees a locomotive's part outside the hall. A locomotive with less than
``DOOR_M`` (0.75 m) inside is in the doorway: the count is exact whether or not it is
reported, and it is never a miss (at depot speed, 1.4 m/s, 0.7 m of nose crosses the
door between two frames at 2 fps).

Metrics: exact count per snapshot (facility) and per (snapshot, track); head and tail
error of paired locomotives (median, p95); identity switches (a true locomotive paired
with a different estimated id than before); series accuracy; plate exact match and
character error rate; detection delay of arrivals; and processing latency when
snapshots carry ``written_at``.
"""

from __future__ import annotations

import bisect
import json
from collections.abc import Collection, Iterable, Iterator
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from locowatch.models.attributes import UNKNOWN_SERIES
from locowatch.pairing import greedy_pairs
from sim.variety import series_pool

MIN_IOU = 0.3
MAX_TIME_GAP_S = 0.75  # an estimate further than this from any truth line is not scored
# A locomotive with less than this inside the track (after clipping) is in the doorway:
# cameras sample at 2 fps, so a nose that crossed metre 0 since the last frame is not
# observable; at the twin's top depot speed (1.4 m/s) that is up to 0.7 m. (It was 0.5 m
# until held-out demo runs showed arrivals missed by one snapshot at 0.6 m.)
DOOR_M = 0.75


@dataclass(frozen=True)
class Loco:
    id: str
    track: str
    tail_m: float
    head_m: float
    series: str | None = None
    plate: str | None = None
    seen_m: float | None = None  # truth only: the longest stretch of it a camera sees
    in_door: bool = False  # truth only: partly outside, through a door at a track end (or
    # past the metres a demo's cameras cover, where its track ends: demo.scoring)
    glimpsed: bool = False  # truth only: no camera has seen DOOR_M of it yet this visit
    # truth only: a camera shows one of its plates whole and large enough to read now
    # (Twin.sightings' plate_cameras; None: the truth does not say), and did so at some
    # moment of this visit up to now (set by ``evaluate``)
    plate_in_sight: bool | None = None
    plate_shown: bool = False


@dataclass(frozen=True)
class Snapshot:
    time: float  # POSIX seconds
    locos: tuple[Loco, ...]
    written_at: float | None = None


@dataclass
class Scores:
    snapshots: int = 0
    count_exact: float = 0.0
    track_count_exact: float = 0.0
    matched: int = 0
    missed: int = 0
    false_positives: int = 0
    end_error_median_m: float | None = None
    end_error_p95_m: float | None = None
    id_switches: int = 0
    series_accuracy: float | None = None
    series_coverage: float | None = None
    # of locomotive-snapshots of a series outside the known ones, the share answered
    # "unknown" (sim.variety's unknown and other pools)
    series_unknown_answered: float | None = None
    plate_exact: float | None = None
    plate_coverage: float | None = None
    plate_cer: float | None = None
    # of locomotive-snapshots whose plate a camera showed readable earlier in the visit:
    # the share with a plate read, and the share of those read exactly
    plate_read_where_shown: float | None = None
    plate_exact_where_shown: float | None = None
    detection_delay_median_s: float | None = None
    detection_delay_p95_s: float | None = None
    latency_median_s: float | None = None
    latency_p95_s: float | None = None
    per_track_count_exact: dict[str, float] = field(default_factory=dict)

    def table(self) -> str:
        rows = [
            ("snapshots scored", f"{self.snapshots}"),
            ("exact count (facility)", format_percent(self.count_exact)),
            ("exact count (per track)", format_percent(self.track_count_exact)),
            *(
                (f"  exact count {track}", format_percent(v))
                for track, v in self.per_track_count_exact.items()
            ),
            ("paired / missed / false", f"{self.matched} / {self.missed} / {self.false_positives}"),
            ("head/tail error median", format_metres(self.end_error_median_m)),
            ("head/tail error p95", format_metres(self.end_error_p95_m)),
            ("id switches", f"{self.id_switches}"),
            ("series accuracy", format_percent(self.series_accuracy)),
            ("series coverage", format_percent(self.series_coverage)),
            ("unknown series answered unknown", format_percent(self.series_unknown_answered)),
            ("plate exact", format_percent(self.plate_exact)),
            ("plate coverage", format_percent(self.plate_coverage)),
            ("plate character error rate", format_percent(self.plate_cer)),
            ("plate read, where one showed", format_percent(self.plate_read_where_shown)),
            ("  of those, exact", format_percent(self.plate_exact_where_shown)),
            ("arrival detection delay median", format_seconds(self.detection_delay_median_s)),
            ("arrival detection delay p95", format_seconds(self.detection_delay_p95_s)),
            ("latency median", format_seconds(self.latency_median_s)),
            ("latency p95", format_seconds(self.latency_p95_s)),
        ]
        width = max(len(k) for k, _ in rows) + 2
        return "\n".join(f"{k:<{width}}{v}" for k, v in rows)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class SoFarThisVisit:
    """The ids flagged at some snapshot of their current visit so far (a visit: the
    snapshots in a row that hold the id; one that leaves and comes back starts afresh)."""

    def __init__(self) -> None:
        self.ids: set[str] = set()

    def update(self, inside: set[str], flagged: Iterable[str]) -> None:
        """The next snapshot: ``inside`` holds every id in it, ``flagged`` those flagged now."""
        self.ids = (self.ids & inside) | set(flagged)

    def __contains__(self, loco_id: object) -> bool:
        return loco_id in self.ids


def seen_once(records: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Ground-truth records with only the locomotives some camera has seen by then.

    A locomotive that came in through a door no camera watches and stands where no
    camera sees cannot be counted by anything; scores of sparse coverage leave it out
    until its first sighting of this visit (``_sighted``). One only glimpsed so far (a
    sliver, in sight now or before) stays in, marked ``glimpsed``: counting it or not is
    no error, since a sliver may or may not be enough to tell a locomotive is there."""
    seen, glimpsed = SoFarThisVisit(), SoFarThisVisit()
    for record in records:
        locos = record["locomotives"]
        inside = {loco["id"] for loco in locos}
        seen.update(inside, (loco["id"] for loco in locos if _sighted(loco)))
        glimpsed.update(inside, (loco["id"] for loco in locos if loco.get("cameras")))
        # (every one seen well was glimpsed too)
        kept = [
            {**loco, "glimpsed": loco["id"] not in seen} for loco in locos if loco["id"] in glimpsed
        ]
        yield {**record, "locomotives": kept}


def _sighted(loco: dict[str, Any]) -> bool:
    """Seen well enough to be counted: at least ``DOOR_M`` of it by one camera (a sliver
    at the edge of a view, then hidden, is not a sighting anyone can confirm)."""
    seen_m = loco.get("seen_m")
    return bool(loco.get("cameras")) and (seen_m is None or seen_m >= DOOR_M)


def evaluate(
    truth: Iterable[Snapshot],
    estimates: Iterable[Snapshot],
    track_lengths: dict[str, float] | None = None,
    tracks: Collection[str] | None = None,
) -> Scores:
    """Score ``estimates`` against ``truth``; both in time order. ``tracks``: score only
    these (a demo's cameras also see tracks it does not score)."""
    truth_list = sorted(truth, key=lambda s: s.time)
    if tracks is not None:
        truth_list = [_on_tracks(s, tracks) for s in truth_list]
        estimates = (_on_tracks(s, tracks) for s in estimates)
    if track_lengths:
        truth_list = [_clip(s, track_lengths) for s in truth_list]
    truth_list = list(_plates_shown(truth_list))
    truth_times = np.array([s.time for s in truth_list])
    tracks = sorted({loco.track for s in truth_list for loco in s.locos} | set(track_lengths or {}))
    state = _Accumulator(tracks)
    for estimate in sorted(estimates, key=lambda s: s.time):
        if not len(truth_times):
            break
        index = int(np.argmin(np.abs(truth_times - estimate.time)))
        if abs(truth_times[index] - estimate.time) > MAX_TIME_GAP_S:
            continue
        state.add(truth_list[index], estimate)
    state.detection_delays(truth_list)
    return state.scores()


def _on_tracks(snapshot: Snapshot, tracks: Collection[str]) -> Snapshot:
    locos = tuple(loco for loco in snapshot.locos if loco.track in tracks)
    return replace(snapshot, locos=locos)


def _plates_shown(truth: Iterable[Snapshot]) -> Iterator[Snapshot]:
    """The truth with ``plate_shown`` set on each locomotive a camera has shown a plate of
    readable so far in this visit (a visit: the snapshots in a row that hold its id)."""
    shown = SoFarThisVisit()
    for snapshot in truth:
        inside = {loco.id for loco in snapshot.locos}
        shown.update(inside, (loco.id for loco in snapshot.locos if loco.plate_in_sight))
        locos = tuple(replace(loco, plate_shown=loco.id in shown) for loco in snapshot.locos)
        yield replace(snapshot, locos=locos)


class _Accumulator:
    def __init__(self, tracks: list[str]) -> None:
        self.tracks = tracks
        self.scores_ = Scores()
        self.count_hits = 0
        self.track_hits: dict[str, int] = dict.fromkeys(tracks, 0)
        self.end_errors: list[float] = []
        self.last_pair: dict[str, str] = {}  # true id -> estimated id it was last paired with
        self.first_paired: dict[str, float] = {}  # true id -> first time paired (per visit)
        self.series = [0, 0, 0]  # correct, reported, paired (known series)
        self.unknown = [0, 0]  # answered "unknown", paired (series no network was taught)
        self.plates = [0, 0]  # exact, reported
        self.shown_plates = [0, 0, 0]  # exact, reported, paired with a plate shown readable
        self.cer: list[float] = []
        self.latencies: list[float] = []
        self.delays: list[float] = []
        self.paired_times: dict[str, list[float]] = {}

    def add(self, truth: Snapshot, estimate: Snapshot) -> None:
        s = self.scores_
        s.snapshots += 1
        self.count_hits += _count_fits(truth.locos, len(estimate.locos))
        if estimate.written_at is not None:
            self.latencies.append(estimate.written_at - estimate.time)
        for track in self.tracks:
            true_on = [loco for loco in truth.locos if loco.track == track]
            est_on = [loco for loco in estimate.locos if loco.track == track]
            self.track_hits[track] += _count_fits(true_on, len(est_on))
            pairs = _pair(true_on, est_on)
            s.matched += len(pairs)
            paired = {true.id for true, _ in pairs}
            s.missed += sum(1 for t in true_on if t.id not in paired and not _at_door(t))
            s.false_positives += len(est_on) - len(pairs)
            for true, est in pairs:
                self._score_pair(true, est, estimate.time)

    def _score_pair(self, true: Loco, est: Loco, time: float) -> None:
        self.end_errors += [abs(est.tail_m - true.tail_m), abs(est.head_m - true.head_m)]
        previous = self.last_pair.get(true.id)
        if previous is not None and previous != est.id:
            self.scores_.id_switches += 1
        self.last_pair[true.id] = est.id
        self.paired_times.setdefault(true.id, []).append(time)
        if true.series is not None and series_pool(true.series) != "known":
            self.unknown[1] += 1
            self.unknown[0] += est.series == UNKNOWN_SERIES
        else:
            self.series[2] += 1
            if est.series:
                self.series[1] += 1
                self.series[0] += est.series == true.series
        if true.plate_shown:
            self.shown_plates[2] += 1
            self.shown_plates[1] += bool(est.plate)
            self.shown_plates[0] += bool(est.plate) and est.plate == true.plate
        if est.plate and true.plate:
            self.plates[1] += 1
            self.plates[0] += est.plate == true.plate
            self.cer.append(_edit_distance(est.plate, true.plate) / len(true.plate))

    def detection_delays(self, truth: list[Snapshot]) -> None:
        """Seconds from a locomotive's first true appearance in a visit to its first pairing."""
        present_since: dict[str, float] = {}
        seen_before: set[str] = set()
        for snapshot in truth:
            ids = {loco.id for loco in snapshot.locos}
            for loco_id in ids - seen_before:
                present_since[loco_id] = snapshot.time
            seen_before = ids
            for loco_id in list(present_since):
                times = self.paired_times.get(loco_id, [])  # in time order
                first = bisect.bisect_left(times, present_since[loco_id])
                if first < len(times):
                    self.delays.append(times[first] - present_since.pop(loco_id))
        # locomotives never paired in a visit are counted as missed pairs already

    def scores(self) -> Scores:
        s = self.scores_
        if s.snapshots:
            s.count_exact = self.count_hits / s.snapshots
            s.per_track_count_exact = {t: self.track_hits[t] / s.snapshots for t in self.tracks}
            s.track_count_exact = (
                sum(self.track_hits.values()) / (s.snapshots * len(self.tracks))
                if self.tracks
                else s.count_exact  # no track held a locomotive, nor was any reported
            )
        s.end_error_median_m, s.end_error_p95_m = _median_p95(self.end_errors)
        correct, reported, paired = self.series
        s.series_accuracy = correct / reported if reported else None
        s.series_coverage = reported / paired if paired else None
        answered, unknown = self.unknown
        s.series_unknown_answered = answered / unknown if unknown else None
        exact, plates = self.plates
        s.plate_exact = exact / plates if plates else None
        s.plate_coverage = plates / paired if paired else None
        s.plate_cer = float(np.mean(self.cer)) if self.cer else None
        exact, read, shown = self.shown_plates
        s.plate_read_where_shown = read / shown if shown else None
        s.plate_exact_where_shown = exact / read if read else None
        s.detection_delay_median_s, s.detection_delay_p95_s = _median_p95(self.delays)
        s.latency_median_s, s.latency_p95_s = _median_p95(self.latencies)
        return s


def _at_door(loco: Loco) -> bool:
    """Less than ``DOOR_M`` of it is inside; or, of one cameras see now, less than that
    is seen (coming out of a stretch no camera sees, or mostly hidden); or it stands in
    a door no camera sees (when it has left is unobservable): counted or not, none is
    an error; nor is one only ever glimpsed. One no camera sees now inside the hall that
    was seen well before must be counted all the same."""
    barely_seen = loco.seen_m is not None and 0.0 < loco.seen_m < DOOR_M
    unseen_in_door = loco.in_door and loco.seen_m == 0.0
    inside_m = loco.head_m - loco.tail_m
    return inside_m < DOOR_M or barely_seen or unseen_in_door or loco.glimpsed


def _count_fits(true_locos: Iterable[Loco], estimated: int) -> bool:
    """The estimated count is exact, allowing for locomotives in the doorway."""
    true_list = list(true_locos)
    at_door = sum(1 for loco in true_list if _at_door(loco))
    return len(true_list) - at_door <= estimated <= len(true_list)


def _pair(true_on: list[Loco], est_on: list[Loco]) -> list[tuple[Loco, Loco]]:
    """Greedy pairing by intersection over union of the spans (1-D, so greedy is fine)."""
    return greedy_pairs(true_on, est_on, _iou, MIN_IOU)


def _iou(a: Loco, b: Loco) -> float:
    inter = min(a.head_m, b.head_m) - max(a.tail_m, b.tail_m)
    union = max(a.head_m, b.head_m) - min(a.tail_m, b.tail_m)
    return max(inter, 0.0) / union if union > 0 else 0.0


def _clip(snapshot: Snapshot, lengths: dict[str, float]) -> Snapshot:
    locos = []
    for loco in snapshot.locos:
        length = lengths.get(loco.track)
        if length is None:
            locos.append(loco)
            continue
        clipped = clip_span(loco.tail_m, loco.head_m, (0.0, length))
        if clipped is not None:
            tail, head, cut = clipped
            locos.append(replace(loco, tail_m=tail, head_m=head, in_door=loco.in_door or cut))
    return Snapshot(snapshot.time, tuple(locos), snapshot.written_at)


def clip_span(
    tail_m: float, head_m: float, span: tuple[float, float]
) -> tuple[float, float, bool] | None:
    """A locomotive's metres kept to a stretch of track, and whether it reaches past it
    (then it stands in the door there); None when none of it is in the stretch."""
    tail, head = max(tail_m, span[0]), min(head_m, span[1])
    if head <= tail:
        return None
    return tail, head, tail > tail_m or head < head_m


def _edit_distance(a: str, b: str) -> int:
    row = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        prev, row[0] = row[0], i
        for j, cb in enumerate(b, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (ca != cb))
    return row[-1]


def _median_p95(values: list[float]) -> tuple[float | None, float | None]:
    if not values:
        return None, None
    return float(np.median(values)), float(np.percentile(values, 95))


def format_percent(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.2f} %"


def format_metres(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f} m"


def format_seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f} s"


# -- reading streams ----------------------------------------------------------------------


def read_snapshots(path: Path, flow: str | None = None) -> Iterator[Snapshot]:
    """Snapshots from a ground truth or state JSONL file (state lines filtered by flow)."""
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                if flow is not None and record.get("flow", flow) != flow:
                    continue
                yield snapshot_from_record(record)
            except (ValueError, KeyError, TypeError) as exc:
                raise ValueError(f"{path}:{number}: not a snapshot line: {exc}") from exc


# The relation eval reads from a database: one row per state snapshot. The cloud's schema
# provides it (a table or a view); its locomotives column has the JSONL lines' shape.
STATE_QUERY = """
    SELECT time, written_at, locomotives
    FROM state_snapshots
    WHERE (%(flow)s::text IS NULL OR flow = %(flow)s) AND time BETWEEN %(start)s AND %(end)s
    ORDER BY time
"""


def read_snapshots_from_db(
    url: str, flow: str | None, start: float, end: float
) -> Iterator[Snapshot]:
    """State snapshots from TimescaleDB (``state_snapshots``) between two POSIX times."""
    import psycopg

    params = {
        "flow": flow,
        "start": datetime.fromtimestamp(start, UTC),
        "end": datetime.fromtimestamp(end, UTC),
    }
    try:
        with psycopg.connect(url, connect_timeout=10) as conn:
            rows = conn.execute(STATE_QUERY, params).fetchall()
    except psycopg.Error as exc:
        raise ValueError(f"cannot read state_snapshots: {exc}") from exc
    for time, written_at, locomotives in rows:
        yield snapshot_from_record(
            {
                "time": time.timestamp(),
                "written_at": written_at.timestamp() if written_at else None,
                "locomotives": locomotives,
            }
        )


def snapshot_from_record(record: dict[str, Any]) -> Snapshot:
    written = record.get("written_at")
    return Snapshot(
        time=_posix(record["time"]),
        locos=tuple(
            Loco(
                str(loco["id"]),
                str(loco["track"]),
                float(loco["tail_m"]),
                float(loco["head_m"]),
                loco.get("series"),
                loco.get("plate"),
                loco.get("seen_m"),
                glimpsed=bool(loco.get("glimpsed", False)),
                plate_in_sight=bool(loco["plate_cameras"]) if "plate_cameras" in loco else None,
                in_door=bool(loco.get("in_door", False)),
            )
            for loco in record["locomotives"]
        ),
        written_at=_posix(written) if written else None,
    )


def _posix(value: str | float) -> float:
    if isinstance(value, int | float):
        return float(value)
    return datetime.fromisoformat(value).timestamp()
