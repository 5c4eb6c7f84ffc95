"""The aggregator over real gRPC: frames in, strips and crops out to every subscriber."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace

import numpy as np
import pytest
from prometheus_client import REGISTRY

from edge import images
from edge.aggregator.cutting import ViewCutter
from edge.aggregator.fanout import Fanout
from edge.aggregator.service import SERVICE_NAME, Aggregator
from edge.service import EdgeServer, channel
from locowatch.facility.config import ChangeGating, FacilityConfig
from locowatch.v1 import edge_pb2_grpc, estimation_pb2, frames_pb2
from sim.datasets import Body, bodies_in_view, side_plates_in_view
from sim.twin import Twin
from tests.edge.conftest import twin_frame

STRIP, BODY, PLATE = (
    frames_pb2.PACKET_KIND_TRACK_STRIP,
    frames_pb2.PACKET_KIND_BODY_CROP,
    frames_pb2.PACKET_KIND_PLATE_CROP,
)
REAL, CUT = estimation_pb2.END_KIND_REAL, estimation_pb2.END_KIND_CUT
CAMERAS = ("cam-02", "cam-04", "cam-05")


@pytest.fixture
def aggregator(
    gateway_config: FacilityConfig, serve: Callable[..., EdgeServer]
) -> Iterator[tuple[Aggregator, edge_pb2_grpc.AggregatorStub]]:
    service = Aggregator(gateway_config, ChangeGating(refresh_s=0.5))
    server = serve("aggregator", edge_pb2_grpc.add_AggregatorServicer_to_server, service,
                   SERVICE_NAME)  # fmt: skip
    with channel(f"127.0.0.1:{server.port}") as ch:
        yield service, edge_pb2_grpc.AggregatorStub(ch)


def subscribe(
    service: Aggregator, *kinds: int, max_queue: int = 1000, windows: tuple[str, ...] = ()
) -> object:
    return service.fanout.subscribe(
        frames_pb2.SubscribeRequest(
            subscriber="test", kinds=list(kinds), max_queue=max_queue, windows=windows
        )
    )


def test_frames_become_one_strip_per_track_view(
    aggregator: tuple[Aggregator, edge_pb2_grpc.AggregatorStub], twin_day: Twin
) -> None:
    _, stub = aggregator
    frames = [twin_frame(twin_day, camera, 200.0) for camera in CAMERAS]
    stream = stub.Subscribe(frames_pb2.SubscribeRequest(subscriber="position:test", kinds=[STRIP]))
    reply = stub.PushFrames(iter(frames))
    assert (reply.frames_received, reply.frames_rejected) == (3, 0)
    strips = [next(stream) for _ in range(3)]
    stream.cancel()
    for strip, frame in zip(strips, frames, strict=True):
        view = twin_day.facility.camera_by_id[strip.camera_id].views[0]
        assert strip.capture_time == frame.capture_time and strip.kind == STRIP
        assert (strip.span.track_id, strip.span.start_m, strip.span.end_m) == (
            view.track, view.start_m, view.end_m,
        )  # fmt: skip
        assert view.start_m <= strip.covered.start_m < strip.covered.end_m <= view.end_m
        pixels = images.decode(strip.image)
        assert pixels.shape == (56, round((view.end_m - view.start_m) / 0.1), 3)
        assert pixels.mean() > 10  # a picture, not the black border


def test_bad_frames_are_refused_and_counted_while_good_ones_flow(
    aggregator: tuple[Aggregator, edge_pb2_grpc.AggregatorStub], twin_day: Twin
) -> None:
    service, stub = aggregator
    strips = subscribe(service, STRIP)
    good = twin_frame(twin_day, "cam-02", 100.0)
    unknown = frames_pb2.Frame(camera_id="cam-99", image=good.image)
    small = frames_pb2.Frame(camera_id="cam-04", image=images.encode(np.zeros((10, 10, 3), "u1")))
    corrupt = frames_pb2.Frame(
        camera_id="cam-05",
        image=frames_pb2.Image(encoding=images.JPEG, width=1280, height=720, data=b"not a jpeg"),
    )
    before = {r: _counter("locowatch_aggregator_frames_rejected_total", reason=r)
              for r in ("unknown_camera", "wrong_size", "bad_image")}  # fmt: skip
    reply = stub.PushFrames(iter([unknown, good, small, corrupt, good]))
    assert (reply.frames_received, reply.frames_rejected) == (2, 3)
    for reason, count in before.items():
        assert _counter("locowatch_aggregator_frames_rejected_total", reason=reason) == count + 1
    assert [p.camera_id for p in strips.take(1)] == ["cam-02", "cam-02"]  # type: ignore[attr-defined]


def test_an_unchanged_view_is_marked_and_refreshed(
    aggregator: tuple[Aggregator, edge_pb2_grpc.AggregatorStub], twin_day: Twin
) -> None:
    service, stub = aggregator
    strips = subscribe(service, STRIP)
    still = twin_frame(twin_day, "cam-02", 300.0)
    stub.PushFrames(iter([still, still]))
    first, second = strips.take(1)  # type: ignore[attr-defined]
    assert not first.unchanged and second.unchanged and second.change_score < 4
    # past refresh_s on the frames' clock (as a replay runs, whatever the wall clock): the
    # view is run again even though it did not change
    later = frames_pb2.Frame()
    later.CopyFrom(still)
    later.capture_time.FromNanoseconds(still.capture_time.ToNanoseconds() + 600_000_000)
    stub.PushFrames(iter([later]))
    (refreshed,) = strips.take(1)  # type: ignore[attr-defined]
    assert not refreshed.unchanged
    # A locomotive moving in view (cam-02 at t = 160 s, 0.7 m per half second) is a change.
    stub.PushFrames(
        iter([twin_frame(twin_day, "cam-02", 160.0), twin_frame(twin_day, "cam-02", 160.5)])
    )
    moving = strips.take(1)  # type: ignore[attr-defined]
    assert [p.unchanged for p in moving] == [False, False]


def test_a_slow_subscriber_loses_its_oldest_packets_and_memory_stays_bounded() -> None:
    fanout = Fanout()
    slow = fanout.subscribe(frames_pb2.SubscribeRequest(subscriber="slow", max_queue=4))
    fast = fanout.subscribe(frames_pb2.SubscribeRequest(subscriber="fast", max_queue=100))
    before = _counter("locowatch_aggregator_packets_dropped_total", subscriber="slow")
    fanout.publish(
        frames_pb2.Packet(camera_id="cam-01", frame_seq=i, kind=STRIP) for i in range(20)
    )
    assert [p.frame_seq for p in slow.take(0)] == [16, 17, 18, 19]  # the newest survive
    assert slow.dropped == 16
    assert _counter("locowatch_aggregator_packets_dropped_total", subscriber="slow") == before + 16
    assert len(fast.take(0)) == 20  # a slow subscriber costs the others nothing


def test_locate_cuts_crops_from_the_very_frame_the_positions_came_from(
    aggregator: tuple[Aggregator, edge_pb2_grpc.AggregatorStub], twin_day: Twin
) -> None:
    service, stub = aggregator
    crops = subscribe(service, BODY, PLATE)
    camera, t = "cam-02", 200.0
    located = twin_frame(twin_day, camera, t, seq=1)
    stub.PushFrames(iter([located, twin_frame(twin_day, camera, t + 0.5, seq=2)]))
    view = service.cutter.views[camera][0]
    assert view.covered is not None
    bodies = bodies_in_view(twin_day, view.view.track, view.covered, t)
    assert bodies, "the twin has a locomotive in view at this time"
    position = _located(located, view, bodies)
    reply = stub.Locate(estimation_pb2.EstimationBatch(positions=[position]))
    packets = crops.take(1)  # type: ignore[attr-defined]
    assert reply.crops == len(packets) and packets
    kinds = [p.kind for p in packets]
    assert BODY in kinds and PLATE in kinds
    windows = [p.window for p in packets if p.kind == PLATE]  # each end face in two windows
    assert sorted(set(windows)) == ["end-high", "end-low"] and len(windows) % 2 == 0
    frame = twin_day.frame(camera, t)
    for packet in packets:
        assert packet.capture_time == located.capture_time and packet.frame_seq == 1
        body = next(b for b in bodies if b.tail_m - 2 <= packet.anchor_m <= b.head_m + 2)
        assert body.tail_m <= packet.anchor_m <= body.head_m  # the reading lands on the body
        if packet.kind == BODY:
            expected = view.cut_body(frame, body.tail_m, body.head_m, body.tail == "real",
                                     body.head == "real")  # fmt: skip
            assert expected is not None
            assert np.array_equal(images.decode(packet.image), expected.image)
    # The same unchanged frame located again within refresh_s cuts nothing new.
    stub.PushFrames(iter([located]))
    assert stub.Locate(estimation_pb2.EstimationBatch(positions=[position])).crops == 0
    # Positions of a frame the aggregator no longer holds are counted, not an error.
    gone = estimation_pb2.PositionEstimation()
    gone.CopyFrom(position)
    gone.capture_time.FromNanoseconds(1)
    assert stub.Locate(estimation_pb2.EstimationBatch(positions=[gone])).crops == 0


def _counter(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_a_plate_mark_on_a_body_side_cuts_a_plate_window_there(
    aggregator: tuple[Aggregator, edge_pb2_grpc.AggregatorStub], twin_day: Twin
) -> None:
    """position@3 on marks plates on body sides; the aggregator cuts the reader's window
    centred there (a mark off every body it reported cuts nothing)."""
    service, stub = aggregator
    crops = subscribe(service, PLATE)
    end_faces_only = subscribe(service, PLATE, windows=("end-high",))  # a reader to plate@4
    camera, t, side, view = next(
        (camera, t, sides[0], view)
        for camera in CAMERAS
        for t in (100.0, 200.0, 300.0, 400.0)
        for view in service.cutter.views[camera][:1]
        if view.covered is not None
        and (sides := side_plates_in_view(twin_day, view.curtain, view.covered, t, ()))
    )
    body = next(
        b
        for b in bodies_in_view(twin_day, view.view.track, view.covered, t)
        if b.tail_m <= side.centre[0] <= b.head_m
    )
    located = twin_frame(twin_day, camera, t, seq=1)
    stub.PushFrames(iter([located]))
    metre, height = side.centre
    cut = replace(body, tail="cut", head="cut")
    position = _located(
        located,
        view,
        [cut],
        plates=[
            estimation_pb2.PlateMark(metre=metre, height_m=height, confidence=0.9),
            estimation_pb2.PlateMark(metre=body.head_m + 5.0, height_m=height, confidence=0.9),
        ],
    )
    stub.Locate(estimation_pb2.EstimationBatch(positions=[position]))
    (packet,) = crops.take(1)  # type: ignore[attr-defined]  # one window: the mark on the body
    assert packet.kind == PLATE and packet.window == "side" and abs(packet.anchor_m - metre) <= 0.05
    assert not end_faces_only.take(0)  # type: ignore[attr-defined]  # never trained on sides
    window = images.decode(packet.image)
    assert window.shape == (110, 220, 3)
    expected = view.cut_side_plate(twin_day.frame(camera, t), metre, height)
    assert np.array_equal(window, expected.image)


def _located(
    frame: frames_pb2.Frame,
    view: ViewCutter,
    bodies: list[Body],
    plates: list[estimation_pb2.PlateMark] | None = None,
) -> estimation_pb2.PositionEstimation:
    """The position estimation of ``frame`` that reports ``bodies`` as they are."""
    assert view.covered is not None
    return estimation_pb2.PositionEstimation(
        camera_id=frame.camera_id,
        capture_time=frame.capture_time,
        covered={"track_id": view.view.track, "start_m": view.covered[0], "end_m": view.covered[1]},
        intervals=[
            estimation_pb2.OccupiedInterval(
                start_m=b.tail_m,
                end_m=b.head_m,
                start_kind=REAL if b.tail == "real" else CUT,
                end_kind=REAL if b.head == "real" else CUT,
            )
            for b in bodies
        ],
        plates=plates or [],
    )
