# ruff: noqa: E501  (the SQL reads better unwrapped)
"""History at the rate it changes: stays, visits, spans and hours as rows (cloud/history.py).

Before: a row per locomotive per second (``locomotive_states``) and views that numbered
every state ever written, so a day's report got slower every day (167 s for one day's
stays after 30 days). After: the state writer writes stays, visits and spans when they
open, change and close, and rolls up each hour's counts and station occupancy from the
snapshots when the hour closes; the analysts' views (same names and columns as before)
read those. The 1 Hz snapshots stay for the live view, ``locowatch eval`` and replays,
kept ``retention.snapshot_days`` (docs/reports.md).

Existing history is converted, not lost: each facility's and flow's snapshots and events
go through the same ``History`` the writer runs, every closed hour is rolled up, then
``locomotive_states`` and the old views are dropped. Irreversible (no rollback): the
per-second rows are gone once their spans are written.
"""

from typing import Any

from yoyo import step

__depends__ = {"0008_plant"}
# Dropping a continuous aggregate (Timescale license) refuses to run in a transaction.
__transactional__ = False

TABLES = """
-- The newest snapshot stored per facility and flow, and the hour rolled up to. Open
-- stays and visits last until ``time``; a restarted writer resumes from here.
CREATE TABLE state_progress (
    facility_id  text NOT NULL,
    flow         text NOT NULL,
    time         timestamptz NOT NULL,
    rolled_up_to timestamptz NOT NULL,
    PRIMARY KEY (facility_id, flow)
);

-- Range lookups (what overlaps a day) go through GiST indexes on [from, to]; an open
-- row (to NULL) is an unbounded range, so it overlaps every later day.
CREATE TABLE locomotive_stays (
    facility_id text NOT NULL,
    flow        text NOT NULL,
    loco_id     text NOT NULL,
    station_id  text NOT NULL,
    track_id    text NOT NULL,
    from_time   timestamptz NOT NULL,
    to_time     timestamptz CHECK (to_time >= from_time),  -- NULL while it lasts
    series      text,
    plate       text
);
DO $$ BEGIN PERFORM create_hypertable('locomotive_stays', by_range('from_time', INTERVAL '90 days')); END $$;
CREATE UNIQUE INDEX locomotive_stays_key ON locomotive_stays (facility_id, flow, loco_id, from_time);
CREATE INDEX locomotive_stays_during ON locomotive_stays USING gist (tstzrange(from_time, to_time, '[]'));
CREATE INDEX locomotive_stays_open ON locomotive_stays (facility_id, flow) WHERE to_time IS NULL;

CREATE TABLE locomotive_visits (
    facility_id   text NOT NULL,
    flow          text NOT NULL,
    loco_id       text NOT NULL,
    arrival_track text NOT NULL,
    arrived_at    timestamptz NOT NULL,
    departed_at   timestamptz CHECK (departed_at >= arrived_at),  -- NULL while inside
    series        text,
    plate         text
);
DO $$ BEGIN PERFORM create_hypertable('locomotive_visits', by_range('arrived_at', INTERVAL '365 days')); END $$;
CREATE UNIQUE INDEX locomotive_visits_key ON locomotive_visits (facility_id, flow, loco_id, arrived_at);
CREATE INDEX locomotive_visits_during ON locomotive_visits USING gist (tstzrange(arrived_at, departed_at, '[]'));
CREATE INDEX locomotive_visits_open ON locomotive_visits (facility_id, flow) WHERE departed_at IS NULL;

-- A locomotive's state while it holds: standing still, one row.
CREATE TABLE locomotive_spans (
    facility_id text NOT NULL,
    flow        text NOT NULL,
    loco_id     text NOT NULL,
    track_id    text NOT NULL,
    tail_m      real NOT NULL,  -- closed: the mean over the span; open: where it began
    head_m      real NOT NULL,
    station_id  text,
    series      text,
    plate       text,
    stale       boolean NOT NULL,
    from_time   timestamptz NOT NULL,
    to_time     timestamptz CHECK (to_time >= from_time)
);
DO $$ BEGIN PERFORM create_hypertable('locomotive_spans', by_range('from_time', INTERVAL '30 days')); END $$;
CREATE UNIQUE INDEX locomotive_spans_key ON locomotive_spans (facility_id, flow, loco_id, from_time);
CREATE INDEX locomotive_spans_during ON locomotive_spans USING gist (tstzrange(from_time, to_time, '[]'));
CREATE INDEX locomotive_spans_open ON locomotive_spans (facility_id, flow) WHERE to_time IS NULL;

-- Per closed hour: how many snapshots, and the locomotive count over them.
CREATE TABLE count_hours_closed (
    facility_id text NOT NULL,
    flow        text NOT NULL,
    hour        timestamptz NOT NULL,
    snapshots   integer NOT NULL,
    count_sum   bigint NOT NULL,
    min_count   integer NOT NULL,
    max_count   integer NOT NULL
);
DO $$ BEGIN PERFORM create_hypertable('count_hours_closed', by_range('hour', INTERVAL '365 days')); END $$;
CREATE UNIQUE INDEX count_hours_closed_key ON count_hours_closed (facility_id, flow, hour);

-- Per closed hour and station that held a locomotive: in how many snapshots, and which
-- locomotives, each with the last plate read for it in the hour (NULL: none).
CREATE TABLE station_hours_closed (
    facility_id        text NOT NULL,
    flow               text NOT NULL,
    hour               timestamptz NOT NULL,
    station_id         text NOT NULL,
    occupied_snapshots integer NOT NULL,
    loco_ids           text[] NOT NULL,
    plates             text[] NOT NULL
);
DO $$ BEGIN PERFORM create_hypertable('station_hours_closed', by_range('hour', INTERVAL '365 days')); END $$;
CREATE UNIQUE INDEX station_hours_closed_key ON station_hours_closed (facility_id, flow, hour, station_id);

GRANT SELECT, INSERT, UPDATE ON state_progress, locomotive_stays, locomotive_visits,
    locomotive_spans, count_hours_closed, station_hours_closed TO locowatch_writer;
GRANT SELECT ON state_progress, locomotive_stays, locomotive_visits, locomotive_spans,
    count_hours_closed, station_hours_closed TO locowatch_reader;

-- An hour's counts and station occupancy from its snapshots: what the writer rolls up
-- when an hour closes, and what the views show for the hour in progress.
CREATE FUNCTION locowatch_count_hours(
    of_facility text, of_flow text, start_at timestamptz, end_at timestamptz)
RETURNS TABLE (hour timestamptz, snapshots integer, count_sum bigint, min_count integer,
               max_count integer)
LANGUAGE sql STABLE AS $$
    SELECT time_bucket(INTERVAL '1 hour', s.time), count(*)::integer,
           sum(s.locomotive_count)::bigint, min(s.locomotive_count), max(s.locomotive_count)
    FROM state_snapshots s
    WHERE s.facility_id = of_facility AND s.flow = of_flow
      AND s.time >= start_at AND s.time < end_at
    GROUP BY 1
$$;

-- Per hour and station that held a locomotive: in how many snapshots, and which
-- locomotives, each with the last plate read for it in the hour (NULL: none).
CREATE FUNCTION locowatch_station_hours(
    of_facility text, of_flow text, start_at timestamptz, end_at timestamptz)
RETURNS TABLE (hour timestamptz, station_id text, occupied_snapshots integer,
               loco_ids text[], plates text[])
LANGUAGE sql STABLE AS $$
    WITH states AS (
        SELECT time_bucket(INTERVAL '1 hour', s.time) AS hour, s.time,
               l->>'station' AS station_id, l->>'id' AS loco_id, l->>'plate' AS plate
        FROM state_snapshots s CROSS JOIN LATERAL jsonb_array_elements(s.locomotives) l
        WHERE s.facility_id = of_facility AND s.flow = of_flow
          AND s.time >= start_at AND s.time < end_at AND l->>'station' IS NOT NULL
    ), occupied AS (
        SELECT hour, station_id, count(DISTINCT time)::integer AS snapshots
        FROM states GROUP BY 1, 2
    ), visitors AS (
        SELECT hour, station_id, loco_id,
               (array_agg(plate ORDER BY time DESC) FILTER (WHERE plate IS NOT NULL))[1] AS plate
        FROM states GROUP BY 1, 2, 3
    )
    SELECT o.hour, o.station_id, o.snapshots,
           array_agg(v.loco_id ORDER BY v.loco_id), array_agg(v.plate ORDER BY v.loco_id)
    FROM occupied o JOIN visitors v USING (hour, station_id)
    GROUP BY o.hour, o.station_id, o.snapshots
$$;
"""

