"""History kept as facts answers as the per-second rows did: written live, and migrated.

The same twenty minutes of the twin's day (FSE ticks over simulated estimations, across an
hour boundary) go into two databases:
- **live**: today's schema, through ``Store.write_ticks`` in uneven batches, with a
  restart half way (a new ``Store`` reads the open facts back);
- **old**: the schema before migration 0009, written the way the code before it wrote
  (a snapshot and a row per locomotive each second); its views are read, then it is
  migrated.
The analysts' views must give the old answers in both.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from typing import Any

import psycopg
import pytest

from cloud.copy_rows import SNAPSHOT_COLUMNS, snapshot_rows
from cloud.fse import Tick
from cloud.fse.offline import fuse_offline
from cloud.reports import REPORTS, ReportRange, report_rows
from cloud.schema import migrate
from cloud.store import Store, _copy_events, at
from locowatch.db.scratch import scratch_database
from sim.estimations import EstimatorNoise, twin_estimations
from sim.scenario import ScenarioSpec, recent_start
from sim.twin import Twin, TwinSpec

pytestmark = pytest.mark.db

DAY_S = 1200.0  # the twin's whole (compressed) day, across an hour boundary at 600 s
BATCHES = (1, 7, 200, 1, 50)  # ticks per write, repeated


@pytest.fixture(scope="module")
def twin_ticks() -> list[Tick]:
    start = recent_start(span_s=DAY_S) - timedelta(minutes=10)
    twin = Twin(TwinSpec(scenario=ScenarioSpec(duration_s=DAY_S, start_time=start)))
    envelopes = twin_estimations(
        twin, flows=("prod",), start_s=0.0, end_s=DAY_S, noise=EstimatorNoise()
    )
    return list(fuse_offline(twin.facility, "prod", envelopes))


@pytest.fixture(scope="module")
def live_db(db_server_url: str, twin_ticks: list[Tick]) -> Iterator[str]:
    with scratch_database(db_server_url, "locowatch_history_live") as url:
        migrate(url)
        half = len(twin_ticks) // 2
        for part in (twin_ticks[:half], twin_ticks[half:]):  # a restart between the halves
            store = Store(url, max_connections=1)
            store.open()
            try:
                for batch in _batches(part):
                    store.write_ticks(batch)
            finally:
                store.close()
        yield url


@pytest.fixture(scope="module")
def old_db(db_server_url: str, twin_ticks: list[Tick]) -> Iterator[tuple[str, dict[str, Any]]]:
    """A database written by the code before 0009, its views' answers, then migrated."""
    with scratch_database(db_server_url, "locowatch_history_old") as url:
        migrate(url, only=lambda m: m.id < "0009")  # the schema before history
        with psycopg.connect(url) as conn, conn.cursor() as cur:
            with cur.copy(
                f"COPY state_snapshots ({SNAPSHOT_COLUMNS}) FROM STDIN (FORMAT BINARY)"
            ) as copy:
                copy.write(
                    snapshot_rows([t.snapshot for t in twin_ticks], twin_ticks[-1].snapshot.time)
                )
            _copy_events(cur, twin_ticks)
            # the old writer's row per locomotive per snapshot
            cur.execute(
                "INSERT INTO locomotive_states SELECT s.time, s.facility_id, s.flow, l->>'id', "
                "l->>'track', (l->>'tail_m')::real, (l->>'head_m')::real, l->>'station', "
                "l->>'series', l->>'plate', (l->>'stale')::boolean "
                "FROM state_snapshots s CROSS JOIN LATERAL jsonb_array_elements(s.locomotives) l"
            )
        before = answers(url)
        migrate(url)
        yield url, before


def _batches(ticks: list[Tick]) -> Iterator[list[Tick]]:
    i = n = 0
    while i < len(ticks):
        size = BATCHES[n % len(BATCHES)]
        yield ticks[i : i + size]
        i, n = i + size, n + 1


VIEW_QUERIES = {
    "station_stays": "SELECT facility_id, flow, loco_id, station_id, track_id, from_time, "
    "to_time, dwell, series, plate FROM station_stays ORDER BY loco_id, from_time",
    "visits": "SELECT facility_id, flow, loco_id, arrival_track, arrived_at, departed_at, dwell, "
    "series, plate FROM visits ORDER BY loco_id",
    "model_mix_daily": "SELECT * FROM model_mix_daily ORDER BY day, series",
    # closed hours are rolled up; the one in progress is read from its snapshots
    "station_occupancy_hourly": "SELECT facility_id, flow, bucket, station_id, locomotives, "
    "occupied_fraction FROM station_occupancy_hourly ORDER BY bucket, station_id",
    "locomotive_counts_hourly": "SELECT facility_id, flow, bucket, avg_count, max_count, "
    "min_count, snapshots FROM locomotive_counts_hourly ORDER BY bucket",
}


