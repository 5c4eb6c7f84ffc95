"""What the hand-packed binary COPY writes is what PostgreSQL gives back, field by field."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import psycopg
import pytest

from cloud.fse import Event, LocoState, Snapshot, Tick
from cloud.records import (
    AttributeRecord,
    Blind,
    HealthRecord,
    Interval,
    Origin,
    PositionRecord,
    Record,
)
from cloud.store import Store, pack_records

pytestmark = pytest.mark.db

T0 = 1_793_600_000.123456  # microseconds survive; the stored time is exact to them


def at(t: float) -> datetime:
    return datetime.fromtimestamp(t, UTC)


@pytest.fixture
def store(cloud_db: str) -> Iterator[Store]:
    s = Store(cloud_db, max_connections=1)
    s.open()
    yield s
    s.close()


def positions() -> list[PositionRecord]:
    """No interval, one, two and three: each takes its own packing path.

    Values are exact in float4, so what comes back compares equal."""
    shapes: list[tuple[Interval, ...]] = [
        (),
        (Interval(3.25, 17.5, True, False, 0.875),),
        (Interval(0.0, 4.125, False, True, 0.5), Interval(6.25, 23.5, True, True, 0.96875)),
        tuple(Interval(a, a + 2.0, a > 5, a < 5, a / 8) for a in (1.0, 4.0, 7.0)),
    ]
    # blind spans: none (every gateway before 0.2), one, two
    blinds: list[tuple[Blind, ...]] = [
        (),
        (Blind(0.0, 3.25, True),),
        (Blind(0.0, 1.5, False), Blind(17.5, 23.5, True)),
        (),
    ]
    origin = Origin("twin-depot", "gw-a", 0)
    common = ("prod", "cam-01", "T1", 0.0, 23.5, 0.875)
    return [
        PositionRecord(
            origin._replace(seq=1 + n), T0 + n, *common, shape, "position@2", "cpu", blind
        )
        for n, (shape, blind) in enumerate(zip(shapes, blinds, strict=True))
    ]


def test_every_field_of_every_record_kind_reads_back(store: Store, cloud_db: str) -> None:
    records: list[Record] = [
        *positions(),
        AttributeRecord(
            Origin("twin-depot", "gw-a", 10), T0 + 10, "dev", "cam-02", "plate", "ЧМЭ3-1234",
            0.75, "T1", 12.5, (("ЧМЭ3-1284", 0.125), ("2ТЭ116-0042", 0.0625)), "plate@2", "cpu",
        ),
        AttributeRecord(
            Origin("twin-depot", "gw-a", 11), T0 + 11, "prod", "cam-02", "model", "ТЭМ18",
            0.5, "T2", 0.0, (), "model@1", "tensorrt",
        ),
        HealthRecord(Origin("twin-depot", "gw-a", 12), T0 + 12, "cam-03", "streaming", 2.0,
                     T0 + 11.5, 3, 7, "reconnected after 2 s"),
        HealthRecord(Origin("twin-depot", "gw-a", 13), T0 + 13, "cam-04", "offline", 0.0,
                     None, 0, 0, ""),
    ]  # fmt: skip
    written = store.write_batch("gw-a", "twin-depot", records, [], 13)
    assert (written.stored, written.duplicates) == (len(records), 0)

    with psycopg.connect(cloud_db) as conn:
        stored_positions = conn.execute(
            "SELECT time, facility_id, gateway_id, seq, flow, camera_id, track_id, "
            "covered_start_m, covered_end_m, confidence, interval_start_m, interval_end_m, "
            "start_real, end_real, interval_confidence, model_version, engine, blind_start_m, "
            "blind_end_m, blind_hidden FROM position_estimations ORDER BY seq"
        ).fetchall()
        stored_attributes = conn.execute(
            "SELECT time, gateway_id, seq, flow, camera_id, name, value, confidence, track_id, "
            "position_m, alternatives, alternative_confidence, model_version, engine "
            "FROM attribute_estimations ORDER BY seq"
        ).fetchall()
        stored_health = conn.execute(
            "SELECT time, seq, camera_id, state, fps, last_frame_time, reconnects, "
            "decode_errors, message FROM camera_health ORDER BY seq"
        ).fetchall()

    assert stored_positions == [
        (at(p.time), "twin-depot", "gw-a", p.origin.seq, "prod", "cam-01", "T1", 0.0, 23.5,
         0.875, [i.start_m for i in p.intervals], [i.end_m for i in p.intervals],
         [i.start_real for i in p.intervals], [i.end_real for i in p.intervals],
         [i.confidence for i in p.intervals], "position@2", "cpu",
         [b.start_m for b in p.blind], [b.end_m for b in p.blind], [b.hidden for b in p.blind])
        for p in positions()
    ]  # fmt: skip
    assert stored_attributes == [
        (at(T0 + 10), "gw-a", 10, "dev", "cam-02", "plate", "ЧМЭ3-1234", 0.75, "T1", 12.5,
         ["ЧМЭ3-1284", "2ТЭ116-0042"], [0.125, 0.0625], "plate@2", "cpu"),
        (at(T0 + 11), "gw-a", 11, "prod", "cam-02", "model", "ТЭМ18", 0.5, "T2", 0.0, [], [],
         "model@1", "tensorrt"),
    ]  # fmt: skip
    assert stored_health == [
        (at(T0 + 12), 12, "cam-03", "streaming", 2.0, at(T0 + 11.5), 3, 7,
         "reconnected after 2 s"),
        (at(T0 + 13), 13, "cam-04", "offline", 0.0, None, 0, 0, ""),
    ]  # fmt: skip


def test_replay_gives_back_the_records_the_fse_was_handed(store: Store) -> None:
    """A restarted FSE replays from the database: it must see what ingest handed over."""
    records = positions()
    store.write_batch("gw-a", "twin-depot", records, [], records[-1].origin.seq)
    replayed = store.replay("twin-depot", "prod", since=T0 - 1)
    assert [r.origin for r in replayed] == [r.origin for r in records]
    for back, sent in zip(replayed, records, strict=True):
        assert isinstance(back, PositionRecord)
        assert back.time == pytest.approx(sent.time, abs=1e-6)
        assert [i[2:4] for i in back.intervals] == [i[2:4] for i in sent.intervals]
        assert [i.start_m for i in back.intervals] == pytest.approx(
            [i.start_m for i in sent.intervals], abs=1e-5
        )
        assert back.blind == sent.blind  # the FSE fuses a replay as it fused live records


def test_a_batch_packed_before_the_mark_moved_stores_only_what_is_new(
    store: Store, cloud_db: str
) -> None:
    """Ingest packs a batch's rows while checking it. If another stream of the gateway (a
    reconnect racing the old connection) stored part of it in between, the write must
    store only the envelopes above the mark it reads: nothing doubled, nothing lost."""
    records = positions()  # seqs 1-4
    packed = pack_records(records)
    raced = store.write_batch("gw-a", "twin-depot", records[:2], [], 2, pack_records(records[:2]))
    assert (raced.stored, raced.duplicates) == (2, 0)

    late = store.write_batch("gw-a", "twin-depot", records, [], 4, packed)
    assert (late.stored, late.duplicates, late.previous_seq) == (2, 2, 2)
    again = store.write_batch("gw-a", "twin-depot", records, [], 4, packed)
    assert (again.stored, again.duplicates) == (0, 4)
    with psycopg.connect(cloud_db) as conn:
        seqs = conn.execute("SELECT seq FROM position_estimations ORDER BY seq").fetchall()
    assert seqs == [(1,), (2,), (3,), (4,)]
    assert store.last_seq("gw-a") == 4


def test_snapshots_and_history_read_back(store: Store, cloud_db: str) -> None:
    """The FSE's state goes in as binary COPY too: every column, NULLs included, and the
    snapshot's JSON is what the restart and the live view read; open stays, spans and
    visits are written with the snapshot that opened them."""
    first = LocoState(
        id="fse-7", track="T1", tail_m=3.25, head_m=20.5, station="T1-S2", series="ТЭМ18",
        series_confidence=0.875, plate="ТЭМ18-0421", plate_confidence=0.75, stale=False,
        since=T0 - 60, speed_mps=0.0, attributes={"livery": {"value": "blue", "confidence": 0.5}},
    )  # fmt: skip
    second = LocoState(
        id="fse-8", track="T2", tail_m=0.0, head_m=6.5, station=None, series=None,
        series_confidence=None, plate=None, plate_confidence=None, stale=True, since=T0 - 5,
        speed_mps=1.25,
    )  # fmt: skip
    arrived = Event(T0, "arrived", "fse-8", "T2", 0.0, 6.5, None)
    ticks = [
        Tick(Snapshot(T0 - 1, "twin-depot", "prod", (first,)), []),
        Tick(Snapshot(T0, "twin-depot", "prod", (first, second)), [arrived]),
        Tick(Snapshot(T0 + 1, "twin-depot", "dev", ()), []),
    ]
    store.write_ticks(ticks)

    assert store.latest_snapshot("twin-depot", "prod") == ticks[1].snapshot
    assert store.latest_snapshot("twin-depot", "dev") == ticks[2].snapshot
    with psycopg.connect(cloud_db) as conn:
        snapshots = conn.execute(
            "SELECT time, flow, locomotive_count, written_at > now() - interval '1 minute' "
            "FROM state_snapshots ORDER BY time"
        ).fetchall()
        spans = conn.execute(
            "SELECT from_time, to_time, facility_id, flow, loco_id, track_id, tail_m, head_m, "
            "station_id, series, plate, stale FROM locomotive_spans ORDER BY from_time, loco_id"
        ).fetchall()
        stays = conn.execute(
            "SELECT loco_id, station_id, from_time, to_time, series, plate FROM station_stays"
        ).fetchall()
        visits = conn.execute("SELECT loco_id, arrived_at, departed_at FROM visits").fetchall()
        events = conn.execute("SELECT time, loco_id, kind FROM locomotive_events").fetchall()
    assert snapshots == [
        (at(T0 - 1), "prod", 1, True), (at(T0), "prod", 2, True), (at(T0 + 1), "dev", 0, True)
    ]  # fmt: skip
    row = ("twin-depot", "prod", "fse-7", "T1", 3.25, 20.5, "T1-S2", "ТЭМ18", "ТЭМ18-0421", False)
    assert spans == [  # open: no end yet
        (at(T0 - 1), None, *row),
        (at(T0), None, "twin-depot", "prod", "fse-8", "T2", 0.0, 6.5, None, None, None, True),
    ]
    # an open stay runs to the newest snapshot of its flow
    assert stays == [("fse-7", "T1-S2", at(T0 - 1), at(T0), "ТЭМ18", "ТЭМ18-0421")]
    assert visits == [("fse-8", at(T0), None)]
    assert events == [(at(T0), "fse-8", "arrived")]
