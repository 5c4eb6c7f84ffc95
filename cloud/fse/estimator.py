"""The facility state estimator (FSE) of one facility and flow.

Estimations go in (``add``, cheap: it only files them); snapshots and events come out
of ``advance(data_time)``, once per ``snapshot_interval_s`` of *capture* time. Driving
the clock by capture time makes a replay or a catching-up gateway give the same states
as live data, and waiting ``lag_s`` past each snapshot time lets the other cameras'
estimations of that instant arrive first. When every camera of a facility is silent,
the server advances the clock by wall time instead, so locomotives still go stale.
"""

from __future__ import annotations

import itertools
import logging
import math
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from cloud import metrics
from cloud.fse.fusion import fuse_track
from cloud.fse.identity import owners
from cloud.fse.tracker import Event, Locomotive, TrackTracker
from cloud.records import AttributeRecord, HealthRecord, PositionRecord, Record
from locowatch.facility.config import FacilityConfig

log = logging.getLogger(__name__)

HISTORY = 16  # estimations kept per camera and track (several seconds at 2 fps)
ATTRIBUTE_MARGIN_M = 1.5  # a reading this far outside a body still belongs to it
MAX_CATCH_UP_TICKS = 600  # after a longer silence, skip ahead instead of ticking through it


@dataclass(frozen=True)
class LocoState:
    """One locomotive in a snapshot; ``to_json`` is the documented snapshot format."""

    id: str
    track: str
    tail_m: float
    head_m: float
    station: str | None
    series: str | None
    series_confidence: float | None
    plate: str | None
    plate_confidence: float | None
    stale: bool
    since: float
    speed_mps: float
    attributes: dict[str, dict[str, Any]] = field(default_factory=dict)
    # out of every camera's sight: the stretch of its track it can be in (None: seen)
    range_m: tuple[float, float] | None = None

    def to_json(self) -> dict[str, Any]:
        # Not dataclasses.asdict: its recursive deep copy was a tenth of the FSE's time
        # at replay speed; the fields are plain values and one level of dicts.
        data = dict(self.__dict__)
        data["attributes"] = {name: dict(a) for name, a in self.attributes.items()}
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> LocoState:
        fields = {k: data.get(k) for k in cls.__dataclass_fields__}
        fields["attributes"] = fields["attributes"] or {}
        fields["range_m"] = tuple(fields["range_m"]) if fields["range_m"] else None
        return cls(**fields)  # type: ignore[arg-type]


@dataclass(frozen=True)
class Snapshot:
    time: float
    facility_id: str
    flow: str
    locomotives: tuple[LocoState, ...]


@dataclass(frozen=True)
class Tick:
    snapshot: Snapshot
    events: list[Event]


