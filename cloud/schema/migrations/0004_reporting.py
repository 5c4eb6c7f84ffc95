"""Reporting views; under the Timescale license the hourly counts are a continuous aggregate.

The Apache-2 build of TimescaleDB (what Debian can build) has no continuous aggregates,
so there ``locomotive_counts_hourly`` is a plain view with the same columns: reports and
the dashboard query one name either way. See docs/reports.md for each view's meaning.
"""

from typing import Any

from yoyo import step

__depends__ = {"0003_retention"}
# CREATE MATERIALIZED VIEW ... WITH (timescaledb.continuous) refuses to run in a transaction.
__transactional__ = False

COUNTS_SELECT = """
    SELECT facility_id, flow, time_bucket(INTERVAL '1 hour', time) AS bucket,
           avg(locomotive_count)::real AS avg_count,
           max(locomotive_count) AS max_count,
           min(locomotive_count) AS min_count,
           count(*) AS snapshots
    FROM state_snapshots
    GROUP BY facility_id, flow, time_bucket(INTERVAL '1 hour', time)
"""

VIEWS = [
    # Per station and hour: the share of snapshots in which the station held a locomotive.
    """
    CREATE VIEW station_occupancy_hourly AS
    WITH snapshots AS (
        SELECT facility_id, flow, time_bucket(INTERVAL '1 hour', time) AS bucket,
               count(*) AS snapshots
        FROM state_snapshots GROUP BY 1, 2, 3
    ), occupied AS (
        SELECT facility_id, flow, time_bucket(INTERVAL '1 hour', time) AS bucket, station_id,
               count(DISTINCT time) AS occupied_snapshots,
               count(DISTINCT loco_id) AS locomotives
        FROM locomotive_states WHERE station_id IS NOT NULL GROUP BY 1, 2, 3, 4
    )
    SELECT o.facility_id, o.flow, o.bucket, o.station_id, o.locomotives,
           (o.occupied_snapshots::double precision / s.snapshots)::real AS occupied_fraction
    FROM occupied o JOIN snapshots s USING (facility_id, flow, bucket)
    """,
    # One row per locomotive visit: arrival, departure (NULL while inside), dwell, identity.
    """
    CREATE VIEW visits AS
    SELECT a.facility_id, a.flow, a.loco_id, a.track_id AS arrival_track,
           a.time AS arrived_at, d.time AS departed_at,
           coalesce(d.time, last_state.time) - a.time AS dwell,
           ident.series, ident.plate
    FROM locomotive_events a
    LEFT JOIN LATERAL (
        SELECT e.time FROM locomotive_events e
        WHERE e.facility_id = a.facility_id AND e.flow = a.flow AND e.loco_id = a.loco_id
          AND e.kind = 'departed'
        ORDER BY e.time LIMIT 1
    ) d ON true
    LEFT JOIN LATERAL (
        SELECT (array_agg(e.series ORDER BY e.time DESC) FILTER (WHERE e.series IS NOT NULL))[1]
                   AS series,
               (array_agg(e.plate ORDER BY e.time DESC) FILTER (WHERE e.plate IS NOT NULL))[1]
                   AS plate
        FROM locomotive_events e
        WHERE e.facility_id = a.facility_id AND e.flow = a.flow AND e.loco_id = a.loco_id
          AND e.kind IN ('identified', 'departed')
    ) ident ON true
    LEFT JOIN LATERAL (
        SELECT s.time FROM state_snapshots s
        WHERE s.facility_id = a.facility_id AND s.flow = a.flow
        ORDER BY s.time DESC LIMIT 1
    ) last_state ON true
    WHERE a.kind = 'arrived'
    """,
    # Per day and series: how many locomotive visits started.
    """
    CREATE VIEW model_mix_daily AS
    SELECT facility_id, flow, time_bucket(INTERVAL '1 day', arrived_at) AS day,
           coalesce(series, 'unidentified') AS series,
           count(*) AS visits, count(DISTINCT plate) AS distinct_plates
    FROM visits GROUP BY 1, 2, 3, 4
    """,
    # Per locomotive and station: each uninterrupted stay (gaps and islands over the
    # per-locomotive states; a gap of more than a minute starts a new stay).
    """
    CREATE VIEW station_stays AS
    WITH marked AS (
        SELECT facility_id, flow, loco_id, station_id, track_id, time, series, plate,
               CASE WHEN station_id IS DISTINCT FROM lag(station_id) OVER w
                      OR time - lag(time) OVER w > INTERVAL '1 minute' THEN 1 ELSE 0 END AS starts
        FROM locomotive_states
        WINDOW w AS (PARTITION BY facility_id, flow, loco_id ORDER BY time)
    ), islands AS (
        SELECT *, sum(starts) OVER (PARTITION BY facility_id, flow, loco_id ORDER BY time) AS stay
        FROM marked
    )
    SELECT facility_id, flow, loco_id, station_id, min(track_id) AS track_id,
           min(time) AS from_time, max(time) AS to_time, max(time) - min(time) AS dwell,
           (array_agg(series ORDER BY time DESC) FILTER (WHERE series IS NOT NULL))[1] AS series,
           (array_agg(plate ORDER BY time DESC) FILTER (WHERE plate IS NOT NULL))[1] AS plate
    FROM islands WHERE station_id IS NOT NULL
    GROUP BY facility_id, flow, loco_id, station_id, stay
    """,
]


def _license(conn: Any) -> str:
    cursor = conn.cursor()
    cursor.execute("SELECT current_setting('timescaledb.license')")
    return str(cursor.fetchone()[0])


def apply(conn: Any) -> None:
    cursor = conn.cursor()
    for statement in VIEWS:
        cursor.execute(statement)
    if _license(conn) == "timescale":
        cursor.execute(
            "CREATE MATERIALIZED VIEW locomotive_counts_hourly "
            f"WITH (timescaledb.continuous) AS {COUNTS_SELECT} WITH NO DATA"
        )
        cursor.execute(
            "SELECT add_continuous_aggregate_policy('locomotive_counts_hourly', "
            "start_offset => INTERVAL '3 days', end_offset => INTERVAL '1 hour', "
            "schedule_interval => INTERVAL '30 minutes')"
        )
    else:
        cursor.execute(f"CREATE VIEW locomotive_counts_hourly AS {COUNTS_SELECT}")
    cursor.execute(
        "GRANT SELECT ON station_occupancy_hourly, station_stays, visits, model_mix_daily, "
        "locomotive_counts_hourly TO locowatch_reader, locowatch_writer"
    )


def rollback(conn: Any) -> None:
    cursor = conn.cursor()
    cursor.execute(
        "DROP VIEW IF EXISTS model_mix_daily, visits, station_stays, station_occupancy_hourly"
    )
    if _license(conn) == "timescale":
        cursor.execute("DROP MATERIALIZED VIEW IF EXISTS locomotive_counts_hourly")
    else:
        cursor.execute("DROP VIEW IF EXISTS locomotive_counts_hourly")


steps = [step(apply, rollback)]