VIEWS = """
-- The analysts' views, with the columns they had (plus ``during``, the range the GiST
-- indexes answer: filter on ``during && tstzrange(from, to)`` for speed).
CREATE VIEW visits AS
SELECT v.facility_id, v.flow, v.loco_id, v.arrival_track, v.arrived_at, v.departed_at,
       coalesce(v.departed_at, p.time) - v.arrived_at AS dwell, v.series, v.plate,
       tstzrange(v.arrived_at, v.departed_at, '[]') AS during
FROM locomotive_visits v LEFT JOIN state_progress p USING (facility_id, flow);

CREATE VIEW station_stays AS
SELECT s.facility_id, s.flow, s.loco_id, s.station_id, s.track_id, s.from_time,
       coalesce(s.to_time, p.time) AS to_time, coalesce(s.to_time, p.time) - s.from_time AS dwell,
       s.series, s.plate, tstzrange(s.from_time, s.to_time, '[]') AS during
FROM locomotive_stays s LEFT JOIN state_progress p USING (facility_id, flow);

CREATE VIEW model_mix_daily AS
SELECT facility_id, flow, time_bucket(INTERVAL '1 day', arrived_at) AS day,
       coalesce(series, 'unidentified') AS series,
       count(*) AS visits, count(DISTINCT plate) AS distinct_plates
FROM visits GROUP BY 1, 2, 3, 4;

-- Hours rolled up, and the hour in progress from its snapshots (at most an hour of them).
CREATE VIEW count_hours AS
SELECT facility_id, flow, hour, snapshots, count_sum, min_count, max_count
FROM count_hours_closed
UNION ALL
SELECT p.facility_id, p.flow, h.*
FROM state_progress p
CROSS JOIN LATERAL locowatch_count_hours(p.facility_id, p.flow, p.rolled_up_to, 'infinity') h;

CREATE VIEW station_hours AS
SELECT facility_id, flow, hour, station_id, occupied_snapshots, loco_ids, plates
FROM station_hours_closed
UNION ALL
SELECT p.facility_id, p.flow, h.*
FROM state_progress p
CROSS JOIN LATERAL locowatch_station_hours(p.facility_id, p.flow, p.rolled_up_to, 'infinity') h;

CREATE VIEW station_occupancy_hourly AS
SELECT o.facility_id, o.flow, o.hour AS bucket, o.station_id,
       cardinality(o.loco_ids)::bigint AS locomotives,
       (o.occupied_snapshots::double precision / c.snapshots)::real AS occupied_fraction
FROM station_hours o JOIN count_hours c USING (facility_id, flow, hour);

CREATE VIEW locomotive_counts_hourly AS
SELECT facility_id, flow, hour AS bucket,
       (count_sum::double precision / snapshots)::real AS avg_count,
       max_count, min_count, snapshots::bigint AS snapshots
FROM count_hours;

GRANT SELECT ON visits, station_stays, model_mix_daily, count_hours, station_hours,
    station_occupancy_hourly, locomotive_counts_hourly TO locowatch_reader, locowatch_writer;
"""

