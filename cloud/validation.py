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

from google.protobuf.timestamp_pb2 import Timestamp

from cloud.records import (
    AttributeRecord,
    Blind,
    HealthRecord,
    Interval,
    Origin,
    PositionRecord,
    Record,
    Rejected,
    fast_new,
)
from locowatch.facility.config import FacilityConfig
from locowatch.v1 import common_pb2, estimation_pb2, health_pb2, uplink_pb2

SLACK_M = 1.0  # how far an interval may poke past what the camera covers (calibration error)
MAX_FUTURE_S = 300.0  # capture clocks ahead of ours by more than this are refused
MAX_TEXT = 128
MAX_MESSAGE = 1000  # a camera health message is cut to this, not refused
MAX_PROVENANCES = 1000  # (model version, engine) pairs kept checked per gateway
REAL = estimation_pb2.END_KIND_REAL
HIDDEN = estimation_pb2.BLIND_KIND_HIDDEN
OUT_OF_VIEW = estimation_pb2.BLIND_KIND_OUT_OF_VIEW
# Names that repeat in every record (flows, cameras, tracks, versions) are interned: one
# string object each, which the FSE hand-over pickles once per batch, not once per record.
intern = sys.intern
# (flow, camera, track, length of the track): what a position or attribute names.
_Place = tuple[str, str, str, float]


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
    """Turns envelopes from one gateway into records, or says why not.

    The names an envelope carries repeat endlessly (a flow, a camera and a track; a
    model version and an engine), so a combination that passed its checks once is kept,
    interned, and the next envelope naming it costs one dictionary lookup. Only
    combinations that passed are kept: those of the facility, and the versions its
    gateways run (a bounded cache, for a gateway that sends a new version every time).
    """

    def __init__(self, catalog: FacilityCatalog, gateway_id: str) -> None:
        self.catalog = catalog
        self.gateway_id = gateway_id
        self._places: dict[tuple[str, str, str], _Place] = {}
        self._attribute_places: dict[tuple[str, str, str, str], _Place] = {}
        self._provenances: dict[tuple[str, str], tuple[str, str]] = {}

    def check(self, envelope: uplink_pb2.Envelope, now: float | None = None) -> Record | Rejected:
        """One envelope's record, or why it is refused; ``now`` (POSIX seconds, default
        the clock) bounds capture times: pass it once per batch on hot paths."""
        origin = fast_new(Origin, (self.catalog.facility_id, self.gateway_id, envelope.seq))
        latest = (time.time() if now is None else now) + MAX_FUTURE_S
        try:
            kind = envelope.WhichOneof("payload")
            if kind == "position":
                return self._position(origin, envelope.position, latest)
            if kind == "attribute":
                return self._attribute(origin, envelope.attribute, latest)
            if kind == "camera_health":
                return self._health(origin, envelope.camera_health, latest)
            raise InvalidEnvelopeError("MALFORMED", "envelope carries no payload")
        except InvalidEnvelopeError as problem:
            return Rejected(origin, problem.reason, str(problem))

    # -- payloads -------------------------------------------------------------------------

    def _position(
        self, origin: Origin, p: estimation_pb2.PositionEstimation, latest: float
    ) -> PositionRecord:
        # The hot path of ingest (tens of thousands per second): fields are read once into
        # locals, and every number meets one chained range check, which NaN and inf fail
        # too; only then does the slow search say what was wrong (non-finite first).
        provenance, span = p.provenance, p.covered
        key = (provenance.flow, p.camera_id, span.track_id)
        flow, camera_id, track_id, length = self._places.get(key) or self._place(*key)
        start, end, confidence = span.start_m, span.end_m, p.confidence
        if not (-SLACK_M <= start <= end <= length + SLACK_M and 0.0 <= confidence <= 1.0):
            _which_not_finite(p)
            if not -SLACK_M <= start <= end <= length + SLACK_M:
                raise InvalidEnvelopeError(
                    "OUT_OF_RANGE",
                    f"covered [{start:g}, {end:g}] m is not inside track {track_id!r} "
                    f"(0..{length:g} m)",
                )
            _unit("confidence", confidence)
        intervals: tuple[Interval, ...] = ()
        if p.intervals:  # (iterating an empty repeated field is not free)
            low, high = start - SLACK_M, end + SLACK_M
            kept: list[Interval] = []
            for i in p.intervals:
                a, b, c = i.start_m, i.end_m, i.confidence
                if not (low <= a <= b <= high and 0.0 <= c <= 1.0):
                    _bad_interval(p, len(kept), low, high)
                a, b = (a if a > 0.0 else 0.0), (b if b < length else length)
                kept.append(fast_new(Interval, (a, b, i.start_kind == REAL, i.end_kind == REAL, c)))
            intervals = tuple(kept)
        blind = _blind(p, start, end, length) if p.blind else ()
        seconds = _capture_seconds(p.capture_time, latest)
        model_version, engine = self._versions(provenance)
        return fast_new(  # PositionRecord(...)
            PositionRecord,
            (
                origin,
                seconds,
                flow,
                camera_id,
                track_id,
                start if start > 0.0 else 0.0,
                end if end < length else length,
                confidence,
                intervals,
                model_version,
                engine,
                blind,
            ),
        )

    def _attribute(
        self, origin: Origin, a: estimation_pb2.AttributeEstimation, latest: float
    ) -> AttributeRecord:
        provenance = a.provenance
        key = (provenance.flow, a.camera_id, a.track_id, a.name)
        place = self._attribute_places.get(key) or self._attribute_place(*key)
        flow, camera_id, track_id, length = place
        position, confidence = a.position_m, a.confidence
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
        name = key[3]
        if not a.value:
            raise InvalidEnvelopeError("MALFORMED", f"attribute {name!r} has an empty value")
        seconds = _capture_seconds(a.capture_time, latest)
        model_version, engine = self._versions(provenance)
        return fast_new(  # AttributeRecord(...)
            AttributeRecord,
            (
                origin,
                seconds,
                flow,
                camera_id,
                intern(name),
                intern(_text("value", a.value)),
                confidence,
                track_id,
                min(max(position, 0.0), length),
                alternatives,
                model_version,
                engine,
            ),
        )

    def _health(self, origin: Origin, h: health_pb2.CameraHealth, latest: float) -> HealthRecord:
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
            time=_capture_seconds(h.observed_time, latest),
            camera_id=intern(h.camera_id),
            state=intern(state),
            fps=h.fps,
            last_frame_time=last_frame,
            reconnects=h.reconnects,
            decode_errors=h.decode_errors,
            message=_text("message", h.message[:MAX_MESSAGE], MAX_MESSAGE),
        )

    # -- names: checked the first time, then looked up -------------------------------------

    def _place(self, flow: str, camera_id: str, track_id: str) -> _Place:
        """(flow, camera, track, track length), interned, once all three are known."""
        self._flow(flow)
        self._viewed(camera_id, self._camera(camera_id), track_id)
        place = (intern(flow), intern(camera_id), intern(track_id))
        self._places[place] = out = (*place, self.catalog.track_lengths[track_id])
        return out

    def _attribute_place(self, flow: str, camera_id: str, track_id: str, name: str) -> _Place:
        """As ``_place``, for an attribute ``name`` its flow is configured to estimate."""
        self._flow(flow)
        if name not in self.catalog.flows[flow]:
            raise InvalidEnvelopeError(
                "MALFORMED", f"attribute {name!r} is not configured in flow {flow!r}"
            )
        out = self._places.get((flow, camera_id, track_id)) or self._place(
            flow, camera_id, track_id
        )
        self._attribute_places[(*out[:3], intern(name))] = out
        return out

    def _versions(self, provenance: common_pb2.Provenance) -> tuple[str, str]:
        """(model version, engine), checked and interned."""
        versions = (provenance.model_version, provenance.engine)
        return self._provenances.get(versions) or self._provenance(*versions)

    def _provenance(self, model_version: str, engine: str) -> tuple[str, str]:
        if len(self._provenances) >= MAX_PROVENANCES:
            self._provenances.clear()
        out = (
            intern(_text("model_version", model_version)),
            intern(_text("engine", engine)),
        )
        self._provenances[out] = out
        return out

    def _flow(self, flow: str) -> None:
        if flow not in self.catalog.flows:
            known = ", ".join(sorted(self.catalog.flows))
            raise InvalidEnvelopeError(
                "UNKNOWN_FLOW", f"flow {flow!r} is not configured (known: {known})"
            )

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


