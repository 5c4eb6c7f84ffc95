"""An estimator process: packets from the aggregator, batched through an engine, out to
the uplink as estimations, one copy per flow the estimator serves.

Three threads: the *subscriber* keeps a Subscribe stream to the aggregator open
(reconnecting with backoff) and drops the oldest packets when the worker lags; the
*worker* takes batches (up to ``max_batch`` packets, or what came within
``batch_deadline_ms``), answers unchanged strips with the last estimation of their view
(change gating), runs the engine once per input shape on the rest, and publishes; gRPC
serves ``Estimate``/``Info`` and health, NOT_SERVING until the engine is open (a first
TensorRT build takes minutes). The locating flow's position estimator also tells the
aggregator where the bodies are (``Locate``), so that it cuts series and plate crops.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import numpy as np
from tenacity import RetryCallState

from edge.engines import Engine, open_engine
from edge.engines.plans import StripWidth
from edge.estimators import metrics
from edge.estimators.acceptance import Acceptance
from edge.estimators.sight import Sight
from edge.estimators.tasks import (
    Estimation,
    PositionTask,
    Task,
    stamped,
    task_for,
    to_envelope,
)
from edge.plan import EstimatorPlan, GatewayPlan, ServicePlan
from edge.service import EdgeServer, channel, describe_error, wait_for_signal
from locowatch.backoff import Backoff
from locowatch.facility.config import FacilityConfig
from locowatch.facility.rectify import strip_window
from locowatch.facility.visibility import FacilityVisibility
from locowatch.models.artefacts import Artefact, resolve
from locowatch.v1 import (
    common_pb2,
    edge_pb2,
    edge_pb2_grpc,
    estimation_pb2,
    frames_pb2,
    uplink_pb2,
    uplink_pb2_grpc,
)

log = logging.getLogger(__name__)

SERVICE_NAME = edge_pb2.DESCRIPTOR.services_by_name["Estimator"].full_name
INBOX_PACKETS = 256
PUBLISH_GIVE_UP_S = 30.0  # an estimation older than this is not worth queueing any more
RPC_TIMEOUT_S = 10.0


class Inbox:
    """Packets waiting for the worker; the oldest go first when it lags."""

    def __init__(self, size: int = INBOX_PACKETS) -> None:
        self._packets: deque[frames_pb2.Packet] = deque(maxlen=size)
        self._ready = threading.Condition()

    def put(self, packet: frames_pb2.Packet) -> None:
        with self._ready:
            if len(self._packets) == self._packets.maxlen:
                metrics.PACKETS_DROPPED.inc()
            self._packets.append(packet)
            self._ready.notify()

    def batch(self, max_size: int, deadline_s: float, wait_s: float) -> list[frames_pb2.Packet]:
        """Up to ``max_size`` packets: waits ``wait_s`` for a first, then ``deadline_s`` more."""
        with self._ready:
            if not self._ready.wait_for(lambda: bool(self._packets), wait_s):
                return []
            until = time.monotonic() + deadline_s
            while len(self._packets) < max_size:
                left = until - time.monotonic()
                if left <= 0 or not self._ready.wait(left):
                    break
            return [self._packets.popleft() for _ in range(min(max_size, len(self._packets)))]


class Estimator:
    """Engine, task and the gating memory: packets in, estimations (no flow yet) out."""

    def __init__(
        self, plan: EstimatorPlan, artefact: Artefact, engine: Engine, sight: Sight | None = None
    ) -> None:
        self.plan = plan
        self.artefact = artefact
        self.engine = engine
        self.task: Task = task_for(plan.task, artefact)
        self.sight = sight  # position estimators: what nearer bodies hide from each camera
        self.acceptance = Acceptance.of(plan.task, plan.ref.accept)
        self._last: dict[tuple[str, str], estimation_pb2.PositionEstimation] = {}

    def provenance(self, flow: str) -> common_pb2.Provenance:
        return common_pb2.Provenance(
            flow=flow, model_version=self.artefact.ref, engine=self.engine.name
        )

    def envelopes(self, estimations: list[Estimation]) -> list[uplink_pb2.Envelope]:
        """``estimations`` as the uplink carries them: one copy per flow this serves."""
        return [
            to_envelope(stamped(e, self.provenance(flow)))
            for flow in self.plan.flows
            for e in estimations
        ]

    def run(self, packets: list[frames_pb2.Packet]) -> list[Estimation]:
        """One estimation per packet that yields one, in packet order."""
        results: list[Estimation | None] = [None] * len(packets)
        todo: dict[tuple[int, ...], list[tuple[int, np.ndarray]]] = {}
        for index, packet in enumerate(packets):
            repeated = self._repeat(packet)
            if repeated is not None:
                results[index] = repeated
                metrics.REPEATED.inc()
                continue
            tensor = self.task.prepare(packet)
            todo.setdefault(tensor.shape, []).append((index, tensor))
        for group in todo.values():  # one engine call per input shape (strip widths differ)
            started = time.perf_counter()
            outputs = self.engine.infer(np.stack([tensor for _, tensor in group]))
            metrics.INFER_SECONDS.observe(time.perf_counter() - started)
            metrics.BATCH_SIZE.observe(len(group))
            metrics.INFERRED.inc(len(group))
            for (index, _), output in zip(group, outputs, strict=True):
                estimation = self.task.estimate(packets[index], output)
                results[index] = self._remember(self._accepted(estimation))
        estimations = [r for r in results if r is not None]
        if self.sight is None:
            return estimations
        positions = [e for e in estimations if isinstance(e, estimation_pb2.PositionEstimation)]
        return list(self.sight.apply(positions)) + [
            e for e in estimations if not isinstance(e, estimation_pb2.PositionEstimation)
        ]

    def _accepted(self, estimation: Estimation | None) -> Estimation | None:
        if self.acceptance is None or not isinstance(
            estimation, estimation_pb2.AttributeEstimation
        ):
            return estimation
        return self.acceptance.check(estimation)

    def _repeat(self, packet: frames_pb2.Packet) -> estimation_pb2.PositionEstimation | None:
        """The last estimation of an unchanged view, stamped with this frame's time."""
        if not packet.unchanged or not isinstance(self.task, PositionTask):
            return None
        last = self._last.get((packet.camera_id, packet.covered.track_id))
        if last is None:
            return None
        repeated = estimation_pb2.PositionEstimation()
        repeated.CopyFrom(last)
        repeated.capture_time.CopyFrom(packet.capture_time)
        return repeated

    def _remember(self, estimation: Estimation | None) -> Estimation | None:
        if isinstance(estimation, estimation_pb2.PositionEstimation):
            self._last[(estimation.camera_id, estimation.covered.track_id)] = estimation
        return estimation


