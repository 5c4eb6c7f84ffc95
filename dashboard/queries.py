"""What the dashboard reads, as SQL on the read-only role's tables and views.

Every query names its facility and flow and is bounded in time, so that it walks the
(facility_id, flow, time DESC) indexes of the hypertables and touches the chunks of its
range only: the live view reads one snapshot row, never a day of them. Times go in and
come out as timezone-aware datetimes.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import psycopg
from psycopg_pool import ConnectionPool

from cloud.reports import ReportRange, report_rows
from cloud.store import CAMERA_REPORTS_SQL, GATEWAY_REPORTS_SQL, LATEST_SNAPSHOT_SQL


@dataclass(frozen=True)
class Version:
    """The newest rows of a view: it changed when this changed."""

    state: datetime | None
    health: datetime | None
    alerts: datetime | None = None  # the newest alert fired or resolved


@dataclass(frozen=True)
class StateRow:
    time: datetime
    locomotives: list[dict[str, Any]]  # LocoState.to_json() of each, as the FSE wrote them


@dataclass(frozen=True)
class CameraRow:
    camera_id: str
    time: datetime | None  # None: the camera never reported
    state: str
    fps: float
    last_frame_time: datetime | None
    reconnects: int
    decode_errors: int
    message: str


@dataclass(frozen=True)
class AlertRow:
    rule: str
    subject: str
    severity: str  # info, warning, critical
    message: str
    fired_at: datetime


@dataclass(frozen=True)
class GatewayRow:
    gateway_id: str
    last_report: datetime  # when ingest last stored a batch of it (the database's clock)


@dataclass(frozen=True)
class Stay:
    """A locomotive standing at a station (clipped to the range asked for)."""

    station: str
    track: str
    loco_id: str
    plate: str | None
    series: str | None
    start: datetime
    end: datetime


# Rests at stations from the FSE's motion events: a locomotive stands from "arrived" or
# "stopped" until its next "moved" or "departed" (or, still standing, the newest
# snapshot). Events are a few per visit, so a day costs the same after a month or a year;
# the analysts' station_stays count presence (moving in and out included) instead. Rests
# that began up to REST_LOOKBACK before the range count.
STAYS_SQL = """
WITH motion AS (
    SELECT loco_id, kind, time, station_id, track_id,
           lead(time) OVER (PARTITION BY loco_id ORDER BY time) AS next_time
    FROM locomotive_events
    WHERE facility_id = %(facility)s AND flow = %(flow)s
      AND kind IN ('arrived', 'moved', 'stopped', 'departed')
      AND time >= %(from)s - %(lookback)s::interval AND time < %(to)s
), identity AS (
    SELECT DISTINCT ON (loco_id) loco_id, plate, series
    FROM locomotive_events
    WHERE facility_id = %(facility)s AND flow = %(flow)s AND plate IS NOT NULL
      AND time >= %(from)s - %(lookback)s::interval AND time < %(to)s
    ORDER BY loco_id, time DESC
), newest AS (
    SELECT max(time) AS time FROM state_snapshots
    WHERE facility_id = %(facility)s AND flow = %(flow)s AND time < %(to)s
)
SELECT m.station_id, m.track_id, m.loco_id, i.plate, i.series,
       greatest(m.time, %(from)s),
       least(coalesce(m.next_time, newest.time, %(to)s), %(to)s)
FROM motion m CROSS JOIN newest LEFT JOIN identity i USING (loco_id)
WHERE m.kind IN ('arrived', 'stopped') AND m.station_id IS NOT NULL
  AND coalesce(m.next_time, newest.time, %(to)s) > %(from)s
  AND coalesce(m.next_time, newest.time, %(to)s) > m.time
ORDER BY m.station_id, m.time
"""
REST_LOOKBACK = timedelta(days=60)

# The newest snapshot of each flow per bucket: what two flows are compared on.
SAMPLED_SQL = """
SELECT DISTINCT ON (flow, time_bucket(%(bucket)s::interval, time))
       flow, time_bucket(%(bucket)s::interval, time), locomotives
FROM state_snapshots
WHERE facility_id = %(facility)s AND flow = ANY(%(flows)s)
  AND time >= %(from)s AND time < %(to)s
