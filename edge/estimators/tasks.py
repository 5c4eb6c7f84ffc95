"""What an estimator does with a packet, per kind of network (``meta.json``'s task).

A task prepares a packet's image as the network's input and turns the network's output
for it back into an estimation. ``position`` reads strips and reports occupied intervals;
``classifier`` (the series) reads body windows and ``sequence`` (the plate) reads end
faces, both reporting an attribute named after the estimator's task in the flow config
(``model``, ``plate``, or a new one such as ``pantograph``): no code per attribute.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from edge import images
from locowatch.models import position as pos
from locowatch.models.artefacts import Artefact
from locowatch.models.attributes import (
    Reading,
    body_input,
    decode_class,
    decode_ctc,
    plate_input,
)
from locowatch.v1 import common_pb2, estimation_pb2, frames_pb2, uplink_pb2

REAL, CUT = estimation_pb2.END_KIND_REAL, estimation_pb2.END_KIND_CUT
HIDDEN = estimation_pb2.BLIND_KIND_HIDDEN
Estimation = estimation_pb2.PositionEstimation | estimation_pb2.AttributeEstimation


class Task(Protocol):
    @property
    def kind(self) -> int:
        """The PacketKind it reads."""

    def prepare(self, packet: frames_pb2.Packet) -> np.ndarray: ...

    def estimate(self, packet: frames_pb2.Packet, output: np.ndarray) -> Estimation | None: ...


@dataclass(frozen=True)
class PositionTask:
    @property
    def kind(self) -> int:
        return frames_pb2.PACKET_KIND_TRACK_STRIP

    def prepare(self, packet: frames_pb2.Packet) -> np.ndarray:
        return pos.strip_input(images.decode(packet.image))

    def estimate(
        self, packet: frames_pb2.Packet, output: np.ndarray
    ) -> estimation_pb2.PositionEstimation:
        covered = (packet.covered.start_m, packet.covered.end_m)
        intervals = pos.decode(output, packet.span.start_m, covered)
        hidden = pos.hidden_spans(output, packet.span.start_m, covered)
        return estimation_pb2.PositionEstimation(
            camera_id=packet.camera_id,
            capture_time=packet.capture_time,
            covered=packet.covered,
            intervals=[
                estimation_pb2.OccupiedInterval(
                    start_m=i.start_m,
                    end_m=i.end_m,
                    start_kind=REAL if i.start_real else CUT,
                    end_kind=REAL if i.end_real else CUT,
                    confidence=i.confidence,
                )
                for i in intervals
            ],
            confidence=pos.view_confidence(output),
            blind=[estimation_pb2.BlindSpan(start_m=a, end_m=b, kind=HIDDEN) for a, b in hidden],
            plates=[
                estimation_pb2.PlateMark(
                    metre=m.metre, height_m=m.height_m, confidence=m.confidence
                )
                for m in pos.plate_marks(output, packet.span.start_m, covered)
            ],
        )


@dataclass(frozen=True)
class AttributeTask:
    """A classifier on body windows or a sequence reader on end faces."""

    name: str
    artefact: Artefact

    @property
    def kind(self) -> int:
        if self.artefact.task == "sequence":
            return frames_pb2.PACKET_KIND_PLATE_CROP
        return frames_pb2.PACKET_KIND_BODY_CROP

    def prepare(self, packet: frames_pb2.Packet) -> np.ndarray:
        image = images.decode(packet.image)
        return plate_input(image) if self.artefact.task == "sequence" else body_input(image)

    def read(self, output: np.ndarray) -> Reading:
        if self.artefact.task == "sequence":
            return decode_ctc(output, self.artefact.labels)
        return decode_class(output, self.artefact.labels)

    def estimate(
        self, packet: frames_pb2.Packet, output: np.ndarray
    ) -> estimation_pb2.AttributeEstimation | None:
        reading = self.read(output)
        if not reading.value:  # a hidden or unreadable plate reads as no text
            return None
        return estimation_pb2.AttributeEstimation(
            camera_id=packet.camera_id,
            capture_time=packet.capture_time,
            name=self.name,
            value=reading.value,
            confidence=reading.confidence,
            track_id=packet.span.track_id,
            position_m=packet.anchor_m,
            alternatives=[
                estimation_pb2.AttributeCandidate(value=v, confidence=c)
                for v, c in reading.alternatives
            ],
        )


def task_for(name: str, artefact: Artefact) -> Task:
    if artefact.task == "position":
        return PositionTask()
    return AttributeTask(name, artefact)


def stamped(estimation: Estimation, provenance: common_pb2.Provenance) -> Estimation:
    """A copy of ``estimation`` for one flow."""
    copy = type(estimation)()
    copy.CopyFrom(estimation)  # type: ignore[arg-type]
    copy.provenance.CopyFrom(provenance)
    return copy


def to_envelope(estimation: Estimation) -> uplink_pb2.Envelope:
    """``estimation`` as the uplink carries it."""
    if isinstance(estimation, estimation_pb2.PositionEstimation):
        return uplink_pb2.Envelope(position=estimation)
    return uplink_pb2.Envelope(attribute=estimation)