class EstimatorServicer(edge_pb2_grpc.EstimatorServicer):
    """``Estimate``/``Info``; UNAVAILABLE until ``attach`` hands it the opened estimator."""

    def __init__(self) -> None:
        self.estimator: Estimator | None = None
        self.lock = threading.Lock()  # Estimate calls share the gating memory with the worker

    def attach(self, estimator: Estimator) -> None:
        self.estimator = estimator

    def _ready(self, context: grpc.ServicerContext) -> Estimator:
        if self.estimator is None:
            context.abort(grpc.StatusCode.UNAVAILABLE, "the engine is still being opened")
        assert self.estimator is not None
        return self.estimator

    def Estimate(  # noqa: N802 (gRPC method name)
        self, request: frames_pb2.PacketBatch, context: grpc.ServicerContext
    ) -> estimation_pb2.EstimationBatch:
        estimator = self._ready(context)
        kind = estimator.task.kind
        if any(p.kind != kind for p in request.packets):
            context.abort(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"{estimator.plan.name} reads {frames_pb2.PacketKind.Name(kind)} packets only",
            )
        with self.lock:
            estimations = estimator.run(list(request.packets))
        provenance = estimator.provenance(estimator.plan.flows[0])
        return envelope_batch([stamped(e, provenance) for e in estimations])

    def Info(  # noqa: N802
        self, request: edge_pb2.EstimatorInfoRequest, context: grpc.ServicerContext
    ) -> edge_pb2.EstimatorInfo:
        estimator = self._ready(context)
        return edge_pb2.EstimatorInfo(
            task=estimator.plan.task,
            provenance=estimator.provenance(estimator.plan.flows[0]),
            max_batch=estimator.plan.ref.max_batch,
        )


