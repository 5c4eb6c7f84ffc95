"""The messages plant systems receive, one builder each (docs/integration.md has the
schema). Every message names its schema and version, its facility and flow, and carries
an idempotency key: the same fact always has the same key, so a receiver that saw it once
can drop a resend."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

EVENT_SCHEMA = "locowatch.event/1"
ALERT_SCHEMA = "locowatch.alert/1"
LOCOMOTIVE_SCHEMA = "locowatch.locomotive/1"
TRACK_SCHEMA = "locowatch.track/1"
FACILITY_SCHEMA = "locowatch.facility/1"


def iso(t: float | datetime) -> str:
    moment = t if isinstance(t, datetime) else datetime.fromtimestamp(t, UTC)
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def event_key(
    facility: str, flow: str, loco_id: str, kind: str, time: float, ordinal: int = 0
) -> str:
    """The FSE is deterministic, so a replayed event gets its key again; ``ordinal`` tells
    apart events of one locomotive, kind and instant (series and plate identified in
    one tick)."""
    key = f"{facility}/{flow}/{loco_id}/{kind}/{time:.3f}"
    return key if ordinal == 0 else f"{key}#{ordinal}"


def event_message(
    facility: str,
    flow: str,
    *,
    time: float,
    kind: str,
    loco_id: str,
    track: str,
    tail_m: float,
    head_m: float,
    station: str | None,
    series: str | None,
    plate: str | None,
    detail: dict[str, Any],
    ordinal: int = 0,
) -> dict[str, Any]:
    """arrived, moved, stopped, identified, departed: as the FSE wrote it."""
    return {
        "schema": EVENT_SCHEMA,
        "key": event_key(facility, flow, loco_id, kind, time, ordinal),
        "facility": facility,
        "flow": flow,
        "time": iso(time),
        "kind": kind,
        "locomotive": {
            "id": loco_id,
            "track": track,
            "tail_m": round(tail_m, 2),
            "head_m": round(head_m, 2),
            "station": station,
            "series": series,
            "plate": plate,
        },
        "detail": detail,
    }


def alert_message(
    facility: str,
    flow: str,
    *,
    alert_id: int,
    state: str,
    rule: str,
    subject: str,
    severity: str,
    message: str,
    fired_at: datetime,
    resolved_at: datetime | None,
    detail: dict[str, Any],
) -> dict[str, Any]:
    """An alert fired (``state`` "firing") or resolved ("resolved")."""
    return {
        "schema": ALERT_SCHEMA,
        "key": f"{facility}/{flow}/alert/{alert_id}/{state}",
        "facility": facility,
        "flow": flow,
        "time": iso(resolved_at or fired_at),
        "state": state,
        "alert": {
            "id": alert_id,
            "rule": rule,
            "subject": subject,
            "severity": severity,
            "message": message,
            "fired_at": iso(fired_at),
            "resolved_at": iso(resolved_at) if resolved_at else None,
            "detail": detail,
        },
    }


def locomotive_message(facility: str, flow: str, loco: dict[str, Any]) -> dict[str, Any]:
    """A locomotive's current state (retained): what the snapshot says of it. No snapshot
    time in retained messages: they are sent again only when something in them changed."""
    return {
        "schema": LOCOMOTIVE_SCHEMA,
        "facility": facility,
        "flow": flow,
        "id": loco["id"],
        "track": loco["track"],
        "tail_m": round(float(loco["tail_m"]), 2),
        "head_m": round(float(loco["head_m"]), 2),
        "station": loco.get("station"),
        "series": loco.get("series"),
        "plate": loco.get("plate"),
        "since": iso(float(loco["since"])),
        "stale": bool(loco.get("stale")),
    }


def track_message(
    facility: str, flow: str, track: str, locos: list[dict[str, Any]]
) -> dict[str, Any]:
    """A track's current state (retained): its locomotives, tail first."""
    ordered = sorted(locos, key=lambda loco: float(loco["tail_m"]))
    return {
        "schema": TRACK_SCHEMA,
        "facility": facility,
        "flow": flow,
        "track": track,
        "count": len(ordered),
        "locomotives": [loco["id"] for loco in ordered],
    }


def facility_message(
    facility: str, flow: str, locos: list[dict[str, Any]], tracks: list[str]
) -> dict[str, Any]:
    """The facility's counts (retained)."""
    return {
        "schema": FACILITY_SCHEMA,
        "facility": facility,
        "flow": flow,
        "count": len(locos),
        "per_track": {t: sum(loco["track"] == t for loco in locos) for t in tracks},
        "stale": sum(bool(loco.get("stale")) for loco in locos),
    }