ORDER BY flow, time_bucket(%(bucket)s::interval, time), time DESC
"""


# How long a query waits for a pooled connection: while the database answers, long enough
# to ride out a busy pool; once the pool failed to connect since the last answer, short, so
# that every panel of a page says the database is away within a second instead of each
# waiting out the pool (which keeps reconnecting in the background).
POOL_WAIT_S = 5.0
AWAY_WAIT_S = 0.5


class DashboardReader:
    """The dashboard's connection pool and its queries (run in worker threads)."""

    def __init__(self, url: str, max_connections: int = 4) -> None:
        self.pool = ConnectionPool(
            url,
            min_size=1,
            max_size=max_connections,
            open=False,
            name="dashboard",
            timeout=POOL_WAIT_S,
            # Read-only by construction: a bug here can never write the facility's history.
            kwargs={"autocommit": True, "options": "-c default_transaction_read_only=on"},
        )
        self._failed_connects = 0  # the pool's count of failed connects at the last answer

    def open(self, wait: bool = False, timeout_s: float = 30.0) -> None:
        """Open the pool; without ``wait`` it connects in the background (the app starts
        and its health check says 503 until the database answers)."""
        self.pool.open(wait=wait, timeout=timeout_s)

    @contextmanager
    def _connection(self) -> Iterator[psycopg.Connection[Any]]:
        failed = self.pool.get_stats().get("connections_errors", 0)
        away = failed > self._failed_connects
        with self.pool.connection(timeout=AWAY_WAIT_S if away else POOL_WAIT_S) as conn:
            yield conn
        self._failed_connects = failed

    def close(self) -> None:
        self.pool.close()

    def check(self) -> None:
        """Raise when the database cannot answer (the health endpoint's probe)."""
        with self._connection() as conn:
            conn.execute("SELECT 1")

    def version(self, facility: str, flows: Sequence[str]) -> Version:
        with self._connection() as conn:
            row = conn.execute(
                "SELECT (SELECT max(time) FROM state_snapshots "
                "        WHERE facility_id = %(facility)s AND flow = ANY(%(flows)s)), "
                "       (SELECT max(time) FROM camera_health WHERE facility_id = %(facility)s), "
                "       (SELECT max(coalesce(resolved_at, fired_at)) FROM alerts "
                "        WHERE facility_id = %(facility)s)",
                {"facility": facility, "flows": list(flows)},
            ).fetchone()
        return Version(row[0], row[1], row[2]) if row else Version(None, None)

    def open_alerts(self, facility: str, flow: str) -> list[AlertRow]:
        """Alerts firing now: the flow's and the facility's own (cameras, gateways)."""
        with self._connection() as conn:
            rows = conn.execute(
                "SELECT rule, subject, severity, message, fired_at FROM alerts "
                "WHERE facility_id = %s AND flow IN (%s, 'health') AND resolved_at IS NULL "
                "ORDER BY fired_at DESC LIMIT 100",
                (facility, flow),
            ).fetchall()
        return [AlertRow(*row) for row in rows]

    def latest_state(self, facility: str, flow: str) -> StateRow | None:
        with self._connection() as conn:
            row = conn.execute(LATEST_SNAPSHOT_SQL, (facility, flow)).fetchone()
        return StateRow(row[0], list(row[1])) if row else None

    def series(self, facility: str) -> list[str]:
        """Every series the facility's locomotives were ever identified as (for colours)."""
        with self._connection() as conn:
            rows = conn.execute(
                "SELECT DISTINCT series FROM locomotive_events WHERE facility_id = %s "
                "AND kind = 'identified' AND series IS NOT NULL",
                (facility,),
            ).fetchall()
        return sorted(r[0] for r in rows)

    def moves(self, facility: str, flow: str, start: datetime, end: datetime) -> tuple[int, int]:
        """Arrivals and departures in [start, end)."""
        with self._connection() as conn:
            row = conn.execute(
                "SELECT count(*) FILTER (WHERE kind = 'arrived'), "
                "       count(*) FILTER (WHERE kind = 'departed') "
                "FROM locomotive_events WHERE facility_id = %s AND flow = %s "
                "AND kind IN ('arrived', 'departed') AND time >= %s AND time < %s",
                (facility, flow, start, end),
            ).fetchone()
        return (int(row[0]), int(row[1])) if row else (0, 0)

    def cameras(self, facility: str, camera_ids: Sequence[str], since: datetime) -> list[CameraRow]:
        """The newest health row of each camera since ``since`` (one index probe each)."""
        with self._connection() as conn:
            rows = conn.execute(
                CAMERA_REPORTS_SQL,
                {"ids": list(camera_ids), "facility": facility, "since": since},
            ).fetchall()
        return [
            CameraRow(
                camera_id=r[0],
                time=r[1],
                state=r[2] or "no data",
                fps=float(r[3] or 0.0),
                last_frame_time=r[4],
                reconnects=int(r[5] or 0),
                decode_errors=int(r[6] or 0),
                message=r[7] or "",
            )
            for r in rows
        ]

    def gateways(self, facility: str) -> list[GatewayRow]:
        """Every gateway that ever sent for ``facility``, with its last stored batch."""
        with self._connection() as conn:
            rows = conn.execute(GATEWAY_REPORTS_SQL, (facility,)).fetchall()
        return [GatewayRow(r[0], r[1]) for r in rows]

    def stays(self, facility: str, flow: str, start: datetime, end: datetime) -> list[Stay]:
        params = {
            "facility": facility,
            "flow": flow,
            "from": start,
            "to": end,
            "lookback": REST_LOOKBACK,
        }
        with self._connection() as conn:
            rows = conn.execute(STAYS_SQL, params).fetchall()
        return [Stay(*row) for row in rows]

    def report(self, name: str, where: ReportRange) -> tuple[list[str], list[dict[str, Any]]]:
        """A report of cloud/reports (the same SQL as ``locowatch report``) as dict rows."""
        with self._connection() as conn:
            columns, rows = report_rows(conn, name, where)
        return columns, [dict(zip(columns, row, strict=True)) for row in rows]

    def sampled_states(
        self,
        facility: str,
        flows: Sequence[str],
        start: datetime,
        end: datetime,
        bucket: timedelta,
    ) -> dict[str, dict[datetime, list[dict[str, Any]]]]:
        """Per flow, the newest snapshot in each ``bucket`` of [start, end)."""
        params = {
            "facility": facility,
            "flows": list(flows),
            "from": start,
            "to": end,
            "bucket": bucket,
        }
        out: dict[str, dict[datetime, list[dict[str, Any]]]] = {flow: {} for flow in flows}
        with self._connection() as conn:
            for flow, at, locos in conn.execute(SAMPLED_SQL, params):
                out[flow][at] = list(locos)
        return out
