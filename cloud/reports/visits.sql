-- Locomotive visits that overlap the range: arrival, departure (empty while still
-- inside), dwell time in hours, and identity (series, plate) as the FSE settled it.
SELECT loco_id, plate, series, arrival_track, arrived_at, departed_at,
       round((extract(epoch FROM dwell) / 3600)::numeric, 2) AS dwell_hours
FROM visits
WHERE facility_id = %(facility)s AND flow = %(flow)s
  AND during && tstzrange(%(from)s, %(to)s)
ORDER BY arrived_at, loco_id
