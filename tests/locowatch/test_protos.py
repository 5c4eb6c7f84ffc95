"""The wire messages: they round-trip, and the committed stubs match the .proto sources."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from google.protobuf.timestamp_pb2 import Timestamp

from locowatch.v1 import (
    common_pb2,
    edge_pb2,
    estimation_pb2,
    frames_pb2,
    health_pb2,
    uplink_pb2,
)

REPO = Path(__file__).resolve().parents[2]


def _load_generator() -> object:
    spec = importlib.util.spec_from_file_location("protos_generate", REPO / "protos/generate.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _batch() -> uplink_pb2.UplinkMessage:
    when = Timestamp(seconds=1_790_000_000, nanos=250_000_000)
    provenance = common_pb2.Provenance(flow="dev", model_version="position@2", engine="cpu")
    position = estimation_pb2.PositionEstimation(
        camera_id="cam-03",
        capture_time=when,
        provenance=provenance,
        covered=common_pb2.TrackSpan(track_id="T1", start_m=57.5, end_m=88.0),
        intervals=[
            estimation_pb2.OccupiedInterval(
                start_m=57.5,
                end_m=71.25,
                start_kind=estimation_pb2.END_KIND_CUT,
                end_kind=estimation_pb2.END_KIND_REAL,
                confidence=0.93,
            ),
            estimation_pb2.OccupiedInterval(
                start_m=73.0,
                end_m=88.0,
                start_kind=estimation_pb2.END_KIND_REAL,
                end_kind=estimation_pb2.END_KIND_CUT,
                confidence=0.88,
            ),
        ],
        confidence=0.9,
    )
    plate = estimation_pb2.AttributeEstimation(
        camera_id="cam-03",
        capture_time=when,
        provenance=provenance,
        name="plate",
        value="2ТЭ116-1234",
        confidence=0.81,
        track_id="T1",
        position_m=70.1,
        alternatives=[estimation_pb2.AttributeCandidate(value="2ТЭ116-1284", confidence=0.1)],
    )
    health = health_pb2.CameraHealth(
        camera_id="cam-03",
        observed_time=when,
        state=health_pb2.CAMERA_STATE_STALLED,
        fps=0.0,
        reconnects=3,
        message="no frame for 10 s",
    )
    return uplink_pb2.UplinkMessage(
        batch=uplink_pb2.Batch(
            batch_id=7,
            envelopes=[
                uplink_pb2.Envelope(seq=101, position=position),
                uplink_pb2.Envelope(seq=102, attribute=plate),
                uplink_pb2.Envelope(seq=103, camera_health=health),
            ],
        )
    )


def test_uplink_batch_round_trips_with_its_payload_kinds() -> None:
    sent = _batch()
    received = uplink_pb2.UplinkMessage.FromString(sent.SerializeToString())
    assert received == sent
    assert received.WhichOneof("message") == "batch"
    kinds = [e.WhichOneof("payload") for e in received.batch.envelopes]
    assert kinds == ["position", "attribute", "camera_health"]
    position = received.batch.envelopes[0].position
    assert [(i.start_m, i.end_m) for i in position.intervals] == [(57.5, 71.25), (73.0, 88.0)]
    assert position.intervals[0].start_kind == estimation_pb2.END_KIND_CUT
    assert received.batch.envelopes[1].attribute.value == "2ТЭ116-1234"  # Cyrillic survives
    assert received.batch.envelopes[0].position.capture_time.ToMilliseconds() == 1_790_000_000_250


def test_packet_round_trips_with_image_bytes() -> None:
    packet = frames_pb2.Packet(
        camera_id="cam-01",
        frame_seq=9,
        kind=frames_pb2.PACKET_KIND_TRACK_STRIP,
        span=common_pb2.TrackSpan(track_id="T2", start_m=0.0, end_m=30.5),
        image=frames_pb2.Image(
            encoding=frames_pb2.IMAGE_ENCODING_RAW_GRAY8, width=4, height=2, data=bytes(range(8))
        ),
        change_score=3.5,
    )
    again = frames_pb2.Packet.FromString(packet.SerializeToString())
    assert again == packet and again.image.data == bytes(range(8))


def test_services_are_declared() -> None:
    services = {
        name: [m.name for m in descriptor.methods]
        for module in (edge_pb2, frames_pb2, estimation_pb2, uplink_pb2)
        for name, descriptor in module.DESCRIPTOR.services_by_name.items()
    }
    assert services == {
        "Aggregator": ["PushFrames", "Subscribe", "Locate"],
        "Estimator": ["Estimate", "Info"],
        "Ingest": ["Stream"],
        "Uplink": ["Publish"],
    }
    ingest = uplink_pb2.DESCRIPTOR.services_by_name["Ingest"].methods_by_name["Stream"]
    assert ingest.client_streaming and ingest.server_streaming
    publish = uplink_pb2.DESCRIPTOR.services_by_name["Uplink"].methods_by_name["Publish"]
    assert not publish.client_streaming  # a Publish returns once its envelopes are durable


def test_committed_stubs_match_the_proto_sources(tmp_path: Path) -> None:
    generator = _load_generator()
    fresh = {
        p.relative_to(tmp_path): p.read_bytes()
        for p in generator.generate(tmp_path)  # type: ignore[attr-defined]
    }
    committed = {
        p.relative_to(REPO): p.read_bytes() for p in (REPO / "locowatch/v1").glob("*_pb2*.py*")
    }
    assert fresh, "the generator produced nothing"
    stale = sorted(str(p) for p in fresh if committed.get(p) != fresh[p])
    orphans = sorted(str(p) for p in committed.keys() - fresh.keys())
    assert not stale, f"stale stubs, run 'python protos/generate.py': {stale}"
    assert not orphans, f"stubs without a .proto source, delete them: {orphans}"
