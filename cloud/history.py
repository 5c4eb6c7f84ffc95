"""The facility's history as facts written when they happen: stays, visits and spans.

A depot's locomotives stand still for hours, so history kept as one row per locomotive
per second grows with time, not with what happens, and every report over it gets slower
each day. Instead the state writer hands each batch of ticks to ``History``, which keeps
the facts that are open (a locomotive at a station, inside the depot, standing in one
place) and says which rows the batch opened, changed or closed:

- a **stay**: a locomotive at one station, from the first snapshot it was there to the
  last, broken when its station changes or it is missing from snapshots for more than
  ``GAP_S`` (the rule the analysts' per-second ``station_stays`` view had);
- a **visit**: from the FSE's ``arrived`` event to its ``departed`` event, with the last
  series and plate its events named;
- a **span**: the locomotive's state (track, station, series, plate, stale) while it
  holds and the locomotive's ends stay within ``SPAN_DRIFT_M`` of their mean over the
  span: a locomotive standing still is one span, one moving a span every half metre.
  A closed span keeps the mean tail and head over its snapshots.

Rows are keyed by (facility, flow, locomotive, start), written open (no end) and
updated as they change and close, so open facts are visible at once. ``plan`` works on
copies and ``adopt`` keeps them only after the rows are committed: a failed write is
retried with the same batch and writes the same rows. After a restart ``FlowHistory``
is read back from the open rows (``cloud.store.Store.open_history``).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from cloud.fse import Event, LocoState, Tick

GAP_S = 60.0  # a locomotive missing from snapshots this long has left its stay and span
SPAN_DRIFT_M = 0.5  # a span ends when the tail or head is this far from the span's mean
STRAYS = 2  # ... in this many snapshots in a row (one glitch of the estimate is no move)
HOUR_S = 3600.0


@dataclass
class OpenStay:
    loco_id: str
    station_id: str
    track_id: str
    from_time: float
    last_time: float  # the newest snapshot it was in
    series: str | None
    plate: str | None


@dataclass
class OpenSpan:
    loco_id: str
    track_id: str
    station_id: str | None
    series: str | None
    plate: str | None
    stale: bool
    from_time: float
    last_time: float
    first_tail_m: float
    first_head_m: float
    tail_sum_m: float
    head_sum_m: float
    snapshots: int
    strays: int = 0  # snapshots in a row with an end off the mean

    def mean_m(self) -> tuple[float, float]:
        if not self.snapshots:
            return self.first_tail_m, self.first_head_m
        return self.tail_sum_m / self.snapshots, self.head_sum_m / self.snapshots

    def same_state(self, loco: LocoState) -> bool:
        return (loco.track, loco.station, loco.series, loco.plate, loco.stale) == (
            self.track_id, self.station_id, self.series, self.plate, self.stale
        )  # fmt: skip

    def goes_on(self, loco: LocoState, t: float) -> bool:
        """Whether ``loco`` at ``t`` is still this span."""
        if not self.same_state(loco) or t - self.last_time > GAP_S:
            return False
        self.strays = 0 if self.near(loco) else self.strays + 1
        return self.strays < STRAYS

    def extend(self, loco: LocoState, t: float) -> None:
        self.last_time = t
        if not self.strays:  # a stray estimate does not move the mean
            self.tail_sum_m += loco.tail_m
            self.head_sum_m += loco.head_m
            self.snapshots += 1

    def near(self, loco: LocoState) -> bool:
        """Its ends near the span's mean (a mean, not the first position: the FSE's
        estimate of a standing locomotive wanders by decimetres)."""
        tail_m, head_m = self.mean_m()
        return (
            abs(loco.tail_m - tail_m) <= SPAN_DRIFT_M and abs(loco.head_m - head_m) <= SPAN_DRIFT_M
        )


@dataclass
class OpenVisit:
    loco_id: str
    arrival_track: str
    arrived_at: float
    series: str | None
    plate: str | None


@dataclass
class FlowHistory:
    """The open facts of one facility and flow, and how far its history reaches."""

    time: float | None = None  # the newest snapshot written
    rolled_up_to: float | None = None  # hours before this are in the hour tables
    stays: dict[str, OpenStay] = field(default_factory=dict)
    spans: dict[str, OpenSpan] = field(default_factory=dict)
    visits: dict[str, OpenVisit] = field(default_factory=dict)


@dataclass(frozen=True)
class StayRow:
    loco_id: str
    station_id: str
    track_id: str
    from_time: float
    to_time: float | None  # None while it lasts
    series: str | None
    plate: str | None


@dataclass(frozen=True)
class SpanRow:
    loco_id: str
    track_id: str
    station_id: str | None
    series: str | None
    plate: str | None
    stale: bool
    from_time: float
    to_time: float | None
    tail_m: float  # the mean over the span once closed; where it began while open
    head_m: float


@dataclass(frozen=True)
class VisitRow:
    loco_id: str
    arrival_track: str
    arrived_at: float
    departed_at: float | None
    series: str | None
    plate: str | None


@dataclass
class FlowChanges:
    """Rows one batch of ticks wrote for one facility and flow (the newest of each key)."""

    facility_id: str
    flow: str
    history: FlowHistory  # the open facts after the batch
    stays: dict[tuple[str, float], StayRow] = field(default_factory=dict)
    spans: dict[tuple[str, float], SpanRow] = field(default_factory=dict)
    visits: dict[tuple[str, float], VisitRow] = field(default_factory=dict)
    roll_up: tuple[float, float] | None = None  # closed hours [from, to) to roll up

    def stay(self, s: OpenStay, to_time: float | None) -> None:
        self.stays[(s.loco_id, s.from_time)] = StayRow(
            s.loco_id, s.station_id, s.track_id, s.from_time, to_time, s.series, s.plate
        )

    def span(self, s: OpenSpan, to_time: float | None) -> None:
        tail, head = (s.first_tail_m, s.first_head_m) if to_time is None else s.mean_m()
        self.spans[(s.loco_id, s.from_time)] = SpanRow(
            s.loco_id, s.track_id, s.station_id, s.series, s.plate, s.stale, s.from_time,
            to_time, tail, head,
        )  # fmt: skip

    def visit(self, v: OpenVisit, departed_at: float | None) -> None:
        self.visits[(v.loco_id, v.arrived_at)] = VisitRow(
            v.loco_id, v.arrival_track, v.arrived_at, departed_at, v.series, v.plate
        )


Loader = Callable[[str, str], FlowHistory]


class History:
    """Open facts of every facility and flow this process writes state for."""

    def __init__(self) -> None:
        self.flows: dict[tuple[str, str], FlowHistory] = {}

    def plan(self, ticks: Sequence[Tick], load: Loader) -> list[FlowChanges]:
        """The rows ``ticks`` (in time order per flow) open, change and close; nothing is
        kept until ``adopt``. ``load`` reads a flow's open facts the first time it is seen."""
        changes: dict[tuple[str, str], FlowChanges] = {}
        for tick in ticks:
            key = (tick.snapshot.facility_id, tick.snapshot.flow)
            if key not in changes:
                if key not in self.flows:
                    self.flows[key] = load(*key)
                changes[key] = FlowChanges(*key, copy.deepcopy(self.flows[key]))
            _apply(changes[key], tick)
        for change in changes.values():
            _hours(change)
        return list(changes.values())

    def adopt(self, changes: Iterable[FlowChanges]) -> None:
        """Keep the open facts of committed changes."""
        for change in changes:
            self.flows[(change.facility_id, change.flow)] = change.history