def envelope_batch(estimations: list[Estimation]) -> estimation_pb2.EstimationBatch:
    batch = estimation_pb2.EstimationBatch()
    for e in estimations:
        if isinstance(e, estimation_pb2.PositionEstimation):
            batch.positions.append(e)
        else:
            batch.attributes.append(e)
    return batch


SUBSCRIBE_BACKOFF = Backoff(initial_s=0.2, max_s=5.0, jitter_s=1.0)
PUBLISH_BACKOFF = Backoff(initial_s=0.1, max_s=2.0, jitter_s=1.0)


def _log_retry(what: str) -> Callable[[RetryCallState], None]:
    def before_sleep(state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome else None
        log.warning("%s failed (%s); retry %d", what, describe_error(error), state.attempt_number)

    return before_sleep


class Pipeline:
    """The subscriber and worker threads of one estimator process."""

    def __init__(
        self, estimator: Estimator, plan: GatewayPlan, locate: bool, servicer_lock: threading.Lock
    ) -> None:
        self.estimator = estimator
        self.plan = plan
        self.locate_flow = plan.locate_flow if locate else None
        self.inbox = Inbox()
        self.stop = threading.Event()
        self._lock = servicer_lock
        self._aggregator = channel(plan.aggregator.address)
        self._uplink = channel(plan.uplink.address)
        self._call: Any = None  # the open Subscribe call, cancelled on close
        self.threads = [
            threading.Thread(target=self._subscribe_forever, name="subscriber", daemon=True),
            threading.Thread(target=self._work_forever, name="worker", daemon=True),
        ]

    def start(self) -> None:
        for thread in self.threads:
            thread.start()

    def close(self) -> None:
        self.stop.set()
        if self._call is not None:
            self._call.cancel()
        for thread in self.threads:
            thread.join(timeout=5)
        self._aggregator.close()
        self._uplink.close()

    # -- subscriber ---------------------------------------------------------------------------

    def _subscribe_forever(self) -> None:
        retrying = SUBSCRIBE_BACKOFF.retrying(
            self.stop, grpc.RpcError, _log_retry("subscribe to the aggregator")
        )
        try:
            for attempt in retrying:
                with attempt:
                    self._subscribe()
        except grpc.RpcError:
            if not self.stop.is_set():  # it only gives up when asked to stop
                raise

    def _subscribe(self) -> None:
        stub = edge_pb2_grpc.AggregatorStub(self._aggregator)
        request = frames_pb2.SubscribeRequest(
            subscriber=self.estimator.plan.name,
            flow=",".join(self.estimator.plan.flows),
            kinds=[self.estimator.task.kind],  # type: ignore[list-item]
            windows=self.estimator.artefact.reads,  # a reader gets the windows it learnt
        )
        stream: Iterator[frames_pb2.Packet] = stub.Subscribe(request, wait_for_ready=True)
        self._call = stream
        try:
            for packet in stream:
                metrics.PACKETS.inc()
                self.inbox.put(packet)
        except grpc.RpcError as error:
            if self.stop.is_set() and error.code() == grpc.StatusCode.CANCELLED:
                return
            raise
        if not self.stop.is_set():  # the aggregator ended the stream: subscribe again
            raise _StreamEnded()

    # -- worker -------------------------------------------------------------------------------

    def _work_forever(self) -> None:
        ref = self.estimator.plan.ref
        while not self.stop.is_set():
            packets = self.inbox.batch(ref.max_batch, ref.batch_deadline_ms / 1000, wait_s=0.5)
            if not packets:
                continue
            try:
                with self._lock:
                    estimations = self.estimator.run(packets)
            except Exception:  # a bad packet must not kill the estimator: log, count, go on
                log.exception("batch of %d packets failed", len(packets))
                continue
            if estimations:
                self._publish(estimations)

    def _publish(self, estimations: list[Estimation]) -> None:
        envelopes = self.estimator.envelopes(estimations)
        if self.locate_flow is not None:
            self._locate(estimations)
        try:
            for attempt in PUBLISH_BACKOFF.retrying(
                self.stop,
                grpc.RpcError,
                _log_retry("publish to the uplink"),
                give_up_after_s=PUBLISH_GIVE_UP_S,
            ):
                with attempt:
                    stub = uplink_pb2_grpc.UplinkStub(self._uplink)
                    stub.Publish(
                        uplink_pb2.PublishRequest(envelopes=envelopes),
                        timeout=RPC_TIMEOUT_S,
                        wait_for_ready=True,
                    )
        except grpc.RpcError as error:
            metrics.PUBLISH_FAILURES.inc()
            metrics.LOST.inc(len(envelopes))
            log.error("uplink unreachable for %.0f s (%s): %d estimations lost",
                      PUBLISH_GIVE_UP_S, describe_error(error), len(envelopes))  # fmt: skip
            return
        now = time.time()
        for estimation in estimations:
            metrics.LATENCY.observe(now - estimation.capture_time.ToNanoseconds() / 1e9)
        for flow in self.estimator.plan.flows:
            metrics.ESTIMATIONS.labels(flow).inc(len(estimations))

    def _locate(self, estimations: list[Estimation]) -> None:
        """Tell the aggregator where the bodies are; crops are a bonus, so never retried."""
        positions = [e for e in estimations if isinstance(e, estimation_pb2.PositionEstimation)]
        if not any(p.intervals for p in positions):
            return
        try:
            edge_pb2_grpc.AggregatorStub(self._aggregator).Locate(
                estimation_pb2.EstimationBatch(positions=positions), timeout=RPC_TIMEOUT_S
            )
        except grpc.RpcError as error:
            log.warning("locate at the aggregator failed: %s", describe_error(error))


class _StreamEnded(grpc.RpcError):
    def code(self) -> grpc.StatusCode:
        return grpc.StatusCode.UNAVAILABLE


def open_estimator(config: FacilityConfig, plan: EstimatorPlan) -> Estimator:
    artefact = resolve(plan.ref.model)
    assert config.gateway is not None
    cache = Path(config.gateway.data_dir) / "engines"
    log.info("%s: opening %s on engine %s", plan.name, artefact.ref, plan.ref.engine)
    started = time.monotonic()
    engine = open_engine(
        artefact,
        plan.ref.engine,
        plan.ref.max_batch,
        cache_dir=cache,
        threads=plan.ref.cpu_threads,
        views=strips(config) if plan.is_position else (),
    )
    log.info("%s: %s ready in %.1f s", plan.name, engine.name, time.monotonic() - started)
    sight = Sight(FacilityVisibility(config)) if plan.is_position else None
    return Estimator(plan, artefact, engine, sight)


def strips(config: FacilityConfig) -> list[StripWidth]:
    """Every view's strip as the aggregator cuts it: the widths a position network sees."""
    return [
        StripWidth(camera.id, view.track, strip_window(view.start_m, view.end_m).size[0])
        for camera in config.cameras
        for view in camera.views
    ]


def run_estimator(config: FacilityConfig, plan: GatewayPlan, service: ServicePlan) -> None:
    """Serve until SIGINT/SIGTERM; NOT_SERVING while the engine opens."""
    assert service.estimator is not None
    server = EdgeServer(service.name, service.host, service.port, service.metrics_port)
    servicer = EstimatorServicer()
    server.add(edge_pb2_grpc.add_EstimatorServicer_to_server, servicer, SERVICE_NAME)
    server.start()
    estimator = open_estimator(config, service.estimator)
    servicer.attach(estimator)
    locate = service.estimator.is_position and plan.locate_flow in service.estimator.flows
    pipeline = Pipeline(estimator, plan, locate, servicer.lock)
    pipeline.start()
    server.set_ready(True)
    metrics.READY.set(1)
    wait_for_signal()
    server.set_ready(False)
    pipeline.close()
    server.stop()
    estimator.engine.close()
