"""Check every envelope a gateway sends against its facility before anything is stored.

A bad envelope is refused alone, with a reason from the protocol (``RejectReason``) and a
detail a person can act on; the rest of its batch goes on. The checks, in order:
payload present, numbers finite, camera/track/flow known to the gateway's facility,
values in range (intervals on the track and inside what the camera covers, confidences
in [0, 1], capture times not in the future).
"""

from __future__ import annotations

import math
import sys
import time
from dataclasses import dataclass, field

from google.protobuf import timestamp_pb2

from cloud.records import (
    AttributeRecord,
    HealthRecord,
    Interval,
    Origin,
    PositionRecord,
    Record,
    Rejected,
    fast_new,
)
from locowatch.facility.config import FacilityConfig
from locowatch.v1 import estimation_pb2, health_pb2, uplink_pb2

SLACK_M = 1.0  # how far an interval may poke past what the camera covers (calibration error)
MAX_FUTURE_S = 300.0  # capture clocks ahead of ours by more than this are refused
MAX_TEXT = 128
MAX_MESSAGE = 1000  # a camera health message is cut to this, not refused
REAL = estimation_pb2.END_KIND_REAL
# Names that repeat in every record (flows, cameras, tracks, versions) are interned: one
# string object each, which the FSE hand-over pickles once per batch, not once per record.
intern = sys.intern


class InvalidEnvelopeError(ValueError):
    """One envelope's problem; ``reason`` is a ``RejectReason`` name without its prefix."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


@dataclass(frozen=True)
class FacilityCatalog:
    """What ingest needs to know of one facility to judge its gateways' data."""

    facility_id: str
    track_lengths: dict[str, float]
    # camera id -> track id -> (start_m, end_m) of the camera's view of that track
    camera_views: dict[str, dict[str, tuple[float, float]]]
    # flow name -> attribute names configured for it
    flows: dict[str, frozenset[str]] = field(default_factory=dict)

    @classmethod
    def from_config(cls, config: FacilityConfig) -> FacilityCatalog:
        return cls(
            facility_id=config.facility.id,
            track_lengths={t.id: t.length_m for t in config.tracks},
            camera_views={
                c.id: {v.track: (v.start_m, v.end_m) for v in c.views} for c in config.cameras
            },
            flows={f.name: frozenset(f.attributes) for f in config.flows},
        )