def _blind(
    p: estimation_pb2.PositionEstimation, start: float, end: float, length: float
) -> tuple[Blind, ...]:
    """The blind spans of an estimation, inside its covered span (with the same slack)."""
    low, high = start - SLACK_M, end + SLACK_M
    out = []
    for index, span in enumerate(p.blind):
        a, b = span.start_m, span.end_m
        if not (low <= a <= b <= high):
            if not (math.isfinite(a) and math.isfinite(b)):
                raise InvalidEnvelopeError("NOT_FINITE", f"blind[{index}] is not finite")
            raise InvalidEnvelopeError(
                "OUT_OF_RANGE",
                f"blind[{index}] [{a:g}, {b:g}] m is not inside the covered [{start:g}, {end:g}] m",
            )
        if span.kind not in (HIDDEN, OUT_OF_VIEW):
            raise InvalidEnvelopeError("MALFORMED", f"blind[{index}] has no kind")
        a, b = (a if a > 0.0 else 0.0), (b if b < length else length)
        out.append(fast_new(Blind, (a, b, span.kind == HIDDEN)))
    return tuple(out)


def _capture_seconds(stamp: Timestamp, latest: float) -> float:
    """A capture time in POSIX seconds; refused when missing or later than ``latest``."""
    seconds: float = stamp.seconds + stamp.nanos * 1e-9
    if not 0.0 < seconds <= latest:
        if seconds <= 0:
            raise InvalidEnvelopeError("MALFORMED", "capture time is missing")
        raise InvalidEnvelopeError(
            "OUT_OF_RANGE",
            f"capture time is {seconds - latest + MAX_FUTURE_S:.0f} s in the future (clock skew?)",
        )
    return seconds


def reject_reason(name: str) -> int:
    """The ``RejectReason`` enum value of a reason name such as ``"NOT_FINITE"``."""
    return int(uplink_pb2.RejectReason.Value(f"REJECT_REASON_{name}"))
