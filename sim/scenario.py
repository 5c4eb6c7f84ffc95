"""A compressed working day of the twin depot: locomotives arrive, move, stop, leave.

Tracks are through roads: a locomotive enters past metre 0, drives to a station, dwells,
may move on to a later station, and leaves past the far end. On a dead-end track (no door
at its far end) it leaves the way it came, backing out once nothing stands between it and
the door. Locomotives on one track
keep their order and never come closer than ``MIN_GAP_M``; one that catches up with a
standing neighbour stops 1-3 m behind it, which is the hard case for the estimators.

The day is compressed: ``duration_s`` of scenario time spans 05:00 to 23:00 on the
lighting clock, while locomotives move at real depot speeds (about 5 km/h).
Everything is drawn from one seeded generator, so a seed gives the same day every time.

Frames, faults and truth depend on the seed and the scenario time only; the wall-clock
stamp of scenario time 0 (``ScenarioSpec.start_time``) is a label on top. By default it
is derived from the clock (``recent_start``): the twin's day always lies in the recent
past, so what it feeds is never past a database's retention nor refused as coming from
the future, whatever the date. Give ``start_time`` to pin the stamps.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

import numpy as np

from locowatch.facility.config import FacilityConfig
from sim.fleet import Locomotive, make_fleet
from sim.plates import PlateStyle, random_plate_text

MIN_GAP_M = 1.0
CLOSE_GAP_M = (1.0, 3.0)
MAX_SPEED_MPS = 1.4
ACCEL_MPS2 = 0.25
STEP_S = 0.5
DAY_START_H = 5.0
DAY_END_H = 23.0
DAY_START_UTC_H = 2  # 05:00 in Moscow, where the first depot is
RECENT_SPAN_S = 86_400.0  # a default start leaves room for a whole day before now


def recent_start(now: datetime | None = None, span_s: float = RECENT_SPAN_S) -> datetime:
    """The latest 02:00 UTC (05:00 in Moscow) from which ``span_s`` seconds end by ``now``.

    >>> recent_start(datetime(2026, 12, 6, 2, 28, tzinfo=UTC))
    datetime.datetime(2026, 12, 5, 2, 0, tzinfo=datetime.timezone.utc)
    >>> recent_start(datetime(2026, 12, 6, 1, 59, tzinfo=UTC), span_s=600)
    datetime.datetime(2026, 12, 5, 2, 0, tzinfo=datetime.timezone.utc)
    """
    latest = (datetime.now(UTC) if now is None else now).astimezone(UTC)
    latest -= timedelta(seconds=span_s)
    start = latest.replace(hour=DAY_START_UTC_H, minute=0, second=0, microsecond=0)
    return start if start <= latest else start - timedelta(days=1)


@dataclass(frozen=True)
class ScenarioSpec:
    duration_s: float = 600.0
    fleet_size: int = 24
    initial_per_track: tuple[int, int] = (1, 2)
    arrivals_per_track: float = 4.0  # expected arrivals per track over the run
    dwell_fraction: tuple[float, float] = (0.08, 0.35)  # of duration_s
    move_on_probability: float = 0.5
    # wall-clock stamp of scenario time 0; by default the recent past (see recent_start)
    start_time: datetime = field(default_factory=recent_start)
    # training sets only: every locomotive wears a new made-up plate (of this style, see
    # sim.plates) at every instant
    random_plates: PlateStyle | None = None


@dataclass(frozen=True)
class LocoState:
    """Where one locomotive is at one instant (ground truth)."""

    loco: Locomotive
    track: str
    tail_m: float  # lower-metre end
    head_m: float  # higher-metre end
    speed_mps: float


@dataclass
class _Body:
    loco: Locomotive
    track: str
    tail: float
    speed: float = 0.0
    target: float | None = None  # tail position to drive to
    dwell_until: float = 0.0
    stops_left: int = 1
    leaving: bool = False
    backing: bool = False  # leaving a dead-end track the way it came in

    @property
    def head(self) -> float:
        return self.tail + self.loco.length_m


@dataclass
class Scenario:
    """The sampled day: positions of every locomotive every ``STEP_S`` seconds."""

    facility: FacilityConfig
    spec: ScenarioSpec
    fleet: list[Locomotive]
    times: np.ndarray  # (n,)
    # loco id -> (n,) tail positions (NaN when outside) and track index (-1 when outside)
    tails: dict[str, np.ndarray] = field(default_factory=dict)
    track_index: dict[str, np.ndarray] = field(default_factory=dict)
    speeds: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def track_ids(self) -> list[str]:
        return [t.id for t in self.facility.tracks]

    def at(self, t: float) -> list[LocoState]:
        """Every locomotive at least partly on a track at scenario time ``t``."""
        i = int(np.clip(np.searchsorted(self.times, t, side="right") - 1, 0, len(self.times) - 1))
        j = min(i + 1, len(self.times) - 1)
        w = 0.0 if j == i else float((t - self.times[i]) / (self.times[j] - self.times[i]))
        w = min(max(w, 0.0), 1.0)
        states = []
        style = self.spec.random_plates
        for loco in self.fleet:
            index = self.track_index[loco.loco_id]
            if index[i] < 0:
                continue
            tails = self.tails[loco.loco_id]
            same_visit = index[j] == index[i] and not math.isnan(tails[j])
            tail = float(tails[i] + w * (tails[j] - tails[i])) if same_visit else float(tails[i])
            track = self.track_ids[int(index[i])]
            length = self.facility.track_by_id[track].length_m
            if tail + loco.length_m <= 0.0 or tail >= length:
                continue
            speed = float(self.speeds[loco.loco_id][i])
            shown = self._painted(loco, t, style) if style else loco
            states.append(LocoState(shown, track, tail, tail + loco.length_m, speed))
        return states

    @staticmethod
    def _painted(loco: Locomotive, t: float, style: PlateStyle) -> Locomotive:
        """``loco`` wearing a made-up plate, the same for the same instant (so a frame and
        its labels agree) and different from one sample time to the next."""
        rng = np.random.default_rng(
            [round(t * 1000), loco.number, zlib.crc32(loco.loco_id.encode())]
        )
        return replace(loco, painted=random_plate_text(rng, style))

    def clock(self, t: float) -> datetime:
        """Wall-clock timestamp of scenario time ``t``."""
        return self.spec.start_time + timedelta(seconds=t)

    def hour_of_day(self, t: float) -> float:
        """Lighting clock: 05:00 at the start, 23:00 at the end of the run."""
        return DAY_START_H + (DAY_END_H - DAY_START_H) * t / self.spec.duration_s


def build_scenario(
    facility: FacilityConfig,
    seed: int = 0,
    spec: ScenarioSpec | None = None,
    fleet: list[Locomotive] | None = None,
) -> Scenario:
    """The day of ``seed``; ``fleet`` (a varied twin's) instead of the six classic series."""
    spec = spec or ScenarioSpec()
    rng = np.random.default_rng(seed)
    if fleet is None:
        fleet = make_fleet(rng, spec.fleet_size)
    planner = _Planner(facility, spec, rng, fleet)
    return planner.run()


class _Planner:
    def __init__(
        self,
        facility: FacilityConfig,
        spec: ScenarioSpec,
        rng: np.random.Generator,
        fleet: list[Locomotive],
    ) -> None:
        self.facility = facility
        self.spec = spec
        self.rng = rng
        self.fleet = fleet
        self.idle = list(fleet)  # outside the depot, free to arrive
        self.rng.shuffle(self.idle)
        self.on_track: dict[str, list[_Body]] = {t.id: [] for t in facility.tracks}
        self.track_ids = [t.id for t in facility.tracks]

    def run(self) -> Scenario:
        times = np.arange(0.0, self.spec.duration_s + STEP_S / 2, STEP_S)
        tails = {loco.loco_id: np.full(len(times), np.nan) for loco in self.fleet}
        index = {loco.loco_id: np.full(len(times), -1, dtype=np.int16) for loco in self.fleet}
        speeds = {loco.loco_id: np.zeros(len(times)) for loco in self.fleet}
        self._place_initial()
        rate = self.spec.arrivals_per_track / self.spec.duration_s * STEP_S
        for step, t in enumerate(times):
            for track_number, track_id in enumerate(self.track_ids):
                if self.rng.random() < rate:
                    self._try_arrive(track_id, t)
                self._advance(track_id, t)
                for body in self.on_track[track_id]:
                    tails[body.loco.loco_id][step] = body.tail
                    index[body.loco.loco_id][step] = track_number
                    speeds[body.loco.loco_id][step] = body.speed
        return Scenario(
            self.facility,
            self.spec,
            self.fleet,
            times,
            tails=tails,
            track_index=index,
            speeds=speeds,
        )

    # -- arrivals and plans -------------------------------------------------------------

    def _place_initial(self) -> None:
        for track in self.facility.tracks:
            lo, hi = self.spec.initial_per_track
            count = int(self.rng.integers(lo, hi + 1))
            stations = self.facility.stations_on(track.id)
            picked = self.rng.choice(len(stations), size=min(count, len(stations)), replace=False)
            for station in sorted((stations[int(i)] for i in picked), key=lambda s: -s.start_m):
                if not self.idle:
                    return
                loco = self.idle.pop()
                tail = station.end_m - loco.length_m - float(self.rng.uniform(0.5, 3.0))
                bodies = self.on_track[track.id]
                if bodies and tail + loco.length_m > bodies[0].tail - MIN_GAP_M:
                    self.idle.insert(0, loco)
                    continue
                body = _Body(loco, track.id, max(tail, 0.5), stops_left=1)
                body.dwell_until = self._dwell()
                bodies.insert(0, body)

    def _try_arrive(self, track_id: str, t: float) -> None:
        bodies = self.on_track[track_id]
        if not self.idle:
            return
        loco = self.idle[-1]
        entry_tail = -loco.length_m - 2.0
        if bodies and (bodies[0].tail < 8.0 or bodies[0].backing):  # the gate is blocked
            return
        self.idle.pop()
        body = _Body(
            loco,
            track_id,
            entry_tail,
            stops_left=1 + int(self.rng.random() < self.spec.move_on_probability),
        )
        body.target = self._station_target(body, after=0.0)
        bodies.insert(0, body)
        _ = t

    def _station_target(self, body: _Body, after: float) -> float:
        """A tail position at a random station beyond ``after`` (or the far end: leave)."""
        track = self.facility.track_by_id[body.track]
        stations = [
            s
            for s in self.facility.stations_on(body.track)
            if s.end_m - body.loco.length_m > after + 2.0
            and s.end_m - s.start_m >= 0.6 * body.loco.length_m
        ]
        if not stations:  # drive out past the far end, or up to the buffer of a dead end
            if "end" in track.doors:
                return self._exit_target(track.length_m)
            return max(after, track.length_m - body.loco.length_m - 1.0)
        station = stations[int(self.rng.integers(len(stations)))]
        # Stop with the head near the station's end, as crews do to leave room behind.
        return station.end_m - body.loco.length_m - float(self.rng.uniform(0.3, 2.5))

    def _exit_target(self, track_length: float) -> float:
        return track_length + 2.0

    def _dwell(self) -> float:
        lo, hi = self.spec.dwell_fraction
        return float(self.rng.uniform(lo, hi)) * self.spec.duration_s

    # -- motion -------------------------------------------------------------------------

    def _advance(self, track_id: str, t: float) -> None:
        bodies = self.on_track[track_id]
        track = self.facility.track_by_id[track_id]
        length = track.length_m
        through = "end" in track.doors
        # Front first, so each body sees where the one ahead of it has already moved to.
        for position in range(len(bodies) - 1, -1, -1):
            body = bodies[position]
            ahead = bodies[position + 1] if position + 1 < len(bodies) else None
            if body.target is None and t >= body.dwell_until:
                if through or body.stops_left > 1:
                    self._next_leg(body, ahead, length)
                elif position == 0:  # a dead end: the one nearest the door backs out
                    body.stops_left, body.leaving, body.backing = 0, True, True
                    body.target = -body.loco.length_m - 2.0
                else:  # ... the others wait for the way out to clear
                    body.dwell_until = t + 10.0
            if body.backing:
                self._back(body, t)
                continue
            limit = ahead.tail - MIN_GAP_M - body.loco.length_m if ahead else math.inf
            self._drive(body, limit, t)
        gone = [b for b in bodies if b.tail >= length + 1.0 or (b.backing and b.head <= -1.0)]
        self.on_track[track_id] = [b for b in bodies if b not in gone]
        for body in gone:
            self.idle.insert(0, body.loco)

    def _back(self, body: _Body, t: float) -> None:
        """Back out of a dead-end track towards metre 0 (and out of the door)."""
        assert body.target is not None
        distance = body.tail - body.target
        wanted = min(MAX_SPEED_MPS, math.sqrt(2 * ACCEL_MPS2 * max(distance, 0.0)))
        speed = min(wanted, -body.speed + ACCEL_MPS2 * STEP_S)
        body.speed = -speed
        body.tail = max(body.tail - speed * STEP_S, body.target)
        _ = t

    def _next_leg(self, body: _Body, ahead: _Body | None, length: float) -> None:
        body.stops_left -= 1
        if body.stops_left > 0:
            body.target = self._station_target(body, after=body.head)
        else:
            body.leaving = True
            body.target = self._exit_target(length)
        if ahead is not None and not body.leaving:
            close = ahead.tail - float(self.rng.uniform(*CLOSE_GAP_M)) - body.loco.length_m
            body.target = min(body.target, close)

    def _drive(self, body: _Body, limit: float, t: float) -> None:
        if body.target is None:
            body.speed = 0.0
            return
        goal = min(body.target, limit)
        distance = goal - body.tail
        if distance <= 0.02 and body.speed <= ACCEL_MPS2 * STEP_S:
            body.speed = 0.0
            if body.target <= limit + 0.02:  # arrived where it wanted, not just blocked
                body.target = None
                body.dwell_until = t + self._dwell()
            return
        # Trapezoidal profile: accelerate, cruise, brake to stop at the goal.
        wanted = min(MAX_SPEED_MPS, math.sqrt(2 * ACCEL_MPS2 * max(distance, 0.0)))
        body.speed = float(
            np.clip(wanted, body.speed - ACCEL_MPS2 * STEP_S, body.speed + ACCEL_MPS2 * STEP_S)
        )
        body.tail = min(body.tail + body.speed * STEP_S, goal)
