"""Validated estimations inside the cloud: what ingest stores and the FSE consumes.

Ingest turns each accepted protobuf envelope into one of these records once, after
validation; from there on nothing needs to check for NaN, unknown cameras or intervals
off the track again. Times are POSIX seconds (UTC) as floats: cheap to compare in the
FSE, converted to ``datetime`` only when written. Named tuples, because ingest makes
tens of thousands a second and they are the cheapest immutable records Python has.
"""

from __future__ import annotations

import marshal
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


# -- hand-over between processes ----------------------------------------------------------
# Ingest hands every stored record to the FSE process. Pickling named tuples costs a
# Python-level __reduce__ per tuple (a record, its origin, each interval): about 10 us a
# record, on ingest's busiest core. Plain tuples of str, float, int and bool go through
# marshal (C, no per-object calls) at a fifth of that; the FSE side rebuilds the records.
_POSITION, _ATTRIBUTE, _HEALTH = 0, 1, 2


def pack_records(records: list[Record]) -> bytes:
    """Records as bytes for another process of this same build (marshal's format)."""
    plain: list[tuple[object, ...]] = []
    for r in records:
        if type(r) is PositionRecord:
            plain.append((_POSITION, tuple(r.origin), *r[1:8], tuple(map(tuple, r[8])), *r[9:]))
        elif type(r) is AttributeRecord:
            plain.append((_ATTRIBUTE, tuple(r.origin), *r[1:]))
        else:
            plain.append((_HEALTH, tuple(r.origin), *r[1:]))
    return marshal.dumps(plain)


def unpack_records(data: bytes) -> list[Record]:
    """The records ``pack_records`` packed, equal to the originals."""
    out: list[Record] = []
    for kind, origin, *fields in marshal.loads(data):  # bytes from our own ingest process
        if kind == _POSITION:
            fields[7] = tuple(Interval(*i) for i in fields[7])
            out.append(PositionRecord(Origin(*origin), *fields))
        elif kind == _ATTRIBUTE:
            out.append(AttributeRecord(Origin(*origin), *fields))
        else:
            out.append(HealthRecord(Origin(*origin), *fields))
    return out
