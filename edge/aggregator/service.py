"""The aggregator process: frames in, packets out to every flow.

``PushFrames``: capture streams each camera's latest frames; every frame is cut into one
strip per track view (marked unchanged by change gating when the view did not change) and
kept in a short per-camera ring. ``Locate``: the locating flow's position estimator says
where the bodies are in a frame; the aggregator cuts the series window and the plate faces
from that same frame (so a crop never mixes two moments) and fans them out. With gating on,
a view's crops are cut again only when its bodies moved (an end by 0.25 m or more, a body
came or went) or ``crop_refresh_s`` passed: a person walking past a standing locomotive
changes the strip but not what is written on the locomotive. Both ages are measured on the
frames' capture clock, so recorded footage replayed faster than real time (``edge.replay``)
is gated and cropped exactly as it was live.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import grpc
import numpy as np

from edge import images
from edge.aggregator import metrics
from edge.aggregator.cutting import Crop, FrameCutter, ViewCutter
from edge.aggregator.fanout import Fanout
from edge.aggregator.gating import ChangeGate
from edge.plan import GatewayPlan
from edge.service import EdgeServer, wait_for_signal
from locowatch.facility.config import ChangeGating, FacilityConfig
from locowatch.models.attributes import PLATE_WINDOWS
from locowatch.v1 import (
    common_pb2,
    edge_pb2,
    edge_pb2_grpc,
    estimation_pb2,
    frames_pb2,
)

log = logging.getLogger(__name__)

RING_FRAMES = 8  # frames kept per camera for Locate: 4 s at 2 fps
SERVICE_NAME = edge_pb2.DESCRIPTOR.services_by_name["Aggregator"].full_name
REAL = estimation_pb2.END_KIND_REAL


@dataclass
class _Cached:
    capture_ns: int
    frame_seq: int
    image: np.ndarray


class Aggregator(edge_pb2_grpc.AggregatorServicer):
    def __init__(self, config: FacilityConfig, gating: ChangeGating) -> None:
        self.cutter = FrameCutter(config)
        self.gate = ChangeGate(gating)
        self.gating = gating
        self.fanout = Fanout()
        self._ring: dict[str, deque[_Cached]] = {}
        self._last_crop: dict[tuple[str, str], tuple[float, tuple[object, ...]]] = {}
        self._lock = threading.Lock()

    # -- frames in --------------------------------------------------------------------------

    def PushFrames(  # noqa: N802 (gRPC method name)
        self, request_iterator: Iterator[frames_pb2.Frame], context: grpc.ServicerContext
    ) -> frames_pb2.PushFramesResponse:
        received = rejected = 0
        for frame in request_iterator:
            if self.take_frame(frame):
                received += 1
            else:
                rejected += 1
        return frames_pb2.PushFramesResponse(frames_received=received, frames_rejected=rejected)

    def take_frame(self, frame: frames_pb2.Frame, pixels: np.ndarray | None = None) -> bool:
        """Cut ``frame`` into strips and keep it for crops; False when it is refused.
        ``pixels``: the frame's image, when the caller holds it already (a replay in this
        process): it is then not encoded into ``frame`` and decoded again."""
        camera = self.cutter.camera(frame.camera_id)
        if camera is None:
            metrics.FRAMES_REJECTED.labels("unknown_camera").inc()
            log.warning("frame from unknown camera %r refused", frame.camera_id)
            return False
        try:
            image = images.decode(frame.image) if pixels is None else pixels
        except images.ImageError as error:
            metrics.FRAMES_REJECTED.labels("bad_image").inc()
            log.warning("frame %s/%d refused: %s", frame.camera_id, frame.frame_seq, error)
            return False
        size = (camera.resolution.width, camera.resolution.height)
        if image.ndim != 3 or (image.shape[1], image.shape[0]) != size:
            metrics.FRAMES_REJECTED.labels("wrong_size").inc()
            log.warning(
                "frame %s/%d is %dx%d, calibrated for %dx%d: refused",
                frame.camera_id, frame.frame_seq, image.shape[1], image.shape[0], *size,
            )  # fmt: skip
            return False
        metrics.FRAMES.labels(frame.camera_id).inc()
        cached = _Cached(frame.capture_time.ToNanoseconds(), frame.frame_seq, image)
        with self._lock:
            previous = self._ring.get(frame.camera_id)
            restarted = previous is not None and frame.frame_seq < previous[-1].frame_seq
        if restarted:  # capture restarted (its count began again): compare afresh
            self.gate.forget(frame.camera_id)
        packets = [self._strip(frame, view, cached) for view in self.cutter.views[frame.camera_id]]
        with self._lock:
            ring = self._ring.setdefault(frame.camera_id, deque(maxlen=RING_FRAMES))
            ring.append(cached)
        self.fanout.publish(p for p in packets if p is not None)
        return True

    def _strip(
        self, frame: frames_pb2.Frame, view: ViewCutter, cached: _Cached
    ) -> frames_pb2.Packet | None:
        covered = view.covered
        if covered is None:
            return None
        strip = view.cut_strip(cached.image)
        at = cached.capture_ns / 1e9  # on the frames' clock, so a replay gates as live does
        verdict = self.gate.check((frame.camera_id, view.view.track), strip, at)
        if not verdict.changed:
            metrics.UNCHANGED.labels(frame.camera_id).inc()
        track = view.view.track
        return frames_pb2.Packet(
            camera_id=frame.camera_id,
            frame_seq=frame.frame_seq,
            capture_time=frame.capture_time,
            kind=frames_pb2.PACKET_KIND_TRACK_STRIP,
            span=common_pb2.TrackSpan(track_id=track, start_m=view.strip.start_m,
                                      end_m=view.strip.end_m),
            covered=common_pb2.TrackSpan(track_id=track, start_m=covered[0], end_m=covered[1]),
            image=images.encode(strip),
            unchanged=not verdict.changed,
            change_score=verdict.score,
        )  # fmt: skip

    # -- packets out ------------------------------------------------------------------------

    def Subscribe(  # noqa: N802
        self, request: frames_pb2.SubscribeRequest, context: grpc.ServicerContext
    ) -> Iterator[frames_pb2.Packet]:
        subscriber = self.fanout.subscribe(request)
        log.info("subscriber %s (flow %s) connected", subscriber.name, subscriber.flow or "-")
        try:
            while context.is_active():
                yield from subscriber.take(0.5)
        finally:
            self.fanout.unsubscribe(subscriber)
            log.info(
                "subscriber %s left (%d packets dropped while it lagged)",
                subscriber.name, subscriber.dropped,
            )  # fmt: skip

    # -- crops where the bodies are ---------------------------------------------------------

    def Locate(  # noqa: N802
        self, request: estimation_pb2.EstimationBatch, context: grpc.ServicerContext
    ) -> edge_pb2.LocateResponse:
        return edge_pb2.LocateResponse(crops=self.locate(request.positions))

    def locate(self, positions: Iterable[estimation_pb2.PositionEstimation]) -> int:
        """Cut and fan out the crops where ``positions`` put bodies; how many were cut."""
        packets = []
        for position in positions:
            packets += self.crops_for(position)
        self.fanout.publish(packets)
        return len(packets)

    def crops_for(self, position: estimation_pb2.PositionEstimation) -> list[frames_pb2.Packet]:
        track = position.covered.track_id
        view = self.cutter.view(position.camera_id, track)
        cached = self._cached(position.camera_id, position.capture_time.ToNanoseconds())
        if view is None or cached is None:
            metrics.LOCATE_MISSES.inc()
            return []
        if not self._crops_due((position.camera_id, track), position):
            return []
        packets = []
        windows = self._plate_windows_read(position.camera_id)
        for interval in position.intervals:
            ends = (interval.start_m, interval.end_m,
                    interval.start_kind == REAL, interval.end_kind == REAL)  # fmt: skip
            body = view.cut_body(cached.image, *ends)
            if body is not None:
                packets.append(self._crop(position, cached, frames_pb2.PACKET_KIND_BODY_CROP,
                                          track, body))  # fmt: skip
            for plate in view.cut_plates(cached.image, *ends, windows=windows):
                packets.append(self._crop(position, cached, frames_pb2.PACKET_KIND_PLATE_CROP,
                                          track, plate))  # fmt: skip
        for mark in position.plates if "side" in windows else ():  # marks on body sides
            if any(i.start_m <= mark.metre <= i.end_m for i in position.intervals):
                side = view.cut_side_plate(cached.image, mark.metre, mark.height_m)
                packets.append(self._crop(position, cached, frames_pb2.PACKET_KIND_PLATE_CROP,
                                          track, side))  # fmt: skip
        return packets

    def _plate_windows_read(self, camera_id: str) -> set[str]:
        """The plate windows some reader subscribes to: the others are not cut at all."""
        return {
            window
            for window in PLATE_WINDOWS
            if self.fanout.wanted(
                frames_pb2.Packet(
                    camera_id=camera_id, kind=frames_pb2.PACKET_KIND_PLATE_CROP, window=window
                )
            )
        }

    def _crops_due(self, key: tuple[str, str], position: estimation_pb2.PositionEstimation) -> bool:
        """Whether this view's bodies moved (or its crops are old) since they were last cut."""
        layout = tuple(
            (round(i.start_m * 4), round(i.end_m * 4), i.start_kind, i.end_kind)
            for i in position.intervals
        )  # ends to the nearest 0.25 m
        now = position.capture_time.ToNanoseconds() / 1e9  # the frames' clock, as gating
        with self._lock:
            last_at, last_layout = self._last_crop.get(key, (-1e9, ()))
            due = (
                not self.gating.enabled
                or layout != last_layout
                or now - last_at >= self.gating.crop_refresh_s
            )
            if due:
                self._last_crop[key] = (now, layout)
        return due

    def _cached(self, camera_id: str, capture_ns: int) -> _Cached | None:
        with self._lock:
            for cached in reversed(self._ring.get(camera_id, ())):
                if cached.capture_ns == capture_ns:
                    return cached
        return None

    @staticmethod
    def _crop(
        position: estimation_pb2.PositionEstimation,
        cached: _Cached,
        kind: int,
        track: str,
        crop: Crop,
    ) -> frames_pb2.Packet:
        return frames_pb2.Packet(
            camera_id=position.camera_id,
            frame_seq=cached.frame_seq,
            capture_time=position.capture_time,
            kind=kind,  # type: ignore[arg-type]
            span=common_pb2.TrackSpan(track_id=track, start_m=crop.start_m, end_m=crop.end_m),
            image=images.encode(crop.image),
            anchor_m=crop.anchor_m,
            window=crop.window,
        )


