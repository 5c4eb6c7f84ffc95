"""Estimators over real gRPC with the CPU engine: twin strips and crops in, estimations out."""

from __future__ import annotations

import logging
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import replace

import grpc
import numpy as np
import pytest
from prometheus_client import REGISTRY

from edge.aggregator.service import Aggregator
from edge.engines import open_engine
from edge.estimators.acceptance import Acceptance
from edge.estimators.service import SERVICE_NAME, Estimator, EstimatorServicer
from edge.plan import EstimatorPlan, estimator_plans
from edge.service import EdgeServer, channel
from locowatch.facility.config import ChangeGating, FacilityConfig
from locowatch.models.artefacts import resolve
from locowatch.v1 import edge_pb2, edge_pb2_grpc, estimation_pb2, frames_pb2
from sim.datasets import bodies_in_view
from sim.fleet import PLATE_FORM
from sim.twin import Twin
from tests.edge.conftest import twin_frame

REAL = estimation_pb2.END_KIND_REAL
TIMES = (120.0, 200.0, 330.0, 450.0)
CAMERAS = ("cam-02", "cam-03", "cam-04", "cam-05", "cam-06", "cam-09", "cam-10", "cam-11")


def plan_for(config: FacilityConfig, task: str, flow: str = "prod") -> EstimatorPlan:
    return next(p for p in estimator_plans(config) if p.task == task and flow in p.flows)


def start_estimator(
    config: FacilityConfig, task: str, serve: Callable[..., EdgeServer], flow: str = "prod"
) -> edge_pb2_grpc.EstimatorStub:
    plan = plan_for(config, task, flow)
    artefact = resolve(plan.ref.model)
    servicer = EstimatorServicer()
    servicer.attach(Estimator(plan, artefact, open_engine(artefact, "cpu", plan.ref.max_batch)))
    server = serve(plan.name, edge_pb2_grpc.add_EstimatorServicer_to_server, servicer, SERVICE_NAME)
    return edge_pb2_grpc.EstimatorStub(channel(f"127.0.0.1:{server.port}"))


@pytest.fixture(scope="module")
def cut(twin_day: Twin, gateway_config: FacilityConfig) -> dict[str, list[frames_pb2.Packet]]:
    """Strips of several cameras at several times, and the crops located from the truth."""
    aggregator = Aggregator(gateway_config, ChangeGating(enabled=False))
    inbox = aggregator.fanout.subscribe(frames_pb2.SubscribeRequest(max_queue=10_000))
    for t in TIMES:
        for camera in CAMERAS:
            aggregator.take_frame(twin_frame(twin_day, camera, t))
    strips = inbox.take(0)
    crops = []
    for strip in strips:
        t = strip.capture_time.ToNanoseconds() / 1e9 - 1_800_000_000.0
        bodies = bodies_in_view(twin_day, strip.covered.track_id,
                                (strip.covered.start_m, strip.covered.end_m), t)  # fmt: skip
        position = estimation_pb2.PositionEstimation(
            camera_id=strip.camera_id, capture_time=strip.capture_time, covered=strip.covered,
            intervals=[
                estimation_pb2.OccupiedInterval(
                    start_m=b.tail_m, end_m=b.head_m,
                    start_kind=REAL if b.tail == "real" else estimation_pb2.END_KIND_CUT,
                    end_kind=REAL if b.head == "real" else estimation_pb2.END_KIND_CUT,
                ) for b in bodies
            ],
        )  # fmt: skip
        crops += aggregator.crops_for(position)
    return {
        "strips": strips,
        "bodies": [c for c in crops if c.kind == frames_pb2.PACKET_KIND_BODY_CROP],
        "plates": [c for c in crops if c.kind == frames_pb2.PACKET_KIND_PLATE_CROP],
    }