class Validator:
    """Turns envelopes from one gateway into records, or says why not."""

    def __init__(self, catalog: FacilityCatalog, gateway_id: str) -> None:
        self.catalog = catalog
        self.gateway_id = gateway_id

    def check(self, envelope: uplink_pb2.Envelope, now: float | None = None) -> Record | Rejected:
        origin = fast_new(Origin, (self.catalog.facility_id, self.gateway_id, envelope.seq))
        try:
            kind = envelope.WhichOneof("payload")
            if kind == "position":
                return self._position(origin, envelope.position, now)
            if kind == "attribute":
                return self._attribute(origin, envelope.attribute, now)
            if kind == "camera_health":
                return self._health(origin, envelope.camera_health, now)
            raise InvalidEnvelopeError("MALFORMED", "envelope carries no payload")
        except InvalidEnvelopeError as problem:
            return Rejected(origin, problem.reason, str(problem))

    # -- payloads -------------------------------------------------------------------------

    def _position(
        self, origin: Origin, p: estimation_pb2.PositionEstimation, now: float | None
    ) -> PositionRecord:
        # The hot path of ingest (tens of thousands per second): fields are read once into
        # locals, and every number meets one chained range check, which NaN and inf fail
        # too; only then does the slow search say what was wrong (non-finite first).
        flow = self._flow(p.provenance.flow)
        camera_id = intern(p.camera_id)
        views = self._camera(camera_id)
        span = p.covered
        track_id = intern(span.track_id)
        self._viewed(camera_id, views, track_id)
        start, end, confidence = span.start_m, span.end_m, p.confidence
        length = self.catalog.track_lengths[track_id]
        if not (-SLACK_M <= start <= end <= length + SLACK_M and 0.0 <= confidence <= 1.0):
            _which_not_finite(p)
            if not -SLACK_M <= start <= end <= length + SLACK_M:
                raise InvalidEnvelopeError(
                    "OUT_OF_RANGE",
                    f"covered [{start:g}, {end:g}] m is not inside track {track_id!r} "
                    f"(0..{length:g} m)",
                )
            _unit("confidence", confidence)
        low, high = start - SLACK_M, end + SLACK_M
        intervals: list[Interval] = []
        if p.intervals:  # (iterating an empty repeated field is not free)
            for i in p.intervals:
                a, b, c = i.start_m, i.end_m, i.confidence
                if not (low <= a <= b <= high and 0.0 <= c <= 1.0):
                    _bad_interval(p, len(intervals), low, high)
                ends = i.start_kind == REAL, i.end_kind == REAL
                intervals.append(fast_new(Interval, (max(a, 0.0), min(b, length), *ends, c)))
        provenance = p.provenance
        return fast_new(  # PositionRecord(...)
            PositionRecord,
            (
                origin,
                _capture_time(p.capture_time, now),
                flow,
                camera_id,
                track_id,
                max(start, 0.0),
                min(end, length),
                confidence,
                tuple(intervals),
                intern(_text("model_version", provenance.model_version)),
                intern(_text("engine", provenance.engine)),
            ),
        )

    def _attribute(
        self, origin: Origin, a: estimation_pb2.AttributeEstimation, now: float | None
    ) -> AttributeRecord:
        flow = self._flow(a.provenance.flow)
        name, camera_id, track_id = intern(a.name), intern(a.camera_id), intern(a.track_id)
        if name not in self.catalog.flows[flow]:
            raise InvalidEnvelopeError(
                "MALFORMED", f"attribute {name!r} is not configured in flow {flow!r}"
            )
        self._viewed(camera_id, self._camera(camera_id), track_id)
        position, confidence = a.position_m, a.confidence
        length = self.catalog.track_lengths[track_id]
        alternatives = (
            tuple((_text("alternative", c.value), c.confidence) for c in a.alternatives)
            if a.alternatives
            else ()
        )
        if not (
            -SLACK_M <= position <= length + SLACK_M
            and 0.0 <= confidence <= 1.0
            and all(0.0 <= c <= 1.0 for _, c in alternatives)
        ):
            _finite("position_m", position)
            _finite("confidence", confidence, *(c for _, c in alternatives))
            if not -SLACK_M <= position <= length + SLACK_M:
                raise InvalidEnvelopeError(
                    "OUT_OF_RANGE",
                    f"position {position:g} m is off track {track_id!r} (0..{length:g} m)",
                )
            _unit("confidence", confidence, *(c for _, c in alternatives))
        if not a.value:
            raise InvalidEnvelopeError("MALFORMED", f"attribute {name!r} has an empty value")
        provenance = a.provenance
        return AttributeRecord(
            origin,
            _capture_time(a.capture_time, now),
            flow,
            camera_id,
            name,
            intern(_text("value", a.value)),
            confidence,
            track_id,
            min(max(position, 0.0), length),
            alternatives,
            intern(_text("model_version", provenance.model_version)),
            intern(_text("engine", provenance.engine)),
        )

    def _health(
        self, origin: Origin, h: health_pb2.CameraHealth, now: float | None
    ) -> HealthRecord:
        self._camera(h.camera_id)
        if h.state == health_pb2.CAMERA_STATE_UNSPECIFIED:
            raise InvalidEnvelopeError(
                "MALFORMED", f"camera {h.camera_id!r}: health without a state"
            )
        _finite("fps", h.fps)
        if h.fps < 0:
            raise InvalidEnvelopeError("OUT_OF_RANGE", f"fps {h.fps:g} is negative")
        state = health_pb2.CameraState.Name(h.state).removeprefix("CAMERA_STATE_").lower()
        last = h.last_frame_time
        last_frame = last.seconds + last.nanos * 1e-9 if h.HasField("last_frame_time") else None
        return HealthRecord(
            origin=origin,
            time=_capture_time(h.observed_time, now),
            camera_id=intern(h.camera_id),
            state=intern(state),
            fps=h.fps,
            last_frame_time=last_frame,
            reconnects=h.reconnects,
            decode_errors=h.decode_errors,
            message=_text("message", h.message[:MAX_MESSAGE], MAX_MESSAGE),
        )

    # -- shared checks --------------------------------------------------------------------

    def _flow(self, flow: str) -> str:
        if flow not in self.catalog.flows:
            known = ", ".join(sorted(self.catalog.flows))
            raise InvalidEnvelopeError(
                "UNKNOWN_FLOW", f"flow {flow!r} is not configured (known: {known})"
            )
        return intern(flow)

    def _viewed(self, camera_id: str, views: dict[str, tuple[float, float]], track_id: str) -> None:
        """Refuse a track the facility lacks, or one this camera does not view."""
        if track_id not in views:
            known = track_id in self.catalog.track_lengths
            raise InvalidEnvelopeError(
                "UNKNOWN_TRACK",
                f"camera {camera_id!r} does not view {track_id!r}"
                if known
                else f"track {track_id!r} is not in the facility",
            )

    def _camera(self, camera_id: str) -> dict[str, tuple[float, float]]:
        views = self.catalog.camera_views.get(camera_id)
        if views is None:
            raise InvalidEnvelopeError(
                "UNKNOWN_CAMERA",
                f"camera {camera_id!r} is not in facility {self.catalog.facility_id!r}",
            )
        return views


