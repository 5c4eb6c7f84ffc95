-- Retention cuts at instants ingest gives, read off ingest's own clock: the clock that
-- bounds capture times and reports envelopes arriving already past retention. One clock
-- decides what is too new, what is too old and what is dropped, so the three agree even
-- where the database server's clock does not (and a test can move that one clock).
-- depends: 0005_raw_indexes

DROP FUNCTION locowatch_drop_old_chunks(interval, interval);

CREATE FUNCTION locowatch_drop_old_chunks(raw_before timestamptz, state_before timestamptz)
RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    dropped integer := 0;
    raw_table text;
    state_table text;
BEGIN
    FOREACH raw_table IN ARRAY ARRAY['position_estimations', 'attribute_estimations',
                                     'camera_health', 'ingest_rejections'] LOOP
        dropped := dropped + (SELECT count(*) FROM drop_chunks(raw_table::regclass, older_than => raw_before));
    END LOOP;
    FOREACH state_table IN ARRAY ARRAY['state_snapshots', 'locomotive_states', 'locomotive_events'] LOOP
        dropped := dropped + (SELECT count(*) FROM drop_chunks(state_table::regclass, older_than => state_before));
    END LOOP;
    RETURN dropped;
END $$;
REVOKE ALL ON FUNCTION locowatch_drop_old_chunks(timestamptz, timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION locowatch_drop_old_chunks(timestamptz, timestamptz) TO locowatch_writer;
