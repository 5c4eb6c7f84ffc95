"""Validated estimations inside the cloud: what ingest stores and the FSE consumes.

Ingest turns each accepted protobuf envelope into one of these records once, after
validation; from there on nothing needs to check for NaN, unknown cameras or intervals
off the track again. Times are POSIX seconds (UTC) as floats: cheap to compare in the
FSE, converted to ``datetime`` only when written. Named tuples, because ingest makes
tens of thousands a second and they are the cheapest immutable records Python has.
"""

from __future__ import annotations

from typing import NamedTuple


class Interval(NamedTuple):
    """An occupied stretch of track as one camera saw it; an end is real or cut."""

    start_m: float
    end_m: float
    start_real: bool
    end_real: bool
    confidence: float


class Origin(NamedTuple):
    """Where a record came from: the gateway's sequence number makes it unique."""

    facility_id: str
    gateway_id: str
    seq: int


class PositionRecord(NamedTuple):
    origin: Origin
    time: float
    flow: str
    camera_id: str
    track_id: str
    covered_start_m: float
    covered_end_m: float
    confidence: float
    intervals: tuple[Interval, ...]
    model_version: str
    engine: str


class AttributeRecord(NamedTuple):
    origin: Origin
    time: float
    flow: str
    camera_id: str
    name: str
    value: str
    confidence: float
    track_id: str
    position_m: float
    alternatives: tuple[tuple[str, float], ...]
    model_version: str
    engine: str


class HealthRecord(NamedTuple):
    origin: Origin
    time: float
    camera_id: str
    state: str
    fps: float
    last_frame_time: float | None
    reconnects: int
    decode_errors: int
    message: str


Record = PositionRecord | AttributeRecord | HealthRecord


class Rejected(NamedTuple):
    """An envelope refused for good, with the proto's reason name and a readable detail."""

    origin: Origin
    reason: str  # RejectReason name without its prefix, e.g. "NOT_FINITE"
    detail: str
