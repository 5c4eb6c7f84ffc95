"""Every kind of bad envelope gets its reason and a detail that names the problem."""

from __future__ import annotations

import math
import pickle
from collections.abc import Callable

import pytest

from cloud.records import (
    AttributeRecord,
    HealthRecord,
    PositionRecord,
    Rejected,
    as_plain,
    from_plain,
)
from cloud.validation import FacilityCatalog, Validator
from locowatch.v1 import estimation_pb2, health_pb2, uplink_pb2
from sim.twin import Twin

NOW = 1_793_600_000.0


@pytest.fixture(scope="module")
def validator(twin: Twin) -> Validator:
    return Validator(FacilityCatalog.from_config(twin.facility), "gw-test")


def position(**changes: object) -> uplink_pb2.Envelope:
    p = estimation_pb2.PositionEstimation(camera_id="cam-01", confidence=0.9)
    p.capture_time.FromSeconds(int(NOW) - 10)
    p.provenance.flow = "prod"
    p.covered.track_id, p.covered.start_m, p.covered.end_m = "T1", 0.0, 23.5
    p.intervals.add(start_m=5.0, end_m=20.0, start_kind=1, end_kind=2, confidence=0.8)
    envelope = uplink_pb2.Envelope(seq=7, position=p)
    for path, value in changes.items():
        _set(envelope.position, path, value)
    return envelope


def blind(start_m: float, end_m: float, kind: int) -> uplink_pb2.Envelope:
    envelope = position()
    envelope.position.blind.add(start_m=start_m, end_m=end_m, kind=kind)  # type: ignore[arg-type]
    return envelope


def attribute(**changes: object) -> uplink_pb2.Envelope:
    a = estimation_pb2.AttributeEstimation(
        camera_id="cam-01", name="plate", value="ЧМЭ3-1234", confidence=0.9, track_id="T1"
    )
    a.capture_time.FromSeconds(int(NOW) - 10)
    a.provenance.flow = "prod"
    a.position_m = 12.0
    envelope = uplink_pb2.Envelope(seq=8, attribute=a)
    for path, value in changes.items():
        _set(envelope.attribute, path, value)
    return envelope


def health(**changes: object) -> uplink_pb2.Envelope:
    h = health_pb2.CameraHealth(camera_id="cam-01", state=2, fps=2.0)
    h.observed_time.FromSeconds(int(NOW) - 1)
    envelope = uplink_pb2.Envelope(seq=9, camera_health=h)
    for path, value in changes.items():
        _set(envelope.camera_health, path, value)
    return envelope


def _set(message: object, path: str, value: object) -> None:
    *parents, leaf = path.split("__")
    for part in parents:
        message = message[int(part)] if part.isdigit() else getattr(message, part)  # type: ignore[index]
    if leaf in {"capture_time", "observed_time"}:
        getattr(message, leaf).FromSeconds(int(value))  # type: ignore[call-overload]
    else:
        setattr(message, leaf, value)


