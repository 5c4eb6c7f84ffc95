-- Two group roles: ingest writes through locowatch_writer; the dashboard and reports
-- read through locowatch_reader. Login users are made members of one of them
-- (`locowatch cloud user`). Roles are cluster-wide: create them only when missing.
-- depends: 0001_hypertables

DO $$
BEGIN
    CREATE ROLE locowatch_writer NOLOGIN;
EXCEPTION WHEN duplicate_object THEN NULL;
END $$;

DO $$
BEGIN
    CREATE ROLE locowatch_reader NOLOGIN;
EXCEPTION WHEN duplicate_object THEN NULL;
END $$;

GRANT USAGE ON SCHEMA public TO locowatch_writer, locowatch_reader;
GRANT SELECT ON ALL TABLES IN SCHEMA public TO locowatch_reader, locowatch_writer;
GRANT INSERT ON position_estimations, attribute_estimations, camera_health, state_snapshots,
    locomotive_states, locomotive_events, ingest_rejections TO locowatch_writer;
GRANT INSERT, UPDATE ON gateway_progress TO locowatch_writer;
-- Views and tables added by later migrations are readable by both roles.
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT ON TABLES TO locowatch_reader, locowatch_writer;