class FacilityStateEstimator:
    def __init__(self, facility: FacilityConfig, flow: str, next_id: int = 1) -> None:
        self.facility = facility
        self.flow = flow
        self.settings = facility.flow_by_name[flow].fse
        self.lag_s = self.settings.snapshot_interval_s / 2
        self._ids = itertools.count(next_id)
        self.trackers = {
            t.id: TrackTracker(
                t.id, t.length_m, self.settings, facility.station_of, self._new_id, tuple(t.doors)
            )
            for t in facility.tracks
        }
        self.observations: dict[tuple[str, str], deque[PositionRecord]] = {}
        self.pending_attributes: list[AttributeRecord] = []
        self.camera_states: dict[str, str] = {}
        self.clock: float | None = None  # latest capture time seen
        self.started: float | None = None  # first capture time seen
        self.next_tick: float | None = None
        self.updates = 0  # position estimations taken in
        self._ignored_tracks: set[str] = set()

    def _new_id(self) -> str:
        return f"fse-{next(self._ids)}"

    # -- input ---------------------------------------------------------------------------

    def add(self, record: Record) -> None:
        if isinstance(record, HealthRecord):
            # A camera that capture reports stalled or reconnecting describes an old
            # picture at best: its estimations do not count until it streams again.
            self.camera_states[record.camera_id] = record.state
            if record.state != "streaming":
                for key in [k for k in self.observations if k[0] == record.camera_id]:
                    del self.observations[key]
            return
        if self.camera_states.get(record.camera_id, "streaming") != "streaming":
            return
        if record.track_id not in self.trackers:
            self._ignore(record)
            return
        if isinstance(record, PositionRecord):
            key = (record.camera_id, record.track_id)
            history = self.observations.get(key)
            if history is None:
                history = self.observations[key] = deque(maxlen=HISTORY)
            if history and record.time < history[-1].time:  # rare: keep time order
                history.append(record)
                ordered = sorted(history, key=lambda r: r.time)
                history.clear()
                history.extend(ordered)
            else:
                history.append(record)
            self.updates += 1
        else:
            self.pending_attributes.append(record)
        if self.clock is None or record.time > self.clock:
            self.clock = record.time
        if self.started is None:
            self.started = record.time

    def _ignore(self, record: PositionRecord | AttributeRecord) -> None:
        """Ingest checks tracks against the live config, but the database may still hold
        estimations of a track an operator since removed: replaying them must not stop
        the FSE (a crash would repeat on every restart)."""
        facility_id = self.facility.facility.id
        metrics.FSE_IGNORED.labels(facility_id, self.flow).inc()
        if record.track_id not in self._ignored_tracks:
            self._ignored_tracks.add(record.track_id)
            log.warning(
                "flow %s: ignoring estimations of track %s, which facility %s does not have",
                self.flow,
                record.track_id,
                facility_id,
            )

    # -- output --------------------------------------------------------------------------

    def advance(self, now: float | None = None) -> list[Tick]:
        """Snapshots for every interval boundary the clock (or ``now``) has passed."""
        clock = self.clock if now is None or (self.clock is not None and self.clock > now) else now
        if clock is None:
            return []
        if self.next_tick is not None and clock - self.lag_s < self.next_tick:
            return []  # the common case: called per record, nothing due yet
        step = self.settings.snapshot_interval_s
        if self.next_tick is None:
            # Warm up first: until every camera had a chance to report, the state is partial.
            first = clock if self.started is None else self.started
            warm = first + self.settings.observation_max_age_s
            self.next_tick = math.ceil(warm / step) * step
        if (clock - self.lag_s - self.next_tick) / step > MAX_CATCH_UP_TICKS:
            skipped = self.next_tick
            self.next_tick = math.floor((clock - self.lag_s) / step) * step
            log.info(
                "flow %s: skipped snapshots from %.0f to %.0f", self.flow, skipped, self.next_tick
            )
        ticks = []
        while self.next_tick <= clock - self.lag_s:
            ticks.append(self.tick(self.next_tick))
            self.next_tick += step
        return ticks

    def tick(self, t: float) -> Tick:
        s = self.settings
        events: list[Event] = []
        by_track: dict[str, list[PositionRecord]] = {track: [] for track in self.trackers}
        for (_, track_id), history in self.observations.items():
            nearest = _nearest(history, t, self.lag_s)
            if nearest is not None and t - nearest.time <= s.observation_max_age_s:
                by_track[track_id].append(nearest)
        self._apply_attributes(t)
        for track_id, tracker in self.trackers.items():
            view = fuse_track(
                tracker.length_m,
                t,
                by_track[track_id],
                s.join_gap_m,
                s.max_occluded_m,
                s.min_confidence,
            )
            events += tracker.tick(t, view)
        owned = owners(
            (loco.id, loco.identity)
            for tracker in self.trackers.values()
            for loco in tracker.locos
            if loco.confirmed
        )
        for tracker in self.trackers.values():
            events += tracker.identify(t, owned)
        locos = tuple(
            self._state(loco) for tracker in self.trackers.values() for loco in tracker.visible()
        )
        return Tick(Snapshot(t, self.facility.facility.id, self.flow, locos), events)

    def _apply_attributes(self, t: float) -> None:
        """File the readings up to ``t`` with the locomotive at their position."""
        due = [a for a in self.pending_attributes if a.time <= t]
        if not due:
            return
        self.pending_attributes = [a for a in self.pending_attributes if a.time > t]
        for reading in due:
            loco = _nearest_loco(self.trackers[reading.track_id].locos, reading.position_m)
            if loco is not None:
                loco.identity.add(
                    reading.name, reading.value, reading.confidence, reading.alternatives
                )

    def _state(self, loco: Locomotive) -> LocoState:
        resolved = loco.resolved  # refreshed by the tracker this tick
        series = resolved.get("model")
        plate = resolved.get("plate")
        return LocoState(
            id=loco.id,
            track=loco.track_id,
            tail_m=round(max(loco.tail_m, 0.0), 3),  # the part outside the hall is not seen
            head_m=round(min(loco.head_m, self.trackers[loco.track_id].length_m), 3),
            station=self.facility.station_of(loco.track_id, loco.tail_m, loco.head_m),
            series=series[0] if series else None,
            series_confidence=round(series[1], 3) if series else None,
            plate=plate[0] if plate else None,
            plate_confidence=round(plate[1], 3) if plate else None,
            stale=loco.stale,
            since=loco.since,
            speed_mps=round(loco.speed_mps, 3),
            range_m=_clipped(loco.range_m, self.trackers[loco.track_id].length_m),
            attributes={
                name: {"value": value, "confidence": round(conf, 3)}
                for name, (value, conf) in resolved.items()
                if name not in {"model", "plate"}
            },
        )

    # -- restart -------------------------------------------------------------------------

    def restore_ids(self, next_id: int) -> None:
        """Number new locomotives from ``next_id`` (ids are never reused across restarts)."""
        self._ids = itertools.count(next_id)

    def restore(self, snapshot: Snapshot, next_id: int) -> None:
        """Carry on from a stored snapshot after a restart: same ids, places and identities."""
        self._ids = itertools.count(next_id)
        min_votes = self.settings.identify_min_votes
        for state in snapshot.locomotives:
            tracker = self.trackers.get(state.track)
            if tracker is None:
                continue
            loco = Locomotive(
                id=state.id,
                track_id=state.track,
                tail_m=state.tail_m,
                head_m=state.head_m,
                since=state.since,
                last_seen=snapshot.time,
                stale=state.stale,
                rest_centre_m=(state.tail_m + state.head_m) / 2,
                ends_seen={"tail", "head"},  # the snapshot does not say: keep it whole
            )
            for name, value, confidence in (
                ("model", state.series, state.series_confidence),
                ("plate", state.plate, state.plate_confidence),
            ):
                if value:
                    for _ in range(min_votes):
                        loco.identity.add(name, value, confidence or 1.0, ())
                    loco.identified[name] = value
            tracker.locos.append(loco)
        self.next_tick = snapshot.time + self.settings.snapshot_interval_s
        self.clock = max(self.clock or snapshot.time, snapshot.time)
        log.info(
            "flow %s: restored %d locomotives from the snapshot of %.0f",
            self.flow,
            len(snapshot.locomotives),
            snapshot.time,
        )


