"""Durable writes to TimescaleDB: raw estimations with the dedup record, and facility state.

Raw estimations go in with binary COPY, one transaction per gateway batch, together
with the gateway's sequence high-water mark (``gateway_progress``). The mark is read
``FOR UPDATE`` inside that transaction, so two ingest processes that both hold a
stream of one gateway (a reconnect racing an old connection) still cannot store an
envelope twice: whatever commits second filters against the first's mark.

The code is synchronous psycopg (its C COPY path is fast) and runs in worker threads
of the asyncio ingest server; the pool bounds how many writes run at once.
"""

from __future__ import annotations

import json
import logging
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import psycopg
from psycopg_pool import ConnectionPool

from cloud.copy_rows import (
    ATTRIBUTE_COLUMNS,
    HEALTH_COLUMNS,
    POSITION_COLUMNS,
    SNAPSHOT_COLUMNS,
    attribute_rows,
    health_rows,
    position_rows,
    snapshot_rows,
)
from cloud.fse import Event, LocoState, Snapshot, Tick
from cloud.history import (
    FlowChanges,
    FlowHistory,
    History,
    OpenSpan,
    OpenStay,
    OpenVisit,
)
from cloud.plant.payloads import event_message
from cloud.records import (
    AttributeRecord,
    Blind,
    HealthRecord,
    Interval,
    Origin,
    PositionRecord,
    Record,
    Rejected,
)

log = logging.getLogger(__name__)

# The newest snapshot of a facility and flow: what a restarted FSE resumes from and what
# the dashboard's live map shows.
LATEST_SNAPSHOT_SQL = (
    "SELECT time, locomotives FROM state_snapshots WHERE facility_id = %s AND flow = %s "
    "ORDER BY time DESC LIMIT 1"
)
# The newest health row of each camera in ``ids`` since ``since`` (one index probe each),
# in the order given; a camera with none has NULLs. The dashboard and the plant service.
CAMERA_REPORTS_SQL = (
    "SELECT c.id, h.time, h.state, h.fps, h.last_frame_time, h.reconnects, "
    "       h.decode_errors, h.message "
    "FROM unnest(%(ids)s::text[]) WITH ORDINALITY AS c(id, n) "
    "LEFT JOIN LATERAL ("
    "    SELECT * FROM camera_health WHERE facility_id = %(facility)s "
    "    AND camera_id = c.id AND time >= %(since)s ORDER BY time DESC LIMIT 1"
    ") h ON true ORDER BY c.n"
)
# Every gateway that ever sent for a facility, with when ingest last stored a batch of it.
GATEWAY_REPORTS_SQL = (
    "SELECT gateway_id, updated_at FROM gateway_progress WHERE facility_id = %s ORDER BY gateway_id"
)


@dataclass(frozen=True)
class BatchWrite:
    """What one batch write did: rows stored, and envelopes found already stored."""

    stored: int
    duplicates: int
    previous_seq: int  # the mark before this batch: records above it are the new ones


DAY_S = 86_400.0


def at(t: float) -> datetime:
    return datetime.fromtimestamp(t, UTC)


