"""Raw estimations and facility state as PostgreSQL binary COPY data, packed with ``struct``.

Ingest writes tens of thousands of rows a second from one Python thread, and the FSE
process a snapshot for every second of capture it fuses. psycopg's
``Copy.write_row`` adapts every field of every row through its dumpers (lists to arrays
in pure Python), which was half of ingest's storage time. The rows here are few and
fixed in shape, so this module packs them straight into the wire format that
``COPY ... FROM STDIN (FORMAT BINARY)`` reads: a signature, then per row a field count
and each field as a length and its binary value, then a trailer.
(https://www.postgresql.org/docs/current/sql-copy.html#id-1.9.3.55.9.4)

Strings repeat endlessly (facility, gateway, flow, camera, track, versions), so their
encoded fields are cached. Column lists and their order live beside the encoders:
a change to the tables changes both here, and the round-trip tests catch a mismatch.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Iterable, Sequence
from functools import cache

from cloud.fse import Snapshot
from cloud.records import (
    AttributeRecord,
    Blind,
    HealthRecord,
    Interval,
    Origin,
    PositionRecord,
)

SIGNATURE = b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0)  # no OIDs, no extension
TRAILER = struct.pack(">h", -1)
POSTGRES_EPOCH = 946_684_800.0  # 2000-01-01T00:00:00Z in POSIX seconds
NULL = struct.pack(">i", -1)
FLOAT4_OID, BOOL_OID, TEXT_OID = 700, 16, 25

POSITION_COLUMNS = (
    "time, facility_id, gateway_id, seq, flow, camera_id, track_id, covered_start_m, "
    "covered_end_m, confidence, interval_start_m, interval_end_m, start_real, end_real, "
    "interval_confidence, model_version, engine, blind_start_m, blind_end_m, blind_hidden"
)
ATTRIBUTE_COLUMNS = (
    "time, facility_id, gateway_id, seq, flow, camera_id, name, value, confidence, track_id, "
    "position_m, alternatives, alternative_confidence, model_version, engine"
)
HEALTH_COLUMNS = (
    "time, facility_id, gateway_id, seq, camera_id, state, fps, last_frame_time, reconnects, "
    "decode_errors, message"
)
SNAPSHOT_COLUMNS = "time, facility_id, flow, written_at, locomotive_count, locomotives"
# Fixed-width stretches of a row: (field count,) timestamptz, int8, float4 and int8 fields,
# each value behind its length.
_ROW_START = struct.Struct(">hiq")  # field count, timestamptz
_INT8 = struct.Struct(">iq")
_FLOAT4 = struct.Struct(">if")
_FLOAT4x3 = struct.Struct(">ififif")
_INT4 = struct.Struct(">ii")
JSONB_VERSION = b"\x01"  # jsonb's binary form: a version byte, then the JSON text
_TEXT_CACHE_LIMIT = 10_000  # distinct keys cached before the cache starts over


def timestamptz(t: float) -> int:
    """POSIX seconds as PostgreSQL's binary timestamptz: microseconds since 2000."""
    return round((t - POSTGRES_EPOCH) * 1_000_000)


def _text_field(value: str) -> bytes:
    """One text field: its length, then UTF-8."""
    data = value.encode()
    return struct.pack(">i", len(data)) + data


class _Texts:
    """Encoded text fields (length + UTF-8), one or several in a row, cached.

    Nearly every string repeats, and so do runs of them (facility and gateway; flow,
    camera and track), so a run is looked up as one key."""

    def __init__(self) -> None:
        self.cache: dict[str | tuple[str, ...], bytes] = {}

    def __call__(self, value: str | tuple[str, ...]) -> bytes:
        fields = self.cache.get(value)
        if fields is None:
            if len(self.cache) >= _TEXT_CACHE_LIMIT:
                self.cache.clear()
            texts = (value,) if isinstance(value, str) else value
            fields = b"".join(map(_text_field, texts))
            self.cache[value] = fields
        return fields


_text = _Texts()


# The five arrays of a position row's intervals, in column order: start_m, end_m,
# start_real, end_real, confidence, each as (element oid, element size).
_INTERVAL_ARRAYS = ((FLOAT4_OID, 4), (FLOAT4_OID, 4), (BOOL_OID, 1), (BOOL_OID, 1), (FLOAT4_OID, 4))


def _empty_array(oid: int) -> bytes:
    """An empty one-dimensional array field: its length, no dimensions, the element oid."""
    return struct.pack(">iiii", 12, 0, 0, oid)


_EMPTY_ARRAYS = b"".join(_empty_array(oid) for oid, _ in _INTERVAL_ARRAYS)


@cache
def _arrays(layout: tuple[tuple[int, int], ...], n: int) -> struct.Struct:
    """Arrays of n > 0 elements each (``layout``: element oid and size per array) as one
    struct: each is a field length, the array header and (length, value) per element."""
    codes = {4: "f", 1: "?"}
    return struct.Struct(">" + "".join("iiiiii" + ("i" + codes[size]) * n for _, size in layout))


def _array_values(
    values: Sequence[float] | Sequence[bool], oid: int, size: int
) -> list[float | bool | int]:
    n = len(values)
    out: list[float | bool | int] = [20 + (4 + size) * n, 1, 0, oid, n, 1]
    for v in values:
        out += (size, v)
    return out


