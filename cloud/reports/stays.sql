-- Each uninterrupted stay of a locomotive at a station, with its dwell in hours (a stay
-- still going runs to the newest snapshot).
SELECT station_id AS station, loco_id, plate, series, from_time, to_time,
       round((extract(epoch FROM dwell) / 3600)::numeric, 2) AS dwell_hours
FROM station_stays
WHERE facility_id = %(facility)s AND flow = %(flow)s
  AND during && tstzrange(%(from)s, %(to)s)
ORDER BY station_id, from_time