class Store:
    def __init__(self, url: str, max_connections: int = 4, timeout_s: float = 10.0) -> None:
        self.history = History()  # open stays, visits and spans of the flows written here
        self.pool = ConnectionPool(
            url,
            min_size=1,
            max_size=max_connections,
            timeout=timeout_s,
            open=False,
            name="locowatch-store",
            # A server restart leaves dead connections in the pool: check before lending.
            check=ConnectionPool.check_connection,
        )

    def open(self, wait: bool = True, timeout_s: float = 30.0) -> None:
        self.pool.open(wait=wait, timeout=timeout_s)

    def close(self) -> None:
        self.pool.close()

    # -- raw estimations -----------------------------------------------------------------

    def last_seq(self, gateway_id: str) -> int:
        with self.pool.connection() as conn:
            row = conn.execute(
                "SELECT last_seq FROM gateway_progress WHERE gateway_id = %s", (gateway_id,)
            ).fetchone()
        return int(row[0]) if row else 0

    def write_batch(
        self,
        gateway_id: str,
        facility_id: str,
        records: Sequence[Record],
        rejected: Sequence[Rejected],
        batch_last_seq: int,
        packed: PackedRows | None = None,
        received: float | None = None,
    ) -> BatchWrite:
        """Store a batch and advance the gateway's mark to ``batch_last_seq``, atomically.

        ``packed``: the records already packed (``pack_records``); used when none of them
        is at or below the mark, which is always but after a reconnect race. ``received``:
        when ingest got the batch (POSIX seconds, default now), the rejections' time."""
        received_at = at(time.time() if received is None else received)
        with self.pool.connection() as conn, conn.transaction():
            conn.execute(
                "INSERT INTO gateway_progress (gateway_id, facility_id, last_seq) "
                "VALUES (%s, %s, 0) ON CONFLICT (gateway_id) DO NOTHING",
                (gateway_id, facility_id),
            )
            row = conn.execute(
                "SELECT last_seq FROM gateway_progress WHERE gateway_id = %s FOR UPDATE",
                (gateway_id,),
            ).fetchone()
            mark = int(row[0]) if row else 0
            fresh = [r for r in records if r.origin.seq > mark]
            fresh_rejected = [r for r in rejected if r.origin.seq > mark]
            with conn.cursor() as cur:
                if packed is not None and packed.first_seq > mark:
                    _copy_packed(cur, packed)
                else:
                    _copy_records(cur, fresh)
                if fresh_rejected:
                    cur.executemany(
                        "INSERT INTO ingest_rejections (time, facility_id, gateway_id, seq, "
                        "reason, detail) VALUES (%s, %s, %s, %s, %s, %s)",
                        [
                            (received_at, r.origin.facility_id, r.origin.gateway_id,
                             r.origin.seq, r.reason, r.detail)
                            for r in fresh_rejected
                        ],
                    )  # fmt: skip
            new_mark = max(mark, batch_last_seq)
            conn.execute(
                "UPDATE gateway_progress SET last_seq = %s, updated_at = now() "
                "WHERE gateway_id = %s",
                (new_mark, gateway_id),
            )
        duplicates = len(records) - len(fresh) + len(rejected) - len(fresh_rejected)
        return BatchWrite(len(fresh), duplicates, previous_seq=mark)

    # -- facility state ------------------------------------------------------------------

    def write_ticks(self, ticks: Sequence[Tick]) -> None:
        """Snapshots, events and the history they make (cloud/history.py), in one transaction."""
        if not ticks:
            return
        snapshots = [tick.snapshot for tick in ticks]
        with self.pool.connection() as conn, conn.transaction(), conn.cursor() as cur:
            columns = SNAPSHOT_COLUMNS
            with cur.copy(f"COPY state_snapshots ({columns}) FROM STDIN (FORMAT BINARY)") as copy:
                copy.write(snapshot_rows(snapshots, time.time()))
            _copy_events(cur, ticks)
            changes = self.history.plan(ticks, lambda f, flow: open_history(cur, f, flow))
            write_history(cur, changes)
        self.history.adopt(changes)

    # -- restart -------------------------------------------------------------------------

    def latest_snapshot(self, facility_id: str, flow: str) -> Snapshot | None:
        with self.pool.connection() as conn:
            row = conn.execute(LATEST_SNAPSHOT_SQL, (facility_id, flow)).fetchone()
        if row is None:
            return None
        locos = tuple(LocoState.from_json(item) for item in row[1])
        return Snapshot(row[0].timestamp(), facility_id, flow, locos)

    def next_loco_number(self, facility_id: str, flow: str) -> int:
        """One past the highest ``fse-N`` id this facility and flow ever used."""
        with self.pool.connection() as conn:
            row = conn.execute(
                "SELECT max(substring(loco_id FROM '^fse-([0-9]+)$')::bigint) "
                "FROM locomotive_events WHERE facility_id = %s AND flow = %s",
                (facility_id, flow),
            ).fetchone()
        return int(row[0]) + 1 if row and row[0] is not None else 1

    def replay(self, facility_id: str, flow: str, since: float) -> list[Record]:
        """Stored estimations of one flow since ``since``, to bring a restored FSE up to date."""
        with self.pool.connection() as conn:
            positions = conn.execute(
                f"SELECT {POSITION_COLUMNS} FROM position_estimations WHERE facility_id = %s "
                "AND flow = %s AND time > %s ORDER BY time",
                (facility_id, flow, at(since)),
            ).fetchall()
            attributes = conn.execute(
                f"SELECT {ATTRIBUTE_COLUMNS} FROM attribute_estimations WHERE facility_id = %s "
                "AND flow = %s AND time > %s ORDER BY time",
                (facility_id, flow, at(since)),
            ).fetchall()
        records: list[Record] = [_position_from_row(r) for r in positions]
        records += [_attribute_from_row(r) for r in attributes]
        return sorted(records, key=lambda r: r.time)

    def drop_old_chunks(
        self, raw_days: int, snapshot_days: int, state_days: int, now: float | None = None
    ) -> int:
        """Drop the chunks wholly older than the retention ages, counted back from ``now``
        (POSIX seconds; default this process's clock, the one that checks capture times)."""
        now = time.time() if now is None else now
        with self.pool.connection() as conn:
            row = conn.execute(
                "SELECT locowatch_drop_old_chunks(%s, %s, %s)",
                (at(now - raw_days * DAY_S), at(now - snapshot_days * DAY_S),
                 at(now - state_days * DAY_S)),
            ).fetchone()  # fmt: skip
            # Messages no plant service took (none runs, or a sink removed from its config)
            # go with the raw data; a running service deletes what it delivered itself.
            stale = conn.execute(
                "DELETE FROM outbox WHERE created_at < %s", (at(now - raw_days * DAY_S),)
            ).rowcount
        if stale:
            log.warning("outbox: %d messages older than %d days never delivered, dropped",
                        stale, raw_days)  # fmt: skip
        return int(row[0]) if row else 0