def _which_not_finite(p: estimation_pb2.PositionEstimation) -> None:
    _finite("covered", p.covered.start_m, p.covered.end_m)
    _finite("confidence", p.confidence)
    for index, i in enumerate(p.intervals):
        _finite(f"intervals[{index}]", i.start_m, i.end_m, i.confidence)


def _bad_interval(
    p: estimation_pb2.PositionEstimation, index: int, low: float, high: float
) -> None:
    """Raise what is wrong with ``p.intervals[index]``, which failed its range check."""
    _which_not_finite(p)
    i = p.intervals[index]
    if not low <= i.start_m <= i.end_m <= high:
        raise InvalidEnvelopeError(
            "OUT_OF_RANGE",
            f"intervals[{index}] [{i.start_m:g}, {i.end_m:g}] m lies outside the covered "
            f"[{p.covered.start_m:g}, {p.covered.end_m:g}] m",
        )
    _unit(f"intervals[{index}].confidence", i.confidence)


def _finite(what: str, *values: float) -> None:
    for value in values:
        if not math.isfinite(value):
            raise InvalidEnvelopeError("NOT_FINITE", f"{what} is {value!r}")


def _unit(what: str, *values: float) -> None:
    for value in values:
        if not 0.0 <= value <= 1.0:
            raise InvalidEnvelopeError("OUT_OF_RANGE", f"{what} {value:g} is outside [0, 1]")


def _text(what: str, value: str, limit: int = MAX_TEXT) -> str:
    if len(value) > limit:
        raise InvalidEnvelopeError("MALFORMED", f"{what} is longer than {limit} characters")
    if "\x00" in value:  # PostgreSQL text cannot hold it: the whole COPY would fail
        raise InvalidEnvelopeError("MALFORMED", f"{what} contains a NUL character")
    return value


def _capture_time(stamp: timestamp_pb2.Timestamp, now: float | None) -> float:
    seconds = stamp.seconds + stamp.nanos * 1e-9
    if seconds <= 0:
        raise InvalidEnvelopeError("MALFORMED", "capture time is missing")
    limit = (time.time() if now is None else now) + MAX_FUTURE_S
    if seconds > limit:
        raise InvalidEnvelopeError(
            "OUT_OF_RANGE",
            f"capture time is {seconds - limit + MAX_FUTURE_S:.0f} s in the future (clock skew?)",
        )
    return float(seconds)


def reject_reason(name: str) -> int:
    """The ``RejectReason`` enum value of a reason name such as ``"NOT_FINITE"``."""
    return int(uplink_pb2.RejectReason.Value(f"REJECT_REASON_{name}"))
