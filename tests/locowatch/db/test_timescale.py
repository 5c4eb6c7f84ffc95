"""The test database is a real TimescaleDB: extension loaded, hypertables, time_bucket."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg
import pytest

pytestmark = pytest.mark.db


def test_timescaledb_is_preloaded_with_telemetry_off(test_db_url: str) -> None:
    with psycopg.connect(test_db_url) as conn:
        version = conn.execute(
            "SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'"
        ).fetchone()
        preload = conn.execute("SHOW shared_preload_libraries").fetchone()
        telemetry = conn.execute("SHOW timescaledb.telemetry_level").fetchone()
    assert version is not None and version[0].startswith("2.")
    assert preload is not None and "timescaledb" in preload[0]
    assert telemetry == ("off",)


def test_hypertable_and_time_bucket(test_db_url: str) -> None:
    start = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)
    rows = [(start + timedelta(minutes=10 * i), "T1", float(i)) for i in range(12)]  # 2 hours
    with psycopg.connect(test_db_url) as conn:
        conn.execute(
            "CREATE TABLE occupancy (time timestamptz NOT NULL, track text, head_m float8)"
        )
        created = conn.execute(
            "SELECT created FROM create_hypertable('occupancy', by_range('time', INTERVAL '1h'))"
        ).fetchone()
        with conn.cursor().copy("COPY occupancy (time, track, head_m) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        buckets = conn.execute(
            "SELECT time_bucket('1 hour', time) AS hour, count(*), max(head_m) "
            "FROM occupancy GROUP BY hour ORDER BY hour"
        ).fetchall()
        chunks = conn.execute("SELECT count(*) FROM show_chunks('occupancy')").fetchone()
    assert created == (True,)
    assert buckets == [(start, 6, 5.0), (start + timedelta(hours=1), 6, 11.0)]
    assert chunks == (2,)  # one chunk per hour of data