def _nearest_loco(locos: Iterable[Locomotive], metre: float) -> Locomotive | None:
    """The locomotive a reading at ``metre`` belongs to: the one it lies on, else the
    nearest within ATTRIBUTE_MARGIN_M (two may stand closer than the margin)."""
    distance, nearest = min(
        ((max(loco.tail_m - metre, metre - loco.head_m, 0.0), loco) for loco in locos),
        key=lambda pair: pair[0],
        default=(math.inf, None),
    )
    return nearest if distance <= ATTRIBUTE_MARGIN_M else None


def _nearest(history: deque[PositionRecord], t: float, after_s: float) -> PositionRecord | None:
    """The camera's estimation nearest to ``t``: the latest at or before it, or one taken
    up to ``after_s`` after it when that is nearer. A snapshot waits ``lag_s`` for the
    frames of its instant anyway; taking only older ones would show the state up to a
    frame interval late (a nose 0.7 m in at 1.4 m/s and 2 fps, not yet in the count)."""
    after = None
    for record in reversed(history):
        if record.time <= t:
            if after is not None and after.time - t < t - record.time:
                return after
            return record
        if record.time <= t + after_s:
            after = record
    return after


def _clipped(range_m: tuple[float, float] | None, length_m: float) -> tuple[float, float] | None:
    if range_m is None:
        return None
    return max(range_m[0], 0.0), min(range_m[1], length_m)