CASES: list[tuple[str, Callable[[], uplink_pb2.Envelope], str, str]] = [
    ("nan end", lambda: position(intervals__0__end_m=math.nan), "NOT_FINITE", "intervals[0]"),
    ("inf covered", lambda: position(covered__end_m=math.inf), "NOT_FINITE", "covered"),
    ("nan confidence", lambda: position(confidence=math.nan), "NOT_FINITE", "confidence"),
    ("off the track", lambda: position(covered__end_m=400.0), "OUT_OF_RANGE", "not inside track"),
    (
        "interval outside view",
        lambda: position(intervals__0__end_m=60.0),
        "OUT_OF_RANGE",
        "outside the covered",
    ),
    (
        "start after end",
        lambda: position(intervals__0__start_m=21.0, intervals__0__end_m=6.0),
        "OUT_OF_RANGE",
        "intervals[0]",
    ),
    ("confidence > 1", lambda: position(confidence=1.5), "OUT_OF_RANGE", "outside [0, 1]"),
    # blind spans: stretches the camera could not judge, inside what it covers
    ("blind outside view", lambda: blind(20.0, 40.0, 1), "OUT_OF_RANGE", "blind[0]"),
    ("blind backwards", lambda: blind(12.0, 8.0, 1), "OUT_OF_RANGE", "blind[0]"),
    ("nan blind", lambda: blind(math.nan, 8.0, 1), "NOT_FINITE", "blind[0]"),
    ("blind of no kind", lambda: blind(2.0, 8.0, 0), "MALFORMED", "no kind"),
    ("future capture", lambda: position(capture_time=NOW + 3600), "OUT_OF_RANGE", "future"),
    ("no capture time", lambda: position(capture_time=0), "MALFORMED", "capture time"),
    ("unknown camera", lambda: position(camera_id="cam-99"), "UNKNOWN_CAMERA", "cam-99"),
    ("unknown track", lambda: position(covered__track_id="T9"), "UNKNOWN_TRACK", "T9"),
    ("track not viewed", lambda: position(covered__track_id="T2"), "UNKNOWN_TRACK", "does not"),
    ("unknown flow", lambda: position(provenance__flow="staging"), "UNKNOWN_FLOW", "staging"),
    ("no payload", lambda: uplink_pb2.Envelope(seq=3), "MALFORMED", "no payload"),
    (
        "unconfigured attribute",
        lambda: attribute(name="pantograph"),
        "MALFORMED",
        "pantograph",
    ),
    ("empty value", lambda: attribute(value=""), "MALFORMED", "empty value"),
    ("attribute off track", lambda: attribute(position_m=-30.0), "OUT_OF_RANGE", "off track"),
    ("nan position", lambda: attribute(position_m=math.nan), "NOT_FINITE", "position_m"),
    ("health unknown camera", lambda: health(camera_id="x"), "UNKNOWN_CAMERA", "'x'"),
    ("health without state", lambda: health(state=0), "MALFORMED", "without a state"),
    ("negative fps", lambda: health(fps=-1.0), "OUT_OF_RANGE", "negative"),
    # PostgreSQL text cannot hold NUL: one such string would fail its whole batch's COPY
    ("nul in value", lambda: attribute(value="ЧМЭ3\x001234"), "MALFORMED", "NUL"),
    ("nul in version", lambda: position(provenance__model_version="v\x001"), "MALFORMED", "NUL"),
    ("nul in message", lambda: health(message="lost\x00"), "MALFORMED", "message"),
]


@pytest.mark.parametrize(("name", "make", "reason", "detail"), CASES, ids=[c[0] for c in CASES])
def test_bad_envelopes_are_refused_with_a_reason(
    validator: Validator,
    name: str,
    make: Callable[[], uplink_pb2.Envelope],
    reason: str,
    detail: str,
) -> None:
    outcome = validator.check(make(), now=NOW)
    assert isinstance(outcome, Rejected), name
    assert outcome.reason == reason
    assert detail in outcome.detail


def test_good_envelopes_become_records(validator: Validator) -> None:
    p = validator.check(position(), now=NOW)
    assert isinstance(p, PositionRecord)
    assert p.intervals[0].start_real and not p.intervals[0].end_real
    assert (p.origin.gateway_id, p.origin.seq, p.track_id) == ("gw-test", 7, "T1")
    a = validator.check(attribute(), now=NOW)
    assert isinstance(a, AttributeRecord) and a.value == "ЧМЭ3-1234"
    h = validator.check(health(), now=NOW)
    assert isinstance(h, HealthRecord) and h.state == "streaming"


def test_a_small_overshoot_is_clamped_to_the_track(validator: Validator) -> None:
    """Calibration error may put an end a few centimetres before metre 0: keep it, clamped."""
    envelope = position(covered__start_m=-0.2, intervals__0__start_m=-0.1)
    outcome = validator.check(envelope, now=NOW)
    assert isinstance(outcome, PositionRecord)
    assert outcome.covered_start_m == 0.0 and outcome.intervals[0].start_m == 0.0


def test_records_handed_to_the_fse_process_arrive_equal(validator: Validator) -> None:
    """Ingest packs records for the FSE process; what arrives must be the same records."""
    two = position()
    two.position.intervals.add(start_m=21.0, end_m=23.0, start_kind=2, end_kind=1)
    two.position.blind.add(start_m=0.0, end_m=4.5, kind=estimation_pb2.BLIND_KIND_HIDDEN)
    two.position.blind.add(start_m=23.0, end_m=23.5, kind=estimation_pb2.BLIND_KIND_OUT_OF_VIEW)
    none = position()
    del none.position.intervals[:]
    alternatives = attribute()
    alternatives.attribute.alternatives.add(value="ЧМЭ3-1284", confidence=0.25)
    envelopes = [position(), two, none, attribute(), alternatives, health()]
    records = [validator.check(e, now=NOW) for e in envelopes]
    assert not any(isinstance(r, Rejected) for r in records)
    unpacked = from_plain(pickle.loads(pickle.dumps(as_plain(records))))  # type: ignore[arg-type]
    assert unpacked == records
    assert [type(r) for r in unpacked] == [type(r) for r in records]
    assert isinstance(unpacked[1], PositionRecord) and unpacked[1].intervals[1].end_real
    assert [tuple(b) for b in unpacked[1].blind] == [(0.0, 4.5, True), (23.0, 23.5, False)]
