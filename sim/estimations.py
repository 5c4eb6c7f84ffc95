"""Estimations as a gateway would send them, made from the twin's ground truth.

The cloud (ingest, FSE, reports) is built and tested before the edge models exist, and
keeps being tested without them: this module plays the edge. For every camera frame it
writes the position estimation a good-but-imperfect estimator would: intervals of the
bodies in the camera's view with noisy real ends and exact cut ends, and, at the rates
in ``EstimatorNoise``, missed bodies, two close bodies merged into one, bodies split by
an occluder, spurious blobs and real/cut mistakes. Model and plate readings come from
cameras that see a cab end. Camera faults of the twin apply: a dropout or a black frame
yields nothing usable, a frozen camera keeps describing the moment it froze.

Envelopes come out in capture-time order with ``seq`` unset (the uplink numbers them).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from google.protobuf.timestamp_pb2 import Timestamp

from locowatch.facility.config import TrackView
from locowatch.v1 import common_pb2, estimation_pb2, health_pb2, uplink_pb2
from sim.faults import Fault
from sim.fleet import SERIES
from sim.scenario import LocoState
from sim.twin import Twin

REAL = estimation_pb2.END_KIND_REAL
CUT = estimation_pb2.END_KIND_CUT
HIDDEN = estimation_pb2.BLIND_KIND_HIDDEN
OUT_OF_VIEW = estimation_pb2.BLIND_KIND_OUT_OF_VIEW
END_MARGIN_M = 0.3  # an end closer than this to the view's edge is reported cut
CAB_READ_M = 14.0  # plates and cabs are read within this distance of the camera's near edge
HEALTH_EVERY_S = 5.0
PLATE_ALPHABET = "0123456789АБВГДЕКМНОПРСТУХЭЧ"


@dataclass(frozen=True)
class EstimatorNoise:
    """How wrong the simulated estimators are, per camera frame."""

    end_sigma_m: float = 0.08
    outlier_rate: float = 0.02
    outlier_sigma_m: float = 0.6
    miss_rate: float = 0.01
    merge_rate: float = 0.05  # two bodies closer than 3 m reported as one
    occlusion_rate: float = 0.03
    false_rate: float = 0.003
    kind_flip_rate: float = 0.01
    series_accuracy: float = 0.97
    plate_accuracy: float = 0.92
    attribute_every_s: float = 1.0


NOISELESS = EstimatorNoise(
    end_sigma_m=0.0,
    outlier_rate=0.0,
    miss_rate=0.0,
    merge_rate=0.0,
    occlusion_rate=0.0,
    false_rate=0.0,
    kind_flip_rate=0.0,
    series_accuracy=1.0,
    plate_accuracy=1.0,
)


def twin_estimations(
    twin: Twin,
    flows: tuple[str, ...] = ("prod",),
    fps: float = 2.0,
    start_s: float = 0.0,
    end_s: float | None = None,
    noise: EstimatorNoise | None = None,
    seed: int = 0,
) -> Iterator[uplink_pb2.Envelope]:
    """Every envelope a gateway on the twin would send between ``start_s`` and ``end_s``."""
    noise = noise or EstimatorNoise()
    end_s = twin.spec.scenario.duration_s if end_s is None else end_s
    period = 1.0 / fps
    cameras = twin.facility.cameras
    rng = np.random.default_rng([seed, 7])
    last_attribute: dict[tuple[str, str], float] = {}
    last_state: dict[str, int] = {}
    for frame in itertools.count():
        base = start_s + frame * period
        if base >= end_s:
            return
        for index, camera in enumerate(cameras):
            t = base + (index * 0.037) % period  # cameras are not in step
            if t >= end_s:
                continue
            fault = twin.faults.active(camera.id, t)
            state = _camera_state(fault)
            if (t - start_s) % HEALTH_EVERY_S < period or last_state.get(camera.id) != state:
                last_state[camera.id] = state
                yield _health(twin, camera.id, t, state)
            if fault is not None and fault.kind == "dropout":
                continue
            seen_t = fault.start_s if fault is not None and fault.kind == "freeze" else t
            black = fault is not None and fault.kind == "black"
            states = twin.scenario.at(seen_t)
            for flow in flows:
                for view in camera.views:
                    on_track = [s for s in states if s.track == view.track]
                    seen, blind = twin.seen(camera.id, view, states)
                    yield _position(
                        twin, camera.id, view, on_track, (seen, blind), t, flow, black, noise, rng
                    )
                    key = (camera.id, flow)
                    if black or t - last_attribute.get(key, -1e9) < noise.attribute_every_s:
                        continue
                    last_attribute[key] = t
                    yield from _attributes(twin, camera.id, view, on_track, t, flow, noise, rng)


def _position(
    twin: Twin,
    camera_id: str,
    view: TrackView,
    states: list[LocoState],
    sight: tuple[list[tuple[float, float]], list[tuple[float, float, bool]]],
    t: float,
    flow: str,
    black: bool,
    noise: EstimatorNoise,
    rng: np.random.Generator,
) -> uplink_pb2.Envelope:
    """What the camera's position estimator says of one view: bodies in the stretches it
    sees (``sight``: seen spans, blind spans), each cut where a blind stretch begins."""
    start, end, track = view.start_m, view.end_m, view.track
    seen, blind = sight
    spans = []
    if not black:
        for s in sorted(states, key=lambda s: s.tail_m):
            parts = [(a, b) for a, b in seen if s.head_m > a and s.tail_m < b]
            if not parts or rng.random() < noise.miss_rate:
                continue
            for a, b in parts:
                spans.append(_seen_span(s.tail_m, s.head_m, a, b, noise, rng))
        spans = _merge_close(spans, noise, rng)
        spans = _occlude(spans, noise, rng)
        if rng.random() < noise.false_rate:
            lo = float(rng.uniform(start, end - 2))
            spans.append((lo, lo + float(rng.uniform(0.5, 2.5)), CUT, CUT))
    intervals = [
        estimation_pb2.OccupiedInterval(
            start_m=max(a, start),
            end_m=min(b, end),
            start_kind=ka,  # type: ignore[arg-type]
            end_kind=kb,  # type: ignore[arg-type]
            confidence=float(rng.uniform(0.75, 0.99)),
        )
        for a, b, ka, kb in sorted(spans)
        if b > a
    ]
    estimation = estimation_pb2.PositionEstimation(
        camera_id=camera_id,
        capture_time=_stamp(twin, t),
        provenance=_provenance(flow, "position"),
        covered=common_pb2.TrackSpan(track_id=track, start_m=start, end_m=end),
        intervals=intervals,
        confidence=0.1 if black else float(rng.uniform(0.85, 0.99)),
        blind=[
            estimation_pb2.BlindSpan(start_m=a, end_m=b, kind=HIDDEN if hidden else OUT_OF_VIEW)
            for a, b, hidden in blind
        ],
    )
    return uplink_pb2.Envelope(position=estimation)


def _seen_span(
    tail: float,
    head: float,
    start: float,
    end: float,
    noise: EstimatorNoise,
    rng: np.random.Generator,
) -> tuple[float, float, int, int]:
    tail_kind = REAL if tail > start + END_MARGIN_M else CUT
    head_kind = REAL if head < end - END_MARGIN_M else CUT
    # a cut end is where the body leaves the seen stretch, or the body's own end when
    # that lies just inside it (END_MARGIN_M): the floor there is seen empty
    a = _noisy(tail, noise, rng) if tail_kind == REAL else max(tail, start)
    b = _noisy(head, noise, rng) if head_kind == REAL else min(head, end)
    if rng.random() < noise.kind_flip_rate:
        tail_kind = CUT if tail_kind == REAL else REAL
    return a, b, tail_kind, head_kind


def _noisy(x: float, noise: EstimatorNoise, rng: np.random.Generator) -> float:
    sigma = noise.outlier_sigma_m if rng.random() < noise.outlier_rate else noise.end_sigma_m
    return x + float(rng.normal(0.0, sigma)) if sigma else x


def _merge_close(
    spans: list[tuple[float, float, int, int]], noise: EstimatorNoise, rng: np.random.Generator
) -> list[tuple[float, float, int, int]]:
    out: list[tuple[float, float, int, int]] = []
    for span in spans:
        if out and span[0] - out[-1][1] < 3.0 and rng.random() < noise.merge_rate:
            a, _, ka, _ = out.pop()
            out.append((a, span[1], ka, span[3]))
        else:
            out.append(span)
    return out


def _occlude(
    spans: list[tuple[float, float, int, int]], noise: EstimatorNoise, rng: np.random.Generator
) -> list[tuple[float, float, int, int]]:
    out = []
    for a, b, ka, kb in spans:
        if b - a > 6.0 and rng.random() < noise.occlusion_rate:
            mid = float(rng.uniform(a + 2.0, b - 3.0))
            gap = float(rng.uniform(0.5, 2.0))
            out += [(a, mid, ka, CUT), (mid + gap, b, CUT, kb)]
        else:
            out.append((a, b, ka, kb))
    return out


def _attributes(
    twin: Twin,
    camera_id: str,
    view: TrackView,
    states: list[LocoState],
    t: float,
    flow: str,
    noise: EstimatorNoise,
    rng: np.random.Generator,
) -> Iterator[uplink_pb2.Envelope]:
    """Series and plate readings of the cab ends near this camera."""
    start, end, track = view.start_m, view.end_m, view.track
    for s in states:
        ends = [(s.tail_m, 0, 1.5), (s.head_m, s.loco.series.sections - 1, -1.5)]
        for end_m, section, inward in ends:
            if not start + END_MARGIN_M < end_m < min(end, start + CAB_READ_M):
                continue
            position = min(max(end_m + inward, start), end)
            series = s.loco.series
            right = rng.random() < noise.series_accuracy
            value = series.name if right else _other_series(series.name, rng)
            yield _attribute(twin, camera_id, track, position, t, flow, "model", value, right, rng)
            plate = series.plate(s.loco.number, section if series.sections > 1 else None)
            right = rng.random() < noise.plate_accuracy
            value = plate if right else _misread(plate, rng)
            yield _attribute(twin, camera_id, track, position, t, flow, "plate", value, right, rng)


def _attribute(
    twin: Twin,
    camera_id: str,
    track: str,
    position: float,
    t: float,
    flow: str,
    name: str,
    value: str,
    right: bool,
    rng: np.random.Generator,
) -> uplink_pb2.Envelope:
    confidence = float(rng.uniform(0.7, 0.99) if right else rng.uniform(0.3, 0.7))
    estimation = estimation_pb2.AttributeEstimation(
        camera_id=camera_id,
        capture_time=_stamp(twin, t),
        provenance=_provenance(flow, name),
        name=name,
        value=value,
        confidence=confidence,
        track_id=track,
        position_m=position,
    )
    return uplink_pb2.Envelope(attribute=estimation)


def _camera_state(fault: Fault | None) -> int:
    """What capture reports: a dropout is a reconnect; a frozen picture (identical
    frames, no sensor noise) is a stall; a black frame still streams."""
    if fault is None or fault.kind == "black":
        return health_pb2.CAMERA_STATE_STREAMING
    if fault.kind == "dropout":
        return health_pb2.CAMERA_STATE_RECONNECTING
    return health_pb2.CAMERA_STATE_STALLED


def _health(twin: Twin, camera_id: str, t: float, state: int) -> uplink_pb2.Envelope:
    streaming = state == health_pb2.CAMERA_STATE_STREAMING
    health = health_pb2.CameraHealth(
        camera_id=camera_id,
        observed_time=_stamp(twin, t),
        state=state,  # type: ignore[arg-type]
        fps=2.0 if streaming else 0.0,
        message="" if streaming else health_pb2.CameraState.Name(state).lower(),
    )
    if state != health_pb2.CAMERA_STATE_RECONNECTING:
        health.last_frame_time.CopyFrom(_stamp(twin, t))
    return uplink_pb2.Envelope(camera_health=health)


def _other_series(name: str, rng: np.random.Generator) -> str:
    others = [s.name for s in SERIES if s.name != name]
    return others[int(rng.integers(len(others)))]


def _misread(plate: str, rng: np.random.Generator) -> str:
    chars = list(plate)
    index = int(rng.integers(len(chars)))
    chars[index] = PLATE_ALPHABET[int(rng.integers(len(PLATE_ALPHABET)))]
    return "".join(chars)


def capture_stamp(envelope: uplink_pb2.Envelope) -> Timestamp:
    """The capture time of an envelope's payload (observed time for camera health)."""
    if envelope.HasField("camera_health"):
        return envelope.camera_health.observed_time
    if envelope.HasField("attribute"):
        return envelope.attribute.capture_time
    return envelope.position.capture_time


def capture_seconds(envelope: uplink_pb2.Envelope) -> float:
    """POSIX seconds of the moment an envelope describes (see ``capture_stamp``)."""
    return capture_stamp(envelope).ToNanoseconds() / 1e9


def camera_of(envelope: uplink_pb2.Envelope) -> str:
    """The camera an envelope's payload is about."""
    payload = getattr(envelope, str(envelope.WhichOneof("payload")))
    return str(payload.camera_id)


def _stamp(twin: Twin, t: float) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(twin.scenario.clock(t))
    return stamp


def _provenance(flow: str, task: str) -> common_pb2.Provenance:
    return common_pb2.Provenance(flow=flow, model_version=f"{task}@twin-truth", engine="simulated")
