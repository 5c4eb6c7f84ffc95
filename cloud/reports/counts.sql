-- Locomotives inside per time bucket (whole hours: mean, least and most over the
-- bucket's snapshots), with the arrivals and departures in the bucket. Read from the
-- hourly roll-ups (the hour in progress from its snapshots).
WITH counts AS (
    SELECT time_bucket(%(bucket)s::interval, hour, %(tz)s) AS bucket,
           round(sum(count_sum)::numeric / sum(snapshots), 2) AS mean_count,
           min(min_count) AS min_count, max(max_count) AS max_count
    FROM count_hours
    WHERE facility_id = %(facility)s AND flow = %(flow)s
      AND hour >= %(from)s AND hour < %(to)s
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
