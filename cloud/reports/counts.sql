-- Locomotives inside per time bucket (mean, least and most over the bucket's
-- snapshots), with the arrivals and departures in the bucket.
WITH counts AS (
    SELECT time_bucket(%(bucket)s::interval, time, %(tz)s) AS bucket,
           round(avg(locomotive_count), 2) AS mean_count,
           min(locomotive_count) AS min_count, max(locomotive_count) AS max_count
    FROM state_snapshots
    WHERE facility_id = %(facility)s AND flow = %(flow)s
      AND time >= %(from)s AND time < %(to)s
    GROUP BY 1
), moves AS (
    SELECT time_bucket(%(bucket)s::interval, time, %(tz)s) AS bucket,
           count(*) FILTER (WHERE kind = 'arrived') AS arrivals,
           count(*) FILTER (WHERE kind = 'departed') AS departures
    FROM locomotive_events
    WHERE facility_id = %(facility)s AND flow = %(flow)s
      AND time >= %(from)s AND time < %(to)s AND kind IN ('arrived', 'departed')
    GROUP BY 1
)
SELECT c.bucket, c.mean_count, c.min_count, c.max_count,
       coalesce(m.arrivals, 0) AS arrivals, coalesce(m.departures, 0) AS departures
FROM counts c LEFT JOIN moves m USING (bucket)
ORDER BY c.bucket
