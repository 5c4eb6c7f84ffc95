-- Retention under any license: drop whole chunks older than the configured ages.
-- Dropping chunks needs the table owner; ingest runs as locowatch_writer, so it calls
-- this SECURITY DEFINER function (owned by the migrating user) instead of owning tables.
-- Under the Timescale license, `locowatch cloud run` adds retention policies instead.
-- depends: 0002_roles

CREATE FUNCTION locowatch_drop_old_chunks(raw_age interval, state_age interval)
RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    dropped integer := 0;
    raw_table text;
    state_table text;
BEGIN
    FOREACH raw_table IN ARRAY ARRAY['position_estimations', 'attribute_estimations',
                                     'camera_health', 'ingest_rejections'] LOOP
        dropped := dropped + (SELECT count(*) FROM drop_chunks(raw_table::regclass, older_than => raw_age));
    END LOOP;
    FOREACH state_table IN ARRAY ARRAY['state_snapshots', 'locomotive_states', 'locomotive_events'] LOOP
        dropped := dropped + (SELECT count(*) FROM drop_chunks(state_table::regclass, older_than => state_age));
    END LOOP;
    RETURN dropped;
END $$;
REVOKE ALL ON FUNCTION locowatch_drop_old_chunks(interval, interval) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION locowatch_drop_old_chunks(interval, interval) TO locowatch_writer;