def test_position_estimator_finds_the_ends_in_view(
    gateway_config: FacilityConfig,
    serve: Callable[..., EdgeServer],
    cut: dict[str, list[frames_pb2.Packet]],
    twin_day: Twin,
) -> None:
    stub = start_estimator(gateway_config, "position", serve)
    reply = stub.Estimate(frames_pb2.PacketBatch(packets=cut["strips"]))
    assert len(reply.positions) == len(cut["strips"]) and not reply.attributes
    errors = []
    for estimation in reply.positions:
        assert estimation.provenance.flow == "prod"
        assert estimation.provenance.model_version == "position@3"
        assert estimation.provenance.engine.startswith("onnxruntime")
        t = estimation.capture_time.ToNanoseconds() / 1e9 - 1_800_000_000.0
        covered = (estimation.covered.start_m, estimation.covered.end_m)
        truth = [
            end
            for b in bodies_in_view(twin_day, estimation.covered.track_id, covered, t)
            for end, kind in ((b.tail_m, b.tail), (b.head_m, b.head))
            if kind == "real"
        ]
        found = [
            end
            for i in estimation.intervals
            for end, kind in ((i.start_m, i.start_kind), (i.end_m, i.end_kind))
            if kind == REAL
        ]
        errors += [min((abs(f - e) for f in found), default=99.0) for e in truth]
    assert len(errors) >= 20, "the twin's scenes have real ends in view"
    assert np.median(errors) <= 0.25
    assert np.mean(np.array(errors) <= 1.0) >= 0.9


def test_series_and_plates_are_read_from_the_located_crops(
    gateway_config: FacilityConfig,
    serve: Callable[..., EdgeServer],
    cut: dict[str, list[frames_pb2.Packet]],
    twin_day: Twin,
) -> None:
    # the dev flow's model@1, trained on this classic twin, reads 99 % of its body windows
    # right (prod's model@2, trained for depots it never saw, 66 %): the crops must land
    # on the locomotive the truth puts there for it to
    series = start_estimator(gateway_config, "model", serve, flow="dev")
    assert plan_for(gateway_config, "model", "dev").ref.model == "model@1"
    reply = series.Estimate(frames_pb2.PacketBatch(packets=cut["bodies"]))
    assert len(reply.attributes) == len(cut["bodies"]) >= 10
    hits = 0
    for reading, crop in zip(reply.attributes, cut["bodies"], strict=True):
        assert reading.name == "model" and reading.track_id == crop.span.track_id
        assert reading.position_m == crop.anchor_m and 0 < reading.confidence <= 1
        hits += reading.value == _series_at(twin_day, crop)
    assert hits / len(reply.attributes) >= 0.9
    plates = start_estimator(gateway_config, "plate", serve)
    reply = plates.Estimate(frames_pb2.PacketBatch(packets=cut["plates"]))
    assert reply.attributes, "some plates are read"
    assert all(r.name == "plate" and r.value for r in reply.attributes)


def test_an_unchanged_strip_repeats_the_last_estimation_without_the_network(
    gateway_config: FacilityConfig,
    serve: Callable[..., EdgeServer],
    cut: dict[str, list[frames_pb2.Packet]],
) -> None:
    stub = start_estimator(gateway_config, "position", serve)
    strip = cut["strips"][1]
    first = stub.Estimate(frames_pb2.PacketBatch(packets=[strip])).positions[0]
    later = frames_pb2.Packet()
    later.CopyFrom(strip)
    later.unchanged = True
    later.capture_time.FromNanoseconds(strip.capture_time.ToNanoseconds() + 500_000_000)
    inferred = REGISTRY.get_sample_value("locowatch_estimator_inferred_total") or 0
    repeated = stub.Estimate(frames_pb2.PacketBatch(packets=[later])).positions[0]
    assert (REGISTRY.get_sample_value("locowatch_estimator_inferred_total") or 0) == inferred
    assert repeated.capture_time == later.capture_time
    assert list(repeated.intervals) == list(first.intervals)


def test_a_packet_of_the_wrong_kind_is_refused(
    gateway_config: FacilityConfig,
    serve: Callable[..., EdgeServer],
    cut: dict[str, list[frames_pb2.Packet]],
) -> None:
    stub = start_estimator(gateway_config, "model", serve)
    with pytest.raises(grpc.RpcError) as error:
        stub.Estimate(frames_pb2.PacketBatch(packets=cut["strips"][:1]))
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "BODY_CROP" in str(error.value.details())
    info = stub.Info(edge_pb2.EstimatorInfoRequest())
    assert (info.task, info.provenance.model_version) == ("model", "model@2")