@dataclass(frozen=True)
class PackedRows:
    """Records as COPY data, one ``(table, columns, data)`` per table that has rows.

    Ingest packs a batch while the previous one is being written, so the write itself
    only streams bytes. ``first_seq`` is the lowest sequence number packed: when the
    write finds the gateway's mark below it, every packed row is new."""

    tables: list[tuple[str, str, bytes]]
    first_seq: int


def pack_records(records: Sequence[Record]) -> PackedRows:
    positions = [r for r in records if type(r) is PositionRecord]
    attributes = [r for r in records if type(r) is AttributeRecord]
    health = [r for r in records if type(r) is HealthRecord]
    tables: list[tuple[str, str, Callable[[Any], bytes], list[Any]]] = [
        ("position_estimations", POSITION_COLUMNS, position_rows, positions),
        ("attribute_estimations", ATTRIBUTE_COLUMNS, attribute_rows, attributes),
        ("camera_health", HEALTH_COLUMNS, health_rows, health),
    ]
    first = min((r.origin.seq for r in records), default=0)
    return PackedRows([(t, c, encode(rows)) for t, c, encode, rows in tables if rows], first)


def _copy_records(cur: psycopg.Cursor[Any], records: Sequence[Record]) -> None:
    _copy_packed(cur, pack_records(records))


def _copy_packed(cur: psycopg.Cursor[Any], packed: PackedRows) -> None:
    for table, columns, data in packed.tables:
        with cur.copy(f"COPY {table} ({columns}) FROM STDIN (FORMAT BINARY)") as copy:
            copy.write(data)


