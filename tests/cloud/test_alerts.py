"""Alert rules on a facility as it is: what fires, for what subject, and for how long a
disagreement must last."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from pydantic import TypeAdapter

from cloud.plant.alerts import HEALTH_FLOW, Disagreements, FacilityNow, evaluate
from cloud.plant.config import AlertRule

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
RULES = TypeAdapter(list[AlertRule]).validate_python([
    {"name": "long-dwell", "kind": "dwell", "max_hours": 48},
    {"name": "paint-dwell", "kind": "dwell", "max_hours": 2, "station": "T3-S2"},
    {"name": "camera-dark", "kind": "camera_silent", "after_minutes": 10},
    {"name": "gateway-silent", "kind": "gateway_silent", "after_minutes": 5,
     "severity": "critical"},
    {"name": "wrong-track", "kind": "unplanned_track", "allowed": {"ТЭП70": ["T1", "T2"]}},
    {"name": "disagree", "kind": "flow_disagreement", "flows": ["prod", "dev"], "for_minutes": 10},
])  # fmt: skip


def loco(loco_id: str, track: str, station: str | None, series: str, hours: float) -> dict:  # type: ignore[type-arg]
    since = (NOW - timedelta(hours=hours)).timestamp()
    return {"id": loco_id, "track": track, "station": station, "series": series,
            "plate": None, "since": since, "tail_m": 10.0, "head_m": 30.0}  # fmt: skip


def depot(dev_count: int = 3) -> FacilityNow:
    prod = [
        loco("fse-1", "T1", "T1-S1", "ТЭП70", 50),  # long dwell
        loco("fse-2", "T3", "T3-S2", "ВЛ80С", 3),  # long at the paint shop
        loco("fse-3", "T4", None, "ТЭП70", 1),  # on a track not planned for it
    ]
    dev = prod[:dev_count]
    return FacilityNow(
        "depot",
        {"prod": (NOW.timestamp(), prod), "dev": (NOW.timestamp(), dev)},
        {"cam-01": NOW - timedelta(minutes=1), "cam-02": NOW - timedelta(minutes=11),
         "cam-03": None},
        {"gw-1": NOW - timedelta(minutes=6)},
    )  # fmt: skip


def test_each_rule_fires_for_its_subject() -> None:
    fired = evaluate(RULES, depot(), NOW, Disagreements())
    keys = {(flow, rule, subject) for _, flow, rule, subject in fired}
    assert ("prod", "long-dwell", "fse-1") in keys and ("dev", "long-dwell", "fse-1") in keys
    assert ("prod", "paint-dwell", "fse-2") in keys
    assert ("prod", "long-dwell", "fse-2") not in keys  # 3 h is not 48
    assert ("prod", "wrong-track", "fse-3") in keys
    assert ("prod", "wrong-track", "fse-1") not in keys  # T1 is planned for ТЭП70
    assert {s for f, r, s in keys if r == "camera-dark"} == {"cam-02", "cam-03"}
    assert (HEALTH_FLOW, "gateway-silent", "gw-1") in keys
    gateway = fired[("depot", HEALTH_FLOW, "gateway-silent", "gw-1")]
    assert gateway.severity == "critical" and "no report since 2026-12-07 11:54" in gateway.message
    assert "for 50.0 h (limit 48 h)" in fired[("depot", "prod", "long-dwell", "fse-1")].message


def test_flows_must_disagree_for_the_whole_time_before_it_fires() -> None:
    memory = Disagreements()
    key = ("depot", "prod", "disagree", "prod-vs-dev")
    assert key not in evaluate(RULES, depot(dev_count=2), NOW, memory)
    later = NOW + timedelta(minutes=9)
    assert key not in evaluate(RULES, depot(dev_count=2), later, memory)
    fired = evaluate(RULES, depot(dev_count=2), NOW + timedelta(minutes=10), memory)
    assert fired[key].message == "prod counts 3, dev 2 for 10 min"
    assert key not in evaluate(RULES, depot(), NOW + timedelta(minutes=11), memory)  # agree
    # agreeing once starts the clock again
    assert key not in evaluate(RULES, depot(dev_count=2), NOW + timedelta(minutes=15), memory)