def test_a_plate_reading_not_of_the_accepted_form_is_counted_and_never_published(
    gateway_config: FacilityConfig,
    serve: Callable[..., EdgeServer],
    cut: dict[str, list[frames_pb2.Packet]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The twin's plate form keeps every plate it reads; a depot whose plates are all
    2ТЭ116 refuses the others, counts them per camera and says so in its log."""
    prod = plan_for(gateway_config, "plate")
    assert prod.ref.accept == PLATE_FORM
    readings = (
        start_estimator(gateway_config, "plate", serve)
        .Estimate(frames_pb2.PacketBatch(packets=cut["plates"]))
        .attributes
    )
    values = [r.value for r in readings]
    assert values and all(re.fullmatch(PLATE_FORM, v) for v in values)
    assert {v.split("-")[0] for v in values} >= {"2ТЭ116", "ВЛ80С"}

    only = replace(prod, ref=prod.ref.model_copy(update={"accept": r"2ТЭ116-\d{4}[АБ]?"}))
    artefact = resolve(only.ref.model)
    estimator = Estimator(only, artefact, open_engine(artefact, "cpu", only.ref.max_batch))
    refused = Counter(r.camera_id for r in readings if not r.value.startswith("2ТЭ116"))
    before = {c: _refused(c) for c in refused}
    with caplog.at_level(logging.INFO, logger="edge.estimators.acceptance"):
        kept = estimator.run(list(cut["plates"]))
    assert [e.value for e in kept] == [v for v in values if v.startswith("2ТЭ116")]
    assert {c: _refused(c) - before[c] for c in refused} == refused
    assert any(
        "not of the accepted form" in r.getMessage() and c in r.getMessage()
        for r in caplog.records
        for c in refused
    )


def test_an_accepted_reading_keeps_only_alternatives_of_the_accepted_form() -> None:
    acceptance = Acceptance.of("plate", PLATE_FORM)
    assert acceptance is not None
    reading = estimation_pb2.AttributeEstimation(
        camera_id="cam-01", name="plate", value="ВЛ80С-2698", confidence=0.9,
        alternatives=[
            estimation_pb2.AttributeCandidate(value="8", confidence=0.05),
            estimation_pb2.AttributeCandidate(value="ВЛ80С-2696", confidence=0.04),
        ],
    )  # fmt: skip
    checked = acceptance.check(reading)
    assert checked is not None
    assert [a.value for a in checked.alternatives] == ["ВЛ80С-2696"]
    fragment = estimation_pb2.AttributeEstimation(camera_id="cam-01", name="plate", value="8")
    assert acceptance.check(fragment) is None


def _refused(camera: str) -> float:
    labels = {"attribute": "plate", "camera": camera}
    return REGISTRY.get_sample_value("locowatch_estimator_readings_refused_total", labels) or 0


def _series_at(twin: Twin, crop: frames_pb2.Packet) -> str:
    """The series of the locomotive standing where the crop's reading lands."""
    t = crop.capture_time.ToNanoseconds() / 1e9 - 1_800_000_000.0
    for state in twin.scenario.at(t):
        if state.track == crop.span.track_id and state.tail_m <= crop.anchor_m <= state.head_m:
            return str(state.loco.series.name)
    return "?"


def test_plate_scores_become_plate_marks_on_the_estimation() -> None:
    """A six-score position network (position@3 on) marks side plates; the estimation
    carries them for the aggregator; a four-score one marks none."""
    from edge.estimators.tasks import PositionTask
    from locowatch.models import position as pos
    from locowatch.v1 import common_pb2, frames_pb2

    packet = frames_pb2.Packet(
        camera_id="cam-01",
        kind=frames_pb2.PACKET_KIND_TRACK_STRIP,
        span=common_pb2.TrackSpan(track_id="T1", start_m=10.0, end_m=30.0),
        covered=common_pb2.TrackSpan(track_id="T1", start_m=10.0, end_m=30.0),
    )
    logits = np.full((6, 200), -8.0, np.float32)
    logits[pos.OCCUPIED, 20:150] = 8.0
    logits[pos.PLATE, 55:58] = (1.0, 3.0, 1.0)  # a peak at column 56: metre 15.65
    logits[pos.PLATE_HEIGHT] = 0.0  # half the strip: 2.8 m
    estimation = PositionTask().estimate(packet, logits)
    (mark,) = estimation.plates
    assert abs(mark.metre - 15.65) < 0.05 and abs(mark.height_m - 2.8) < 0.01
    assert mark.confidence > 0.9
    assert not PositionTask().estimate(packet, logits[:4]).plates