def _position_from_row(row: tuple[Any, ...]) -> PositionRecord:
    (time, facility, gateway, seq, flow, camera, track, c0, c1, conf, starts, ends, sr, er, ic,
     version, engine, blind_starts, blind_ends, hidden) = row  # fmt: skip
    intervals = tuple(
        Interval(s, e, a, b, c) for s, e, a, b, c in zip(starts, ends, sr, er, ic, strict=True)
    )
    blind = tuple(Blind(*b) for b in zip(blind_starts, blind_ends, hidden, strict=True))
    return PositionRecord(
        Origin(facility, gateway, seq), time.timestamp(), flow, camera, track, c0, c1, conf,
        intervals, version, engine, blind,
    )  # fmt: skip


def _attribute_from_row(row: tuple[Any, ...]) -> AttributeRecord:
    (time, facility, gateway, seq, flow, camera, name, value, conf, track, position, alts,
     alt_conf, version, engine) = row  # fmt: skip
    return AttributeRecord(
        Origin(facility, gateway, seq), time.timestamp(), flow, camera, name, value, conf, track,
        position, tuple(zip(alts, alt_conf, strict=True)), version, engine,
    )  # fmt: skip


# -- facility state: events and history -------------------------------------------------


def _copy_events(cur: psycopg.Cursor[Any], ticks: Sequence[Tick]) -> None:
    """Events, and the plant systems' copy of each in the outbox (cloud/plant)."""
    with cur.copy(
        "COPY locomotive_events (time, facility_id, flow, loco_id, kind, track_id, "
        "station_id, tail_m, head_m, series, plate, detail) FROM STDIN"
    ) as copy:
        for tick in ticks:
            s = tick.snapshot
            for e in tick.events:
                copy.write_row(
                    (at(e.time), s.facility_id, s.flow, e.loco_id, e.kind, e.track_id,
                     e.station_id, e.tail_m, e.head_m, e.series, e.plate, json.dumps(e.detail))
                )  # fmt: skip
    with cur.copy("COPY outbox (facility_id, flow, kind, key, payload) FROM STDIN") as copy:
        for tick in ticks:
            s = tick.snapshot
            seen: Counter[tuple[str, str, float]] = Counter()
            for e in tick.events:
                ordinal = seen[(e.loco_id, e.kind, e.time)]
                seen[(e.loco_id, e.kind, e.time)] += 1
                message = event_message(
                    s.facility_id, s.flow, time=e.time, kind=e.kind, loco_id=e.loco_id,
                    track=e.track_id, tail_m=e.tail_m, head_m=e.head_m,
                    station=e.station_id, series=e.series, plate=e.plate,
                    detail=e.detail, ordinal=ordinal,
                )  # fmt: skip
                copy.write_row(
                    (s.facility_id, s.flow, "event", message["key"], json.dumps(message))
                )


