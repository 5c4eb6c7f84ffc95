"""Alert rules (cloud.yaml ``plant.alerts``) judged on the facility as it is now.

``evaluate`` says which alerts should be open; ``AlertBook`` compares that with the open
ones in the database and writes what changed (fired, resolved) and its outbox message in
one transaction. An alert that fires stays open, the same row, until its condition ends;
then it is resolved, and the resolution is sent too. Facility-wide alerts (cameras,
gateways) carry the flow ``health``.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from psycopg_pool import ConnectionPool

from cloud.plant.config import (
    AlertRule,
    DwellRule,
    FlowDisagreementRule,
    SilentRule,
    UnplannedTrackRule,
)
from cloud.plant.payloads import alert_message

log = logging.getLogger(__name__)
HEALTH_FLOW = "health"

AlertKey = tuple[str, str, str, str]  # facility, flow, rule, subject


@dataclass(frozen=True)
class Alert:
    severity: str
    message: str
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass
class FacilityNow:
    """What the rules look at, for one facility."""

    facility_id: str
    states: dict[str, tuple[float, list[dict[str, Any]]]]  # flow -> (time, locomotives)
    cameras: dict[str, datetime | None]  # camera -> its last report
    gateways: dict[str, datetime]  # gateway -> its last stored batch


@dataclass
class Disagreements:
    """Since when two flows have counted differently (kept between evaluations)."""

    since: dict[tuple[str, str, str], float] = field(default_factory=dict)

    def lasting(self, key: tuple[str, str, str], differ: bool, now: float) -> float:
        if not differ:
            self.since.pop(key, None)
            return 0.0
        return now - self.since.setdefault(key, now)


def evaluate(
    rules: list[AlertRule], facility: FacilityNow, now: datetime, memory: Disagreements
) -> dict[AlertKey, Alert]:
    """The alerts that should be open now, by (facility, flow, rule, subject)."""
    out: dict[AlertKey, Alert] = {}
    for rule in rules:
        if isinstance(rule, DwellRule):
            out.update(_dwell(rule, facility))
        elif isinstance(rule, UnplannedTrackRule):
            out.update(_unplanned(rule, facility))
        elif isinstance(rule, SilentRule):
            out.update(_silent(rule, facility, now))
        else:
            out.update(_disagreement(rule, facility, now, memory))
    return out


def _dwell(rule: DwellRule, facility: FacilityNow) -> dict[AlertKey, Alert]:
    out = {}
    for flow, (time, locos) in facility.states.items():
        for loco in locos:
            hours = (time - float(loco["since"])) / 3600
            if hours <= rule.max_hours:
                continue
            if rule.station and loco.get("station") != rule.station:
                continue
            if rule.series and loco.get("series") != rule.series:
                continue
            where = loco.get("station") or f"track {loco['track']}"
            out[(facility.facility_id, flow, rule.name, loco["id"])] = Alert(
                rule.severity,
                f"{_named(loco)} at {where} for {_duration(hours)} (limit {rule.max_hours:g} h)",
                {"hours": round(hours, 2), "station": loco.get("station")},
            )
    return out


def _unplanned(rule: UnplannedTrackRule, facility: FacilityNow) -> dict[AlertKey, Alert]:
    out = {}
    for flow, (_, locos) in facility.states.items():
        for loco in locos:
            planned = rule.allowed.get(loco.get("series") or "")
            if planned is not None and loco["track"] not in planned:
                out[(facility.facility_id, flow, rule.name, loco["id"])] = Alert(
                    rule.severity,
                    f"{_named(loco)} on track {loco['track']}, planned for {', '.join(planned)}",
                    {"track": loco["track"], "planned": planned},
                )
    return out


def _silent(rule: SilentRule, facility: FacilityNow, now: datetime) -> dict[AlertKey, Alert]:
    cameras = rule.kind == "camera_silent"
    reports: dict[str, datetime | None] = dict(facility.cameras if cameras else facility.gateways)
    out = {}
    for subject, last in reports.items():
        if last is not None and (now - last).total_seconds() <= rule.after_minutes * 60:
            continue
        since = "ever" if last is None else f"{last:%Y-%m-%d %H:%M} UTC"
        out[(facility.facility_id, HEALTH_FLOW, rule.name, subject)] = Alert(
            rule.severity,
            f"{'camera' if cameras else 'gateway'} {subject}: no report since {since}",
            {"last_report": last.isoformat() if last else None},
        )
    return out


def _disagreement(
    rule: FlowDisagreementRule, facility: FacilityNow, now: datetime, memory: Disagreements
) -> dict[AlertKey, Alert]:
    first, second = rule.flows
    if first not in facility.states or second not in facility.states:
        return {}
    counts = [len(facility.states[f][1]) for f in (first, second)]
    key = (facility.facility_id, first, second)
    lasting = memory.lasting(key, counts[0] != counts[1], now.timestamp())
    if lasting < rule.for_minutes * 60:
        return {}
    return {
        (facility.facility_id, first, rule.name, f"{first}-vs-{second}"): Alert(
            rule.severity,
            f"{first} counts {counts[0]}, {second} {counts[1]} for {lasting / 60:.0f} min",
            {"counts": dict(zip(rule.flows, counts, strict=True))},
        )
    }


def _duration(hours: float) -> str:
    return f"{hours:.1f} h" if hours >= 1 else f"{hours * 60:.0f} min"


def _named(loco: dict[str, Any]) -> str:
    name = " ".join(str(p) for p in (loco.get("plate"), loco.get("series")) if p)
    return f"{loco['id']} ({name})" if name else str(loco["id"])


class AlertBook:
    """The open alerts in the database, moved to what ``evaluate`` says."""

    def __init__(self, pool: ConnectionPool[Any]) -> None:
        self.pool = pool

    def open_alerts(self, facilities: list[str]) -> dict[AlertKey, int]:
        with self.pool.connection() as conn:
            rows = conn.execute(
                "SELECT facility_id, flow, rule, subject, id FROM alerts "
                "WHERE resolved_at IS NULL AND facility_id = ANY(%s)",
                (facilities,),
            ).fetchall()
        return {(r[0], r[1], r[2], r[3]): int(r[4]) for r in rows}

    def apply(
        self, facilities: list[str], wanted: dict[AlertKey, Alert], now: datetime
    ) -> tuple[int, int]:
        """Fire what is wanted and not open, resolve what is open and not wanted: the
        rows and their outbox messages in one transaction. (fired, resolved)."""
        opened = self.open_alerts(facilities)
        fire = [key for key in wanted if key not in opened]
        resolve = [key for key in opened if key not in wanted]
        if not fire and not resolve:
            return 0, 0
        with self.pool.connection() as conn, conn.transaction():
            for key in fire:
                facility, flow, rule, subject = key
                alert = wanted[key]
                row = conn.execute(
                    "INSERT INTO alerts (facility_id, flow, rule, subject, severity, message, "
                    "fired_at, detail) VALUES (%s, %s, %s, %s, %s, %s, %s, %s) RETURNING id",
                    (facility, flow, rule, subject, alert.severity, alert.message, now,
                     json.dumps(alert.detail)),
                ).fetchone()  # fmt: skip
                assert row is not None
                self._outbox(conn, key, int(row[0]), "firing", alert, now, None)
                log.warning("alert %s fired: %s", rule, alert.message)
            for key in resolve:
                row = conn.execute(
                    "UPDATE alerts SET resolved_at = %s WHERE id = %s "
                    "RETURNING severity, message, fired_at, detail",
                    (now, opened[key]),
                ).fetchone()
                assert row is not None
                alert = Alert(row[0], row[1], row[3])
                self._outbox(conn, key, opened[key], "resolved", alert, row[2], now)
                log.info("alert %s resolved: %s", key[2], alert.message)
        return len(fire), len(resolve)

    @staticmethod
    def _outbox(
        conn: Any,
        key: AlertKey,
        alert_id: int,
        state: str,
        alert: Alert,
        fired_at: datetime,
        resolved_at: datetime | None,
    ) -> None:
        facility, flow, rule, subject = key
        message = alert_message(
            facility, flow, alert_id=alert_id, state=state, rule=rule, subject=subject,
            severity=alert.severity, message=alert.message, fired_at=fired_at,
            resolved_at=resolved_at, detail=alert.detail,
        )  # fmt: skip
        conn.execute(
            "INSERT INTO outbox (facility_id, flow, kind, key, payload) "
            "VALUES (%s, %s, 'alert', %s, %s)",
            (facility, flow, message["key"], json.dumps(message)),
        )


def utc_now() -> datetime:
    return datetime.now(UTC)
