"""Validated estimations inside the cloud: what ingest stores and the FSE consumes.

Ingest turns each accepted protobuf envelope into one of these records once, after
validation; from there on nothing needs to check for NaN, unknown cameras or intervals
off the track again. Times are POSIX seconds (UTC) as floats: cheap to compare in the
FSE, converted to ``datetime`` only when written. Named tuples, because ingest makes
tens of thousands a second and they are the cheapest immutable records Python has.
"""

from __future__ import annotations

from typing import Any, NamedTuple

# ``fast_new(RecordClass, values)`` builds a record from a tuple of its fields in C,
# skipping the named tuple's Python-level ``__new__``: on ingest's hot paths (validation,
# the hand-over below) that call was a tenth of the time. Field order is the caller's
# duty; the validation and hand-over tests compare whole records.
fast_new: Any = tuple.__new__


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


class Blind(NamedTuple):
    """A stretch of a camera's covered span it could not judge in one frame."""

    start_m: float
    end_m: float
    hidden: bool  # True: something nearer stood in front; False: out of view


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
    blind: tuple[Blind, ...] = ()


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
# record, on ingest's busiest core. Plain tuples of str, float, int and bool pickle in C
# at a tenth of that (less again when their strings are interned, as validation does:
# the pickle memo then writes each repeated string once); the FSE side rebuilds the
# records with ``fast_new``.
_POSITION, _ATTRIBUTE, _HEALTH = 0, 1, 2
PlainRecord = tuple[Any, ...]


def as_plain(records: list[Record]) -> list[PlainRecord]:
    """Records as plain tuples, for pickling to another process; see ``from_plain``."""
    plain: list[PlainRecord] = []
    add = plain.append
    for r in records:
        if type(r) is PositionRecord:
            add((_POSITION, tuple(r.origin), *r[1:8], tuple(map(tuple, r[8])), *r[9:11],
                 tuple(map(tuple, r[11]))))  # fmt: skip
        elif type(r) is AttributeRecord:
            add((_ATTRIBUTE, tuple(r.origin), *r[1:]))
        else:
            add((_HEALTH, tuple(r.origin), *r[1:]))
    return plain


def from_plain(plain: list[PlainRecord]) -> list[Record]:
    """The records ``as_plain`` flattened, equal to the originals."""
    out: list[Record] = []
    add = out.append
    for p in plain:
        kind = p[0]
        if kind == _POSITION:
            _, o, time, flow, camera, track, start, end, confidence, iv, version, engine, bl = p
            intervals = tuple([fast_new(Interval, i) for i in iv]) if iv else ()
            blind = tuple([fast_new(Blind, b) for b in bl]) if bl else ()
            fields = (fast_new(Origin, o), time, flow, camera, track, start, end, confidence,
                      intervals, version, engine, blind)  # fmt: skip
            add(fast_new(PositionRecord, fields))
        else:
            cls = AttributeRecord if kind == _ATTRIBUTE else HealthRecord
            add(fast_new(cls, (fast_new(Origin, p[1]), *p[2:])))
    return out