def _apply(change: FlowChanges, tick: Tick) -> None:
    history, t = change.history, tick.snapshot.time
    if history.rolled_up_to is None:
        history.rolled_up_to = _hour(t)
    for loco in tick.snapshot.locomotives:
        _stay(change, loco, t)
        _span(change, loco, t)
    for loco_id, stay in list(history.stays.items()):
        if t - stay.last_time > GAP_S:
            change.stay(history.stays.pop(loco_id), stay.last_time)
    for loco_id, span in list(history.spans.items()):
        if t - span.last_time > GAP_S:
            change.span(history.spans.pop(loco_id), span.last_time)
    for event in tick.events:
        _event(change, event)
    history.time = t


def _stay(change: FlowChanges, loco: LocoState, t: float) -> None:
    stays = change.history.stays
    stay = stays.get(loco.id)
    if stay is not None and (stay.station_id != loco.station or t - stay.last_time > GAP_S):
        change.stay(stays.pop(loco.id), stay.last_time)
        stay = None
    if stay is None:
        if loco.station is not None:
            stays[loco.id] = stay = OpenStay(
                loco.id, loco.station, loco.track, t, t, loco.series, loco.plate
            )
            change.stay(stay, None)
        return
    stay.last_time = t
    series = loco.series or stay.series  # the last named, as the per-second view took it
    plate = loco.plate or stay.plate
    if (series, plate) != (stay.series, stay.plate):
        stay.series, stay.plate = series, plate
        change.stay(stay, None)


def _span(change: FlowChanges, loco: LocoState, t: float) -> None:
    spans = change.history.spans
    span = spans.get(loco.id)
    if span is not None and span.goes_on(loco, t):
        span.extend(loco, t)
        return
    if span is not None:
        change.span(spans.pop(loco.id), span.last_time)
    spans[loco.id] = span = OpenSpan(
        loco.id, loco.track, loco.station, loco.series, loco.plate, loco.stale, t, t,
        loco.tail_m, loco.head_m, 0.0, 0.0, 0,
    )  # fmt: skip
    span.extend(loco, t)
    change.span(span, None)


def _event(change: FlowChanges, event: Event) -> None:
    history = change.history
    if event.kind == "arrived":
        # Identity comes from its identified and departed events, as the events view took it.
        arrived = OpenVisit(event.loco_id, event.track_id, event.time, None, None)
        history.visits[event.loco_id] = arrived
        change.visit(arrived, None)
        return
    visit = history.visits.get(event.loco_id)
    if visit is not None and event.kind in ("identified", "departed"):
        visit.series = event.series or visit.series
        visit.plate = event.plate or visit.plate
        change.visit(visit, None)
    if event.kind != "departed":
        return
    if visit is not None:
        change.visit(history.visits.pop(event.loco_id), event.time)
    # Gone: its stay and span end at the last snapshot it was in, not GAP_S later.
    if (stay := history.stays.pop(event.loco_id, None)) is not None:
        change.stay(stay, stay.last_time)
    if (span := history.spans.pop(event.loco_id, None)) is not None:
        change.span(span, span.last_time)


def _hours(change: FlowChanges) -> None:
    """The hours the batch closed: every hour before the newest snapshot's."""
    history = change.history
    if history.time is None or history.rolled_up_to is None:
        return
    newest_hour = _hour(history.time)
    if newest_hour > history.rolled_up_to:
        change.roll_up = (history.rolled_up_to, newest_hour)
        history.rolled_up_to = newest_hour


def _hour(t: float) -> float:
    return t - t % HOUR_S
