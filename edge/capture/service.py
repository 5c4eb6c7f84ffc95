"""The capture service process: a worker per camera, a frame sender each, one health publisher.

- ``FrameSender`` (``capture-send:cam-07``) keeps one ``Aggregator.PushFrames`` stream open
  per camera and feeds it the newest frame from the worker's one-slot mailbox, encoded as
  ``gateway.frame_encoding`` says (raw BGR on one host, JPEG across hosts). While the
  aggregator is away the stream is reopened with backoff; frames meanwhile are simply
  superseded in the mailbox, never queued.
- ``HealthPublisher`` (``capture-health``) sends every camera's ``CameraHealth`` to the
  uplink's ``Publish`` every few seconds, and at once when a camera's state changes. While
  the uplink is away it keeps only the latest health per camera and retries with backoff.
- ``CaptureService`` wires them behind ``EdgeServer("capture")`` (gRPC health checking,
  reflection, Prometheus metrics), and is ready once the workers are started.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator

import grpc
from tenacity import RetryCallState

from edge import images
from edge.capture import metrics
from edge.capture.frames import HealthSnapshot
from edge.capture.sources import is_file
from edge.capture.worker import CameraWorker
from edge.health import check
from edge.plan import GatewayPlan
from edge.service import CHANNEL_OPTIONS, EdgeServer, describe_error, wait_for_signal
from locowatch.backoff import Backoff, next_delay
from locowatch.facility.config import FacilityConfig
from locowatch.v1 import edge_pb2_grpc, frames_pb2, uplink_pb2, uplink_pb2_grpc

log = logging.getLogger(__name__)

ENCODINGS = {"raw": images.RAW_BGR8, "jpeg": images.JPEG}
HEALTH_INTERVAL_S = 5.0
PUBLISH_TIMEOUT_S = 5.0
FILES_WAIT_S = 600.0  # file cameras start at the latest this long after capture does
FILES_POLL_S = 1.0
TAKE_POLL_S = 0.5  # how often an idle frame stream checks whether it should end
# gRPC's own reconnect backoff grows to 120 s; the services of one gateway come and go
# together (a restart, a deploy), so capture wants to see the aggregator again quickly.
PEER_CHANNEL_OPTIONS = [
    *CHANNEL_OPTIONS,
    ("grpc.initial_reconnect_backoff_ms", 500),
    ("grpc.min_reconnect_backoff_ms", 500),
    ("grpc.max_reconnect_backoff_ms", 5_000),
]
PEER_BACKOFF = Backoff(initial_s=0.5, max_s=10.0, jitter_s=0.5, reset_after_s=10.0)


def peer_channel(target: str) -> grpc.Channel:
    return grpc.insecure_channel(target, options=PEER_CHANNEL_OPTIONS)


class ChannelWatch:
    """Logs once when the channel to a peer service connects, once when it is lost."""

    def __init__(self, channel: grpc.Channel, peer: str, while_away: str) -> None:
        self.channel = channel
        self.peer = peer
        self.while_away = while_away
        self.ready: bool | None = None
        channel.subscribe(self._changed, try_to_connect=True)

    def _changed(self, connectivity: grpc.ChannelConnectivity) -> None:
        if connectivity == grpc.ChannelConnectivity.READY and self.ready is not True:
            self.ready = True
            log.info("%s connected", self.peer)
        elif connectivity == grpc.ChannelConnectivity.TRANSIENT_FAILURE and self.ready is not False:
            self.ready = False
            log.warning("%s unreachable; %s until it is back", self.peer, self.while_away)

    def close(self) -> None:
        self.channel.unsubscribe(self._changed)


class FrameSender:
    """Pushes one camera's newest frames to the aggregator, reconnecting when it is away."""

    def __init__(
        self,
        worker: CameraWorker,
        channel: grpc.Channel,
        encoding: frames_pb2.ImageEncoding = images.RAW_BGR8,
        backoff: Backoff = PEER_BACKOFF,
    ) -> None:
        self.worker = worker
        self.camera_id = worker.camera_id
        self.stub = edge_pb2_grpc.AggregatorStub(channel)
        self.encoding = encoding
        self.backoff = backoff
        self.sent = 0
        self.streams = 0  # PushFrames streams opened
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name=f"capture-send:{self.camera_id}", daemon=True
        )

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout_s)

    def _run(self) -> None:
        while not self._stop.is_set():
            retrying = self.backoff.retrying(self._stop, grpc.RpcError, self._before_retry)
            try:
                retrying(self._stream)
            except grpc.RpcError:
                pass  # stopped while retrying
            except Exception:
                log.exception("%s: frame sender failed; restarting it", self.camera_id)
                self._stop.wait(self.backoff.max_s)

    def _stream(self) -> None:
        """One PushFrames stream, until stopped or broken; raises when it broke early."""
        if self._stop.is_set():
            return
        done = threading.Event()
        opened = time.monotonic()
        self.streams += 1
        call = self.stub.PushFrames.future(self._frames(done))
        try:
            response = self._wait(call, done)
        except grpc.RpcError as exc:
            metrics.PUSH_ERRORS.labels(self.camera_id).inc()
            if time.monotonic() - opened < self.backoff.reset_after_s:
                raise
            log.warning(
                "%s: frame stream to the aggregator broke: %s", self.camera_id, describe_error(exc)
            )
            return  # it had worked for a while: reconnect at once
        finally:
            done.set()
        log.debug("%s: frame stream closed: %s", self.camera_id, response)

    def _wait(
        self, call: grpc.Future, done: threading.Event
    ) -> frames_pb2.PushFramesResponse | None:
        """The stream's answer; on stop, end the stream and wait briefly for it."""
        while not self._stop.is_set():
            try:
                return call.result(timeout=1.0)
            except grpc.FutureTimeoutError:
                continue
        done.set()  # the request stream ends, the aggregator answers
        try:
            return call.result(timeout=2.0)
        except (grpc.FutureTimeoutError, grpc.FutureCancelledError):
            call.cancel()
            return None

    def _frames(self, done: threading.Event) -> Iterator[frames_pb2.Frame]:
        while not (done.is_set() or self._stop.is_set()):
            frame = self.worker.frames.take(timeout=TAKE_POLL_S)
            if frame is None or done.is_set():
                continue
            message = frame.to_proto(self.encoding)
            metrics.FRAME_AGE.labels(self.camera_id).set(time.time() - frame.capture_time)
            metrics.FRAMES_SENT.labels(self.camera_id).inc()
            self.sent += 1
            yield message

    def _before_retry(self, state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome is not None else None
        # The aggregator being away is logged once for all cameras (``ChannelWatch``);
        # anything else (it refused this camera's stream) is this camera's own news.
        away = isinstance(error, grpc.Call) and error.code() == grpc.StatusCode.UNAVAILABLE
        level = logging.WARNING if state.attempt_number == 1 and not away else logging.DEBUG
        log.log(
            level,
            "%s: frame stream failed (%s); retrying in %.1f s",
            self.camera_id,
            describe_error(error),
            next_delay(state),
        )


class HealthPublisher:
    """Publishes camera health to the uplink: periodically, and at once on a state change.

    While the uplink answers, every state change is sent (a STALLED right before a
    RECONNECTING included). While it is away, each camera's pending health collapses to
    its latest, refreshed at every retry: nothing piles up.
    """

    MAX_PENDING_PER_CAMERA = 8

    def __init__(
        self,
        channel: grpc.Channel,
        interval_s: float = HEALTH_INTERVAL_S,
        backoff: Backoff = PEER_BACKOFF,
    ) -> None:
        self.stub = uplink_pb2_grpc.UplinkStub(channel)
        self.interval_s = interval_s
        self.backoff = backoff
        self.published = 0
        self.workers: dict[str, CameraWorker] = {}
        self._pending: dict[str, list[HealthSnapshot]] = {}
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._failing = False
        self._thread = threading.Thread(target=self._run, name="capture-health", daemon=True)

    def watch(self, worker: CameraWorker) -> None:
        """Publish this worker's health every ``interval_s``."""
        self.workers[worker.camera_id] = worker

    def notify(self, snapshot: HealthSnapshot) -> None:
        """A camera changed state: publish its health now (a worker's ``on_state``)."""
        with self._lock:
            queue = self._pending.setdefault(snapshot.camera_id, [])
            queue.append(snapshot)
            del queue[: -self.MAX_PENDING_PER_CAMERA]
        self._wake.set()

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        """Stop, after one last short try to publish what is pending (the STOPPED states)."""
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout_s)
        try:
            self._publish(timeout_s=2.0)
        except grpc.RpcError as exc:
            log.info("last camera health not published: %s", describe_error(exc))

    def _run(self) -> None:
        next_round = time.monotonic()
        while not self._stop.is_set():
            self._wake.wait(max(0.0, next_round - time.monotonic()))
            self._wake.clear()
            if self._stop.is_set():
                return
            if time.monotonic() >= next_round:
                for worker in list(self.workers.values()):
                    self.notify(worker.health())
                self._wake.clear()
                next_round = time.monotonic() + self.interval_s
            retrying = self.backoff.retrying(self._stop, grpc.RpcError, self._before_retry)
            try:
                retrying(self._publish)
            except grpc.RpcError:
                return  # stopped while the uplink was away; stop() tries once more
            except Exception:
                log.exception("camera health publisher failed; going on")

    def _publish(self, timeout_s: float = PUBLISH_TIMEOUT_S) -> None:
        """Publish what is pending, oldest first per camera; on failure keep the latest."""
        with self._lock:
            if self._failing:  # a retry: send the newest health of each camera, no backlog
                for camera_id in self._pending:
                    worker = self.workers.get(camera_id)
                    latest = self._pending[camera_id][-1]
                    self._pending[camera_id] = [worker.health() if worker else latest]
            batch = {c: list(q) for c, q in self._pending.items() if q}
        if not batch:
            return
        snapshots = [s for queue in batch.values() for s in queue]
        request = uplink_pb2.PublishRequest(
            envelopes=[uplink_pb2.Envelope(camera_health=s.to_proto()) for s in snapshots]
        )
        try:
            self.stub.Publish(request, timeout=timeout_s)
        except grpc.RpcError:
            metrics.HEALTH_PUBLISH_ERRORS.inc()
            with self._lock:
                self._failing = True
            raise
        with self._lock:
            for camera_id, sent in batch.items():
                queue = self._pending.get(camera_id, [])
                self._pending[camera_id] = [s for s in queue if s not in sent]
            self._failing, recovered = False, self._failing
        self.published += len(snapshots)
        metrics.HEALTH_PUBLISHED.inc(len(snapshots))
        if recovered:
            log.info("uplink reached again; camera health published")

    def _before_retry(self, state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome is not None else None
        level = logging.WARNING if state.attempt_number == 1 else logging.DEBUG
        log.log(
            level,
            "uplink unreachable (%s); keeping the latest camera health, retrying in %.1f s",
            describe_error(error),
            next_delay(state),
        )


class CaptureService:
    """Every camera of the facility file, captured and sent; ``start`` and ``stop``."""

    def __init__(
        self,
        config: FacilityConfig,
        plan: GatewayPlan,
        *,
        health_interval_s: float = HEALTH_INTERVAL_S,
        camera_backoff: Backoff | None = None,
        peer_backoff: Backoff = PEER_BACKOFF,
        files_wait_s: float = FILES_WAIT_S,
    ) -> None:
        service = plan.service("capture")
        self.files_wait_s = files_wait_s  # 0: file cameras start at once, like live ones
        self.server = EdgeServer("capture", service.host, service.port, service.metrics_port)
        self.encoding = ENCODINGS[plan.gateway.frame_encoding]
        self.aggregator_address = plan.aggregator.address
        self.uplink_address = plan.uplink.address
        self.aggregator_channel = peer_channel(self.aggregator_address)
        self.uplink_channel = peer_channel(self.uplink_address)
        self.watch = ChannelWatch(
            self.aggregator_channel,
            f"aggregator {self.aggregator_address}",
            "each camera keeps only its newest frame",
        )
        self.publisher = HealthPublisher(self.uplink_channel, health_interval_s, peer_backoff)
        self.workers = [
            CameraWorker(camera, on_state=self.publisher.notify, backoff=camera_backoff)
            for camera in config.cameras
        ]
        for worker in self.workers:
            self.publisher.watch(worker)
        self.senders = [
            FrameSender(w, self.aggregator_channel, self.encoding, peer_backoff)
            for w in self.workers
        ]
        self.processing = [plan.aggregator, *plan.estimators]  # what file cameras wait for
        self._stopping = threading.Event()

    def start(self) -> None:
        self.server.start()
        # footage plays from its start: file cameras wait until it can be processed
        waiting = self.files_wait_s > 0
        files = [w for w in self.workers if waiting and is_file(w.camera.source)]
        for worker in self.workers:
            if worker not in files:
                worker.start()
        if files:
            threading.Thread(
                target=self._start_when_ready, args=(files,), name="files", daemon=True
            ).start()
        for sender in self.senders:
            sender.start()
        self.publisher.start()
        self.server.set_ready(True)
        if not self.workers:
            log.warning("the facility file lists no cameras: nothing to capture")
        log.info(
            "capturing %d cameras; frames (%s) -> aggregator %s, health -> uplink %s",
            len(self.workers),
            "raw" if self.encoding == images.RAW_BGR8 else "jpeg",
            self.aggregator_address,
            self.uplink_address,
        )

    def _start_when_ready(self, files: list[CameraWorker]) -> None:
        """Start the file cameras once the aggregator and every estimator serve (an engine
        can take minutes to open): a live camera's early frames are stale anyway, a
        file's first minute is the footage's first minute."""
        names = ", ".join(w.camera_id for w in files)
        started = time.monotonic()
        next_line = started
        while not self._stopping.is_set():
            waiting = [h.service.name for h in check(self.processing, 2.0) if not h.serving]
            waited = time.monotonic() - started
            if not waiting or waited >= self.files_wait_s:
                break
            if time.monotonic() >= next_line:  # a line every 10 s, not one per poll
                log.info("file cameras %s wait for %s to serve", names, ", ".join(waiting))
                next_line += 10.0
            self._stopping.wait(FILES_POLL_S)
        if self._stopping.is_set():
            return
        if waiting:
            log.warning(
                "file cameras %s start although %s do not serve after %.0f s",
                names, ", ".join(waiting), waited,
            )  # fmt: skip
        for worker in files:
            worker.start()

    def stop(self) -> None:
        self._stopping.set()
        self.server.set_ready(False)
        for worker in self.workers:
            worker.stop(timeout_s=2.0)
        for sender in self.senders:
            sender.stop(timeout_s=3.0)
        self.publisher.stop(timeout_s=3.0)
        self.server.stop()
        self.watch.close()
        self.aggregator_channel.close()
        self.uplink_channel.close()


def run_capture(config: FacilityConfig, plan: GatewayPlan) -> None:
    """Run the capture service until SIGINT or SIGTERM."""
    service = CaptureService(config, plan)
    try:
        service.start()
        wait_for_signal()
    finally:
        service.stop()