UPSERT_STAY = (
    "INSERT INTO locomotive_stays (facility_id, flow, loco_id, station_id, track_id, "
    "from_time, to_time, series, plate) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) "
    "ON CONFLICT (facility_id, flow, loco_id, from_time) DO UPDATE SET "
    "to_time = EXCLUDED.to_time, series = EXCLUDED.series, plate = EXCLUDED.plate"
)
UPSERT_SPAN = (
    "INSERT INTO locomotive_spans (facility_id, flow, loco_id, track_id, tail_m, head_m, "
    "station_id, series, plate, stale, from_time, to_time) "
    "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) "
    "ON CONFLICT (facility_id, flow, loco_id, from_time) DO UPDATE SET "
    "to_time = EXCLUDED.to_time, tail_m = EXCLUDED.tail_m, head_m = EXCLUDED.head_m"
)
UPSERT_VISIT = (
    "INSERT INTO locomotive_visits (facility_id, flow, loco_id, arrival_track, arrived_at, "
    "departed_at, series, plate) VALUES (%s, %s, %s, %s, %s, %s, %s, %s) "
    "ON CONFLICT (facility_id, flow, loco_id, arrived_at) DO UPDATE SET "
    "departed_at = EXCLUDED.departed_at, series = EXCLUDED.series, plate = EXCLUDED.plate"
)
UPSERT_PROGRESS = (
    "INSERT INTO state_progress (facility_id, flow, time, rolled_up_to) VALUES (%s, %s, %s, %s) "
    "ON CONFLICT (facility_id, flow) DO UPDATE SET time = EXCLUDED.time, "
    "rolled_up_to = EXCLUDED.rolled_up_to"
)
# Closed hours of one facility and flow, from its snapshots (the functions of migrations
# 0009 and 0010, which the views also use for the hour in progress). Idempotent.
ROLL_UP_COUNTS = """
INSERT INTO count_hours_closed
SELECT %(facility)s, %(flow)s, h.*
FROM locowatch_count_hours(%(facility)s, %(flow)s, %(from)s, %(to)s) h
ON CONFLICT (facility_id, flow, hour) DO UPDATE SET snapshots = EXCLUDED.snapshots,
    count_sum = EXCLUDED.count_sum, min_count = EXCLUDED.min_count,
    max_count = EXCLUDED.max_count
"""
ROLL_UP_STATIONS = """
INSERT INTO station_hours_closed
SELECT %(facility)s, %(flow)s, h.*
FROM locowatch_station_hours(%(facility)s, %(flow)s, %(from)s, %(to)s) h
ON CONFLICT (facility_id, flow, hour, station_id) DO UPDATE SET
    occupied_snapshots = EXCLUDED.occupied_snapshots, loco_ids = EXCLUDED.loco_ids,
    plates = EXCLUDED.plates, snapshots = EXCLUDED.snapshots
"""


def write_history(
    cur: psycopg.Cursor[Any], changes: Sequence[FlowChanges], roll_up: bool = True
) -> None:
    """The rows ``History.plan`` made, the progress, and (``roll_up``) the hours closed."""
    for c in changes:
        key = (c.facility_id, c.flow)
        stays = [(*key, r.loco_id, r.station_id, r.track_id, at(r.from_time),
                  _at_or_none(r.to_time), r.series, r.plate) for r in c.stays.values()]  # fmt: skip
        spans = [(*key, r.loco_id, r.track_id, r.tail_m, r.head_m, r.station_id, r.series,
                  r.plate, r.stale, at(r.from_time), _at_or_none(r.to_time))
                 for r in c.spans.values()]  # fmt: skip
        visits = [(*key, r.loco_id, r.arrival_track, at(r.arrived_at),
                   _at_or_none(r.departed_at), r.series, r.plate)
                  for r in c.visits.values()]  # fmt: skip
        for statement, rows in ((UPSERT_STAY, stays), (UPSERT_SPAN, spans), (UPSERT_VISIT, visits)):
            if rows:
                cur.executemany(statement, rows)
        h = c.history
        if h.time is not None and h.rolled_up_to is not None:
            cur.execute(UPSERT_PROGRESS, (*key, at(h.time), at(h.rolled_up_to)))
        if roll_up and c.roll_up is not None:
            hours = {"facility": c.facility_id, "flow": c.flow,
                     "from": at(c.roll_up[0]), "to": at(c.roll_up[1])}  # fmt: skip
            cur.execute(ROLL_UP_COUNTS, hours)
            cur.execute(ROLL_UP_STATIONS, hours)


