"""The gateway's processing of recorded frames, in one process and in step, as fast as the
machine allows.

The live gateway runs capture, the aggregator and one process per estimator, each at its
own pace: under load a slow estimator loses old packets, and what it loses depends on the
machine. A replay runs the same objects (``Aggregator`` for strips, gating and the crops
where bodies are, ``Estimator`` for engines, tasks and what nearer bodies hide) on every
frame of a recording, time step by time step: no threads between them, no gRPC, nothing
dropped, the same estimations every run. Scoring a model version on a recorded day then
takes as long as the networks need, not a day.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace

from edge.aggregator.fanout import Subscriber
from edge.aggregator.service import Aggregator
from edge.capture.frames import CapturedFrame
from edge.estimators.service import Estimator, open_estimator
from edge.estimators.tasks import Estimation
from edge.plan import EstimatorPlan, check_models, gateway_plan
from locowatch.facility.config import FacilityConfig
from locowatch.v1 import estimation_pb2, frames_pb2, uplink_pb2

log = logging.getLogger(__name__)

# Packets wait in the fan-out between the aggregator and an estimator only within one step
# (16 cameras, a few views and crops each): far below this, so nothing is ever dropped.
STEP_QUEUE = 100_000


@dataclass
class _Stage:
    estimator: Estimator
    subscriber: Subscriber
    locates: bool  # the locating flow's position estimator: its bodies are where crops are cut


class GatewayReplay:
    """Frames in, the estimations of every flow out, as the live gateway would send them."""

    def __init__(self, config: FacilityConfig, threads: int | None = None) -> None:
        plan = gateway_plan(config)
        check_models(plan)
        assert config.gateway is not None
        self.aggregator = Aggregator(config, config.gateway.gating)
        threads = threads or os.cpu_count() or 1  # one process does all: give it the cores
        self.stages: list[_Stage] = []
        for service in sorted(plan.estimators, key=lambda s: not s.estimator.is_position):  # type: ignore[union-attr]
            assert service.estimator is not None
            estimator = open_estimator(config, _with_threads(service.estimator, threads))
            request = frames_pb2.SubscribeRequest(
                subscriber=service.name,
                flow=",".join(service.estimator.flows),
                kinds=[estimator.task.kind],  # type: ignore[list-item]
                windows=estimator.artefact.reads,
                max_queue=STEP_QUEUE,
            )
            subscriber = self.aggregator.fanout.subscribe(request)
            locates = service.estimator.is_position and plan.locate_flow in service.estimator.flows
            self.stages.append(_Stage(estimator, subscriber, locates))
        self.frames = self.frames_refused = 0

    def step(self, frames: Iterable[CapturedFrame]) -> list[uplink_pb2.Envelope]:
        """The estimations of frames taken at about the same time, in capture order."""
        for frame in frames:
            self.frames += 1
            if not self.aggregator.take_frame(frame.to_proto(None), frame.image):
                self.frames_refused += 1  # logged and counted by the aggregator
        envelopes: list[uplink_pb2.Envelope] = []
        for stage in self.stages:  # position first: its bodies are where the crops are cut
            estimations = self._run(stage)
            if stage.locates:
                self.aggregator.locate(
                    e for e in estimations if isinstance(e, estimation_pb2.PositionEstimation)
                )
            envelopes += stage.estimator.envelopes(estimations)
        envelopes.sort(key=_capture_ns)
        if any(stage.subscriber.dropped for stage in self.stages):
            raise RuntimeError("a replay step overflowed an estimator's queue")  # a bug
        return envelopes

    @staticmethod
    def _run(stage: _Stage) -> list[Estimation]:
        packets = stage.subscriber.take(0.0)
        size = stage.estimator.plan.ref.max_batch
        estimations: list[Estimation] = []
        for start in range(0, len(packets), size):
            estimations += stage.estimator.run(packets[start : start + size])
        return estimations

    def close(self) -> None:
        for stage in self.stages:
            self.aggregator.fanout.unsubscribe(stage.subscriber)


def replay(
    gateway: GatewayReplay, frames: Iterable[CapturedFrame], step_s: float
) -> Iterator[uplink_pb2.Envelope]:
    """Every estimation of ``frames`` (in capture order), processed ``step_s`` at a time as
    the live estimators batch what came at about the same time."""
    batch: list[CapturedFrame] = []
    step_end: float | None = None
    for frame in frames:
        if step_end is not None and frame.capture_time >= step_end:
            yield from gateway.step(batch)
            batch = []
        if not batch:
            step_end = frame.capture_time + step_s
        batch.append(frame)
    if batch:
        yield from gateway.step(batch)


def _with_threads(plan: EstimatorPlan, threads: int) -> EstimatorPlan:
    return replace(plan, ref=plan.ref.model_copy(update={"cpu_threads": threads}))


def _capture_ns(envelope: uplink_pb2.Envelope) -> int:
    which = envelope.WhichOneof("payload")
    return int(getattr(envelope, which).capture_time.ToNanoseconds()) if which else 0
