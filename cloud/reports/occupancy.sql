-- Station occupancy per time bucket (whole hours): the share of state snapshots in which
-- a station held a locomotive, how many locomotives stood there, and which (plate, else
-- FSE id). A station missing from a bucket was empty for the whole bucket. Read from the
-- hourly roll-ups (the hour in progress from its snapshots).
WITH hours AS (
    SELECT time_bucket(%(bucket)s::interval, hour, %(tz)s) AS bucket, hour, station_id,
           occupied_snapshots, loco_ids, plates
    FROM station_hours
    WHERE facility_id = %(facility)s AND flow = %(flow)s
      AND hour >= %(from)s AND hour < %(to)s
), snapshots AS (
    SELECT time_bucket(%(bucket)s::interval, hour, %(tz)s) AS bucket, sum(snapshots) AS snapshots
    FROM count_hours
    WHERE facility_id = %(facility)s AND flow = %(flow)s
      AND hour >= %(from)s AND hour < %(to)s
    GROUP BY 1
), occupied AS (
    SELECT bucket, station_id, sum(occupied_snapshots) AS occupied_snapshots
    FROM hours GROUP BY 1, 2
), visitors AS (  -- each locomotive once, under the last plate read for it
    SELECT h.bucket, h.station_id, v.loco_id,
           (array_agg(v.plate ORDER BY h.hour DESC) FILTER (WHERE v.plate IS NOT NULL))[1]
               AS plate
    FROM hours h CROSS JOIN LATERAL unnest(h.loco_ids, h.plates) AS v(loco_id, plate)
    GROUP BY 1, 2, 3
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