def open_history(cur: psycopg.Cursor[Any], facility_id: str, flow: str) -> FlowHistory:
    """The open facts of a facility and flow as stored: where a restarted writer goes on.
    Open facts held until the newest snapshot stored (else they would be closed)."""
    key = (facility_id, flow)
    row = cur.execute(
        "SELECT time, rolled_up_to FROM state_progress WHERE facility_id = %s AND flow = %s", key
    ).fetchone()
    if row is None:
        return FlowHistory()
    last = row[0].timestamp()
    history = FlowHistory(time=last, rolled_up_to=row[1].timestamp())
    for loco, station, track, start, series, plate in cur.execute(
        "SELECT loco_id, station_id, track_id, from_time, series, plate FROM locomotive_stays "
        "WHERE facility_id = %s AND flow = %s AND to_time IS NULL", key
    ).fetchall():  # fmt: skip
        history.stays[loco] = OpenStay(loco, station, track, start.timestamp(), last, series, plate)
    for loco, track, tail, head, station, series, plate, stale, start in cur.execute(
        "SELECT loco_id, track_id, tail_m, head_m, station_id, series, plate, stale, from_time "
        "FROM locomotive_spans WHERE facility_id = %s AND flow = %s AND to_time IS NULL", key
    ).fetchall():  # fmt: skip
        history.spans[loco] = OpenSpan(
            loco, track, station, series, plate, stale, start.timestamp(), last, tail, head,
            tail, head, 1,
        )  # fmt: skip
    for loco, track, arrived, series, plate in cur.execute(
        "SELECT loco_id, arrival_track, arrived_at, series, plate FROM locomotive_visits "
        "WHERE facility_id = %s AND flow = %s AND departed_at IS NULL", key
    ).fetchall():  # fmt: skip
        history.visits[loco] = OpenVisit(loco, track, arrived.timestamp(), series, plate)
    return history


def _at_or_none(t: float | None) -> datetime | None:
    return None if t is None else at(t)


CONVERT_BATCH = 3600  # snapshots per batch when history is rebuilt from stored state


def convert_history(conn: psycopg.Connection[Any]) -> None:
    """Rebuild stays, visits, spans and the progress from stored snapshots and events
    (migration 0009: a database written before history was kept as facts). The hours are
    not rolled up here: the migration does that with the SQL of its own schema."""
    history = History()
    with conn.cursor() as cur:
        flows = cur.execute(
            "SELECT DISTINCT facility_id, flow FROM state_snapshots ORDER BY 1, 2"
        ).fetchall()
    for facility_id, flow in flows:
        converted = 0
        for ticks in _stored_ticks(conn, facility_id, flow):
            changes = history.plan(ticks, lambda f, fl: FlowHistory())
            with conn.cursor() as cur:
                write_history(cur, changes, roll_up=False)
            history.adopt(changes)
            converted += len(ticks)
        log.info("history of %s flow %s: %d snapshots converted", facility_id, flow, converted)


def _stored_ticks(
    conn: psycopg.Connection[Any], facility_id: str, flow: str
) -> Iterator[list[Tick]]:
    """Stored snapshots with their events, in time order and in batches."""
    key = (facility_id, flow)
    with conn.cursor() as cur:
        events = deque(
            Event(t.timestamp(), kind, loco, track, tail, head, station, series, plate, detail)
            for t, kind, loco, track, tail, head, station, series, plate, detail in cur.execute(
                "SELECT time, kind, loco_id, track_id, tail_m, head_m, station_id, series, plate, "
                "detail FROM locomotive_events WHERE facility_id = %s AND flow = %s ORDER BY time",
                key,
            )
        )
    batch: list[Tick] = []
    with conn.cursor(name="locowatch_convert_history") as snapshots:
        snapshots.execute(
            "SELECT time, locomotives FROM state_snapshots WHERE facility_id = %s AND flow = %s "
            "ORDER BY time",
            key,
        )
        for t, locomotives in snapshots:
            time_s = t.timestamp()
            mine = []
            while events and events[0].time <= time_s:
                mine.append(events.popleft())
            locos = tuple(LocoState.from_json(item) for item in locomotives)
            batch.append(Tick(Snapshot(time_s, facility_id, flow, locos), mine))
            if len(batch) > CONVERT_BATCH:  # the newest stays for the events after it
                yield batch[:-1]
                batch = batch[-1:]
    if batch:
        batch[-1].events.extend(events)
        yield batch