ROLL_UP = """
-- Every hour before each flow's rolled_up_to, as 0009's schema has them (the writer's own
-- roll-up statements follow the newest schema).
INSERT INTO count_hours_closed
SELECT p.facility_id, p.flow, h.*
FROM state_progress p
CROSS JOIN LATERAL locowatch_count_hours(p.facility_id, p.flow, '-infinity', p.rolled_up_to) h;
INSERT INTO station_hours_closed
SELECT p.facility_id, p.flow, h.*
FROM state_progress p
CROSS JOIN LATERAL locowatch_station_hours(p.facility_id, p.flow, '-infinity', p.rolled_up_to) h;
"""

RETENTION = """
-- Snapshots get their own, shorter age: history lives on in the fact tables.
DROP FUNCTION locowatch_drop_old_chunks(timestamptz, timestamptz);
CREATE FUNCTION locowatch_drop_old_chunks(
    raw_before timestamptz, snapshot_before timestamptz, state_before timestamptz)
RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    dropped integer := 0;
    name text;
BEGIN
    FOREACH name IN ARRAY ARRAY['position_estimations', 'attribute_estimations',
                                'camera_health', 'ingest_rejections'] LOOP
        dropped := dropped + (SELECT count(*) FROM drop_chunks(name::regclass, older_than => raw_before));
    END LOOP;
    dropped := dropped + (SELECT count(*) FROM drop_chunks('state_snapshots', older_than => snapshot_before));
    FOREACH name IN ARRAY ARRAY['locomotive_events', 'locomotive_stays', 'locomotive_visits',
                                'locomotive_spans', 'count_hours_closed', 'station_hours_closed'] LOOP
        dropped := dropped + (SELECT count(*) FROM drop_chunks(name::regclass, older_than => state_before));
    END LOOP;
    RETURN dropped;
END $$;
REVOKE ALL ON FUNCTION locowatch_drop_old_chunks(timestamptz, timestamptz, timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION locowatch_drop_old_chunks(timestamptz, timestamptz, timestamptz)
    TO locowatch_writer;
"""


def apply(conn: Any) -> None:
    from cloud.schema import timescale_info
    from cloud.store import convert_history

    cursor = conn.cursor()
    cursor.execute(
        "DROP VIEW IF EXISTS model_mix_daily, visits, station_stays, station_occupancy_hourly"
    )
    if timescale_info(conn).has_policies:  # there the hourly counts were a continuous aggregate
        cursor.execute("DROP MATERIALIZED VIEW IF EXISTS locomotive_counts_hourly")
    else:
        cursor.execute("DROP VIEW IF EXISTS locomotive_counts_hourly")
    with conn.transaction():
        cursor.execute(TABLES)
        convert_history(conn)
        cursor.execute(ROLL_UP)
        cursor.execute("DROP TABLE locomotive_states")
        cursor.execute(VIEWS)
        cursor.execute(RETENTION)


steps = [step(apply)]
