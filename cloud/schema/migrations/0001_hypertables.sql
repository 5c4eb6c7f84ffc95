-- Raw estimations, camera health, facility state and events as TimescaleDB hypertables.
--
-- Chunk intervals follow the write rate of one depot (34 cameras at 2 fps, two flows:
-- ~12 M raw rows a day): raw tables get 1-day chunks so that a chunk's indexes stay in
-- memory and retention drops whole days; state and events are small and get 7 and 30
-- days. Times are capture times (timestamptz); every row names its facility and, where it
-- has one, its flow, so that one database serves many facilities.

CREATE EXTENSION IF NOT EXISTS timescaledb;
-- create_hypertable runs in DO blocks: yoyo would print the rows of a bare SELECT.

-- Per-gateway high-water mark of stored sequence numbers: the deduplication record.
-- Updated in the same transaction as the rows it covers, so an ack implies both.
CREATE TABLE gateway_progress (
    gateway_id  text PRIMARY KEY,
    facility_id text NOT NULL,
    last_seq    bigint NOT NULL CHECK (last_seq >= 0),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE position_estimations (
    time           timestamptz NOT NULL,
    facility_id    text NOT NULL,
    gateway_id     text NOT NULL,
    seq            bigint NOT NULL,
    flow           text NOT NULL,
    camera_id      text NOT NULL,
    track_id       text NOT NULL,
    covered_start_m real NOT NULL,
    covered_end_m  real NOT NULL,
    confidence     real NOT NULL,
    -- One element per occupied interval, in order along the track.
    interval_start_m real[] NOT NULL,
    interval_end_m   real[] NOT NULL,
    start_real     boolean[] NOT NULL,  -- false: cut by the view's edge or an occluder
    end_real       boolean[] NOT NULL,
    interval_confidence real[] NOT NULL,
    model_version  text NOT NULL,
    engine         text NOT NULL
);
DO $$ BEGIN PERFORM create_hypertable('position_estimations', by_range('time', INTERVAL '1 day')); END $$;
-- FSE replay after a restart reads one facility and flow over a time range.
CREATE INDEX position_estimations_flow_time
    ON position_estimations (facility_id, flow, time DESC);
-- Debugging a camera: its estimations over time.
CREATE INDEX position_estimations_camera_time
    ON position_estimations (facility_id, camera_id, time DESC);

CREATE TABLE attribute_estimations (
    time          timestamptz NOT NULL,
    facility_id   text NOT NULL,
    gateway_id    text NOT NULL,
    seq           bigint NOT NULL,
    flow          text NOT NULL,
    camera_id     text NOT NULL,
    name          text NOT NULL,       -- "model", "plate", ...
    value         text NOT NULL,
    confidence    real NOT NULL,
    track_id      text NOT NULL,
    position_m    real NOT NULL,
    alternatives  text[] NOT NULL,
    alternative_confidence real[] NOT NULL,
    model_version text NOT NULL,
    engine        text NOT NULL
);
DO $$ BEGIN PERFORM create_hypertable('attribute_estimations', by_range('time', INTERVAL '1 day')); END $$;
CREATE INDEX attribute_estimations_flow_time
    ON attribute_estimations (facility_id, flow, time DESC);
CREATE INDEX attribute_estimations_value_time
    ON attribute_estimations (facility_id, name, value, time DESC);

CREATE TABLE camera_health (
    time            timestamptz NOT NULL,   -- when capture observed it
    facility_id     text NOT NULL,
    gateway_id      text NOT NULL,
    seq             bigint NOT NULL,
    camera_id       text NOT NULL,
    state           text NOT NULL,          -- starting, streaming, stalled, reconnecting, stopped
    fps             real NOT NULL,
    last_frame_time timestamptz,
    reconnects      bigint NOT NULL,
    decode_errors   bigint NOT NULL,
    message         text NOT NULL
);
DO $$ BEGIN PERFORM create_hypertable('camera_health', by_range('time', INTERVAL '1 day')); END $$;
CREATE INDEX camera_health_camera_time ON camera_health (facility_id, camera_id, time DESC);

-- One row per FSE snapshot (about 1 Hz per facility and flow); the live view and
-- `locowatch eval --db` read it. `locomotives` is the JSON list the evaluator documents.
CREATE TABLE state_snapshots (
    time        timestamptz NOT NULL,
    facility_id text NOT NULL,
    flow        text NOT NULL,
    written_at  timestamptz NOT NULL DEFAULT now(),
    locomotive_count integer NOT NULL,
    locomotives jsonb NOT NULL
);
DO $$ BEGIN PERFORM create_hypertable('state_snapshots', by_range('time', INTERVAL '7 days')); END $$;
CREATE UNIQUE INDEX state_snapshots_flow_time ON state_snapshots (facility_id, flow, time DESC);

-- The same snapshots, one row per locomotive: what station reports aggregate.
CREATE TABLE locomotive_states (
    time        timestamptz NOT NULL,
    facility_id text NOT NULL,
    flow        text NOT NULL,
    loco_id     text NOT NULL,
    track_id    text NOT NULL,
    tail_m      real NOT NULL,
    head_m      real NOT NULL,
    station_id  text,                -- NULL between stations
    series      text,
    plate       text,
    stale       boolean NOT NULL
);
DO $$ BEGIN PERFORM create_hypertable('locomotive_states', by_range('time', INTERVAL '7 days')); END $$;
CREATE INDEX locomotive_states_station_time
    ON locomotive_states (facility_id, flow, station_id, time DESC);
CREATE INDEX locomotive_states_loco_time ON locomotive_states (facility_id, flow, loco_id, time DESC);

-- What happened to a locomotive: arrived, moved, stopped, identified, departed.
CREATE TABLE locomotive_events (
    time        timestamptz NOT NULL,
    facility_id text NOT NULL,
    flow        text NOT NULL,
    loco_id     text NOT NULL,
    kind        text NOT NULL CHECK (kind IN ('arrived', 'moved', 'stopped', 'identified', 'departed')),
    track_id    text NOT NULL,
    station_id  text,
    tail_m      real NOT NULL,
    head_m      real NOT NULL,
    series      text,
    plate       text,
    detail      jsonb NOT NULL DEFAULT '{}'
);
DO $$ BEGIN PERFORM create_hypertable('locomotive_events', by_range('time', INTERVAL '30 days')); END $$;
CREATE INDEX locomotive_events_loco ON locomotive_events (facility_id, flow, loco_id, time);
CREATE INDEX locomotive_events_kind_time ON locomotive_events (facility_id, flow, kind, time DESC);

-- Envelopes ingest refused for good (they are acked and never resent): why, for audits.
CREATE TABLE ingest_rejections (
    time        timestamptz NOT NULL DEFAULT now(),
    facility_id text NOT NULL,
    gateway_id  text NOT NULL,
    seq         bigint NOT NULL,
    reason      text NOT NULL,
    detail      text NOT NULL
);
DO $$ BEGIN PERFORM create_hypertable('ingest_rejections', by_range('time', INTERVAL '30 days')); END $$;
