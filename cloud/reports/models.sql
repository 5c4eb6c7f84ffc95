-- Model mix: visits that started in the range per series, and distinct plates.
SELECT coalesce(series, 'unidentified') AS series, count(*) AS visits,
       count(DISTINCT plate) AS distinct_plates
FROM visits
WHERE facility_id = %(facility)s AND flow = %(flow)s
  AND arrived_at >= %(from)s AND arrived_at < %(to)s
GROUP BY 1
ORDER BY visits DESC, series
