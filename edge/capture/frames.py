"""What capture hands on: a captured frame, the one-slot mailbox it waits in, and health.

``CapturedFrame`` and ``HealthSnapshot`` are the typed containers at capture's edges, each
with ``to_proto`` for the wire (``locowatch.v1.Frame`` to the aggregator,
``locowatch.v1.CameraHealth`` to the uplink).
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from enum import StrEnum

import numpy as np
from google.protobuf.timestamp_pb2 import Timestamp

from edge import images
from locowatch.v1 import frames_pb2, health_pb2


class CameraState(StrEnum):
    """A camera's state as health reports it (``locowatch.v1.CameraState``)."""

    STARTING = "starting"  # opening the stream for the first time
    STREAMING = "streaming"  # frames arrive
    STALLED = "stalled"  # no frame within the watchdog timeout; reopening
    RECONNECTING = "reconnecting"  # the stream failed; waiting (with backoff) to reopen it
    STOPPED = "stopped"  # the worker stopped, or a file without looping ended

    def to_proto(self) -> health_pb2.CameraState:
        return _PROTO_STATES[self]


_PROTO_STATES = {
    CameraState.STARTING: health_pb2.CAMERA_STATE_STARTING,
    CameraState.STREAMING: health_pb2.CAMERA_STATE_STREAMING,
    CameraState.STALLED: health_pb2.CAMERA_STATE_STALLED,
    CameraState.RECONNECTING: health_pb2.CAMERA_STATE_RECONNECTING,
    CameraState.STOPPED: health_pb2.CAMERA_STATE_STOPPED,
}


def _timestamp(unix_s: float) -> Timestamp:
    """Seconds and nanoseconds apart: ``unix_s * 1e9`` would lose the last digits."""
    seconds = math.floor(unix_s)
    nanos = min(round((unix_s - seconds) * 1e9), 999_999_999)
    return Timestamp(seconds=seconds, nanos=nanos)


@dataclass(frozen=True)
class CapturedFrame:
    """One frame as read from a camera: BGR pixels, when it was read, its per-camera number."""

    camera_id: str
    seq: int  # per camera, from 0 when the worker starts, across reconnects
    capture_time: float  # unix seconds, stamped when the frame was read from the stream
    image: np.ndarray  # (height, width, 3) uint8 BGR

    def __post_init__(self) -> None:
        if self.image.ndim != 3 or self.image.shape[2] != 3 or self.image.dtype != np.uint8:
            raise ValueError(
                f"expected a (height, width, 3) uint8 image, got {self.image.shape} "
                f"{self.image.dtype}"
            )

    def to_proto(
        self, encoding: frames_pb2.ImageEncoding | None = images.RAW_BGR8
    ) -> frames_pb2.Frame:
        """The wire message; ``encoding`` None leaves the image out (the header alone)."""
        frame = frames_pb2.Frame(
            camera_id=self.camera_id,
            frame_seq=self.seq,
            capture_time=_timestamp(self.capture_time),
        )
        if encoding is not None:
            frame.image.CopyFrom(images.encode(self.image, encoding))
        return frame


class FrameSchedule:
    """Which frames of a source to keep so that they come at ``fps`` on the source's clock.

    Keeps the first frame at or after the next due time, less a quarter period (so a source
    at exactly ``fps`` keeps every frame despite jitter); the schedule advances by one
    period, so the rate averages ``fps`` whatever the source's rate. Capture keeps live
    frames by it, replay recorded ones: both keep the same frames of the same stream.
    """

    def __init__(self, fps: float) -> None:
        self.period = 1.0 / fps
        self.next_due: float | None = None  # frame time the next kept frame is due at

    def due(self, frame_time: float) -> bool:
        due = self.next_due
        if due is None or frame_time - due > self.period:  # the first frame, or after a gap
            due = frame_time
        if frame_time < due - self.period / 4:
            self.next_due = due
            return False
        self.next_due = due + self.period
        return True


class LatestFrame:
    """A one-slot mailbox: ``put`` replaces what is there, ``take`` waits for a newer frame.

    The frame path never queues: a consumer slower than the camera sees the newest frame
    each time it asks and the ones in between are dropped (counted in ``superseded``).
    """

    def __init__(self) -> None:
        self._frame: CapturedFrame | None = None
        self._taken = True
        self._cond = threading.Condition()
        self.superseded = 0

    def put(self, frame: CapturedFrame) -> bool:
        """Store ``frame``; True when it replaced a frame nobody took."""
        with self._cond:
            replaced = not self._taken
            if replaced:
                self.superseded += 1
            self._frame, self._taken = frame, False
            self._cond.notify_all()
        return replaced

    def take(self, timeout: float | None = None) -> CapturedFrame | None:
        """The newest frame not taken yet, waiting up to ``timeout`` s for one; else None."""
        with self._cond:
            if not self._cond.wait_for(lambda: not self._taken, timeout):
                return None
            self._taken = True
            return self._frame

    def peek(self) -> CapturedFrame | None:
        """The newest frame, taken or not (None before the first)."""
        with self._cond:
            return self._frame


@dataclass(frozen=True)
class HealthSnapshot:
    """A camera's health at ``observed_time`` (unix seconds)."""

    camera_id: str
    observed_time: float
    state: CameraState
    fps: float  # frames delivered per second over the last few seconds
    last_frame_time: float | None  # capture time of the newest frame; None before the first
    reconnects: int  # reopenings of the stream since the worker started
    decode_errors: int  # frames that could not be decoded or had the wrong size
    stalls: int  # watchdog expiries
    abandoned_readers: int  # readers left blocked in a read by the watchdog, not returned yet
    message: str  # the last error, human readable; empty while healthy

    def to_proto(self) -> health_pb2.CameraHealth:
        health = health_pb2.CameraHealth(
            camera_id=self.camera_id,
            observed_time=_timestamp(self.observed_time),
            state=self.state.to_proto(),
            fps=self.fps,
            reconnects=self.reconnects,
            decode_errors=self.decode_errors,
            message=self.message,
        )
        if self.last_frame_time is not None:
            health.last_frame_time.CopyFrom(_timestamp(self.last_frame_time))
        return health