def run_aggregator(config: FacilityConfig, plan: GatewayPlan) -> None:
    """Serve until SIGINT/SIGTERM."""
    service = plan.aggregator
    server = EdgeServer(service.name, service.host, service.port, service.metrics_port)
    assert config.gateway is not None
    aggregator = Aggregator(config, config.gateway.gating)
    server.add(edge_pb2_grpc.add_AggregatorServicer_to_server, aggregator, SERVICE_NAME)
    server.start()
    for views in aggregator.cutter.views.values():  # compute the strip maps before frames come
        for view in views:
            _ = view.covered, view.strip_maps
            _report_view(view)
    server.set_ready(True)
    wait_for_signal()
    server.stop()


def _report_view(view: ViewCutter) -> None:
    """Say at start which configured metres a view will not judge: never silently."""
    name = f"{view.camera_id} view of {view.view.track} ({view.view.start_m}-{view.view.end_m} m)"
    if view.covered is None:
        metrics.VIEWS_UNUSED.labels(view.camera_id, view.view.track).set(1)
        log.warning("%s: no stretch of it is in frame from rail to roof: not used", name)
        return
    a, b = view.covered
    unused = (a - view.view.start_m) + (view.view.end_m - b)
    if unused >= 0.5:
        log.warning(
            "%s: only %.1f-%.1f m is in frame from rail to roof; %.1f m of it is not used",
            name, a, b, unused,
        )  # fmt: skip
