-- Raw estimations are written tens of thousands of rows a second and read by one hot
-- query: the FSE's replay after a restart, by (facility_id, flow, time). Every index
-- costs every row an insertion, so the raw position and attribute tables keep only the
-- indexes a query needs. Two go:
--   * the plain (time DESC) index create_hypertable adds: retention drops whole chunks,
--     and a time range within a facility uses (facility_id, flow, time DESC);
--   * position_estimations (facility_id, camera_id, time DESC): a camera's history is a
--     debugging query, answered well enough by the flow index plus a filter.
-- PostgreSQL's CPU per row of the benchmark's COPY went from 8.8 us to 5.7 us
-- (bench/bench_cloud.py, docs/benchmarks.md). camera_health keeps both of its indexes:
-- the dashboard reads it per camera and by newest time.
-- depends: 0004_reporting

DROP INDEX IF EXISTS position_estimations_time_idx;
DROP INDEX IF EXISTS position_estimations_camera_time;
DROP INDEX IF EXISTS attribute_estimations_time_idx;