# One interval (the common case): each array is a constant header, then the value.
_ONE_INTERVAL = struct.Struct(">28sf28sf28s?28s?28sf")
_ONE_FLOAT4 = struct.pack(">iiiiiii", 28, 1, 0, FLOAT4_OID, 1, 1, 4)
_ONE_BOOL = struct.pack(">iiiiiii", 25, 1, 0, BOOL_OID, 1, 1, 1)


def _intervals(intervals: Sequence[Interval]) -> bytes:
    if not intervals:
        return _EMPTY_ARRAYS
    if len(intervals) == 1:
        ((start, end, start_real, end_real, confidence),) = intervals
        f, b = _ONE_FLOAT4, _ONE_BOOL
        return _ONE_INTERVAL.pack(f, start, f, end, b, start_real, b, end_real, f, confidence)
    values: list[float | bool | int] = []
    for column, (oid, size) in zip(zip(*intervals, strict=True), _INTERVAL_ARRAYS, strict=True):
        values += _array_values(column, oid, size)
    return _arrays(_INTERVAL_ARRAYS, len(intervals)).pack(*values)


# The three arrays of a position row's blind spans: start_m, end_m, hidden.
_BLIND_ARRAYS = ((FLOAT4_OID, 4), (FLOAT4_OID, 4), (BOOL_OID, 1))
_NO_BLIND = b"".join(_empty_array(oid) for oid, _ in _BLIND_ARRAYS)


def _blind(blind: Sequence[Blind]) -> bytes:
    if not blind:
        return _NO_BLIND
    values: list[float | bool | int] = []
    for column, (oid, size) in zip(zip(*blind, strict=True), _BLIND_ARRAYS, strict=True):
        values += _array_values(column, oid, size)
    return _arrays(_BLIND_ARRAYS, len(blind)).pack(*values)


_NO_ALTERNATIVES = _empty_array(TEXT_OID) + _empty_array(FLOAT4_OID)


def _alternatives(alternatives: Sequence[tuple[str, float]]) -> bytes:
    """text[] of the alternative values, then float4[] of their confidences."""
    if not alternatives:
        return _NO_ALTERNATIVES
    n = len(alternatives)
    texts = b"".join(_text(v) for v, _ in alternatives)
    header = struct.pack(">iiiii", 1, 0, TEXT_OID, n, 1)
    floats = _array_values([c for _, c in alternatives], FLOAT4_OID, 4)
    return b"".join(
        (
            struct.pack(">i", len(header) + len(texts)),
            header,
            texts,
            struct.pack(">iiiiii" + "if" * n, *floats),
        )
    )


def _copy_data(rows: Iterable[tuple[bytes, ...]]) -> bytes:
    """A whole COPY stream: the signature, every row's fields, the trailer."""
    parts = [SIGNATURE]
    for row in rows:
        parts += row
    parts.append(TRAILER)
    return b"".join(parts)


def _head(fields: int, t: float, origin: Origin) -> tuple[bytes, bytes, bytes]:
    """The field count, then the columns every raw table starts with: time,
    facility_id, gateway_id, seq."""
    return (
        _ROW_START.pack(fields, 8, timestamptz(t)),
        _text((origin.facility_id, origin.gateway_id)),
        _INT8.pack(8, origin.seq),
    )


def position_rows(records: Sequence[PositionRecord]) -> bytes:
    """COPY data for ``position_estimations (POSITION_COLUMNS)``."""
    return _copy_data(
        (
            *_head(20, p.time, p.origin),
            _text((p.flow, p.camera_id, p.track_id)),
            _FLOAT4x3.pack(4, p.covered_start_m, 4, p.covered_end_m, 4, p.confidence),
            _intervals(p.intervals),
            _text((p.model_version, p.engine)),
            _blind(p.blind),
        )
        for p in records
    )


def attribute_rows(records: Sequence[AttributeRecord]) -> bytes:
    """COPY data for ``attribute_estimations (ATTRIBUTE_COLUMNS)``."""
    return _copy_data(
        (
            *_head(15, a.time, a.origin),
            _text((a.flow, a.camera_id, a.name, a.value)),
            _FLOAT4.pack(4, a.confidence),
            _text(a.track_id),
            _FLOAT4.pack(4, a.position_m),
            _alternatives(a.alternatives),
            _text((a.model_version, a.engine)),
        )
        for a in records
    )


def health_rows(records: Sequence[HealthRecord]) -> bytes:
    """COPY data for ``camera_health (HEALTH_COLUMNS)``."""
    return _copy_data(
        (
            *_head(11, h.time, h.origin),
            _text((h.camera_id, h.state)),
            _FLOAT4.pack(4, h.fps),
            NULL if h.last_frame_time is None else _INT8.pack(8, timestamptz(h.last_frame_time)),
            _INT8.pack(8, h.reconnects),
            _INT8.pack(8, h.decode_errors),
            _text_field(h.message),  # free text (up to 1000 characters): not worth keeping
        )
        for h in records
    )


def _jsonb(value: object) -> bytes:
    data = JSONB_VERSION + json.dumps(value).encode()
    return struct.pack(">i", len(data)) + data


def snapshot_rows(snapshots: Sequence[Snapshot], written_at: float) -> bytes:
    """COPY data for ``state_snapshots (SNAPSHOT_COLUMNS)``, all written at ``written_at``."""
    written = _INT8.pack(8, timestamptz(written_at))
    return _copy_data(
        (
            _ROW_START.pack(6, 8, timestamptz(s.time)),
            _text((s.facility_id, s.flow)),
            written,
            _INT4.pack(4, len(s.locomotives)),
            _jsonb([loco.to_json() for loco in s.locomotives]),
        )
        for s in snapshots
    )