def answers(url: str) -> dict[str, Any]:
    with psycopg.connect(url) as conn:
        return {name: conn.execute(query).fetchall() for name, query in VIEW_QUERIES.items()}


def test_the_views_answer_as_the_per_second_rows_did(
    live_db: str, old_db: tuple[str, dict[str, Any]]
) -> None:
    _, before = old_db
    after = answers(live_db)
    assert len(before["station_stays"]) >= 20 and len(before["visits"]) >= 10
    assert any(row[5] is not None for row in before["visits"])  # some departed
    assert len(before["locomotive_counts_hourly"]) == 2  # 01:50-02:00 closed, then 02:00-02:10
    for name in VIEW_QUERIES:
        assert after[name] == before[name], name


def test_migration_keeps_the_history_of_a_database_written_before(
    live_db: str, old_db: tuple[str, dict[str, Any]]
) -> None:
    migrated_url, _ = old_db
    assert answers(migrated_url) == answers(live_db)
    with psycopg.connect(migrated_url) as conn:
        tables = {r[0] for r in conn.execute("SELECT tablename FROM pg_tables").fetchall()}
        spans = conn.execute("SELECT count(*) FROM locomotive_spans").fetchone()
    assert "locomotive_states" not in tables
    with psycopg.connect(live_db) as conn:
        live_spans = conn.execute("SELECT count(*) FROM locomotive_spans").fetchone()
    # the live writer restarted half way: a span open then restarts its mean, and may split
    assert spans and live_spans and abs(spans[0] - live_spans[0]) <= 10


def test_every_report_reads_the_same_from_live_and_migrated_history(
    live_db: str, old_db: tuple[str, dict[str, Any]], twin_ticks: list[Tick]
) -> None:
    start = at(twin_ticks[0].snapshot.time - twin_ticks[0].snapshot.time % 3600)
    end = at(twin_ticks[-1].snapshot.time + 3600)
    for bucket in ("1 hour", "1 day"):
        where = ReportRange("twin-depot", "prod", start, end, bucket=bucket, tz="Europe/Moscow")
        for name in REPORTS:
            live = _report(live_db, name, where)
            assert live == _report(old_db[0], name, where), name
            assert live[1], f"{name} has rows"


def _report(url: str, name: str, where: ReportRange) -> tuple[list[str], list[tuple[Any, ...]]]:
    with psycopg.connect(url) as conn:
        return report_rows(conn, name, where)


def test_standing_still_is_one_span(live_db: str) -> None:
    """History grows with what happens: a locomotive standing still (from the FSE's
    'stopped' to its next 'moved' or 'departed') is one span, not a row a second."""
    with psycopg.connect(live_db) as conn:
        rests = conn.execute(REST_SPANS).fetchall()
    assert len(rests) >= 10
    whole = [r for r in rests if r[2] == 1 and r[3] >= Decimal("0.9") * r[1]]
    assert len(whole) >= 0.8 * len(rests), rests
    assert max(spans for _, _, spans, _ in rests) <= 3, rests


# Rests of at least two minutes, each with its spans and the most of it one covers. (The FSE says
# 'moved' once a locomotive is a metre or so away: spans of the start of a move fall
# inside a rest.)
REST_SPANS = """
WITH motion AS (
    SELECT loco_id, kind, time,
           lead(time) OVER (PARTITION BY loco_id ORDER BY time) AS until
    FROM locomotive_events WHERE kind IN ('arrived', 'moved', 'stopped', 'departed')
), rests AS (
    SELECT loco_id, time AS rest_from, until AS rest_to FROM motion
    WHERE kind = 'stopped' AND until - time >= INTERVAL '2 minutes'
)
SELECT r.loco_id, extract(epoch FROM r.rest_to - r.rest_from), count(*),
       extract(epoch FROM max(least(s.to_time, r.rest_to) - greatest(s.from_time, r.rest_from)))
FROM rests r JOIN locomotive_spans s ON s.loco_id = r.loco_id
    AND s.from_time < r.rest_to AND s.to_time > r.rest_from
GROUP BY r.loco_id, r.rest_from, r.rest_to
"""
