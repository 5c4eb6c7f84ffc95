-- Station occupancy per time bucket: the share of state snapshots in which a station
-- held a locomotive, how many locomotives stood there, and which (plate, else FSE id).
-- A station missing from a bucket was empty for the whole bucket.
WITH states AS (
    SELECT time_bucket(%(bucket)s::interval, time, %(tz)s) AS bucket, time, station_id,
           loco_id, plate
    FROM locomotive_states
    WHERE facility_id = %(facility)s AND flow = %(flow)s
      AND time >= %(from)s AND time < %(to)s AND station_id IS NOT NULL
), snapshots AS (
    SELECT time_bucket(%(bucket)s::interval, time, %(tz)s) AS bucket, count(*) AS snapshots
    FROM state_snapshots
    WHERE facility_id = %(facility)s AND flow = %(flow)s
      AND time >= %(from)s AND time < %(to)s
    GROUP BY 1
), occupied AS (
    SELECT bucket, station_id, count(DISTINCT time) AS occupied_snapshots
    FROM states GROUP BY 1, 2
), visitors AS (  -- each locomotive once, under the last plate read for it
    SELECT bucket, station_id, loco_id,
           (array_agg(plate ORDER BY time DESC) FILTER (WHERE plate IS NOT NULL))[1] AS plate
    FROM states GROUP BY 1, 2, 3
)
SELECT o.bucket, o.station_id AS station,
       round(o.occupied_snapshots::numeric / s.snapshots, 3) AS occupied_fraction,
       count(*) AS locomotives,
       string_agg(coalesce(v.plate, v.loco_id), ' ' ORDER BY coalesce(v.plate, v.loco_id))
           AS plates
FROM occupied o
JOIN snapshots s USING (bucket)
JOIN visitors v USING (bucket, station_id)
GROUP BY o.bucket, o.station_id, o.occupied_snapshots, s.snapshots
ORDER BY o.bucket, o.station_id
