"""Prometheus metrics of the capture service, one definition each (scraped at /metrics)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

from edge.capture.frames import CameraState

FRAMES = Counter(
    "locowatch_capture_frames", "Frames taken from the camera at its configured fps.", ["camera"]
)
FRAMES_SENT = Counter(
    "locowatch_capture_frames_sent", "Frames handed to the aggregator stream.", ["camera"]
)
FRAMES_SUPERSEDED = Counter(
    "locowatch_capture_frames_superseded",
    "Frames replaced by a newer one before they could be sent (latest frame wins).",
    ["camera"],
)
DECODE_ERRORS = Counter(
    "locowatch_capture_decode_errors",
    "Frames that could not be decoded or had the wrong size.",
    ["camera"],
)
RECONNECTS = Counter("locowatch_capture_reconnects", "Reopenings of the stream.", ["camera"])
STALLS = Counter(
    "locowatch_capture_stalls",
    "Watchdog expiries: no frame for the camera's watchdog_timeout_s.",
    ["camera"],
)
STATE = Gauge(
    "locowatch_capture_camera_state",
    "1 for the camera's current state, 0 for the others.",
    ["camera", "state"],
)
LAST_FRAME = Gauge(
    "locowatch_capture_last_frame_timestamp_seconds",
    "Capture time (unix) of the camera's newest frame.",
    ["camera"],
)
FRAME_AGE = Gauge(
    "locowatch_capture_frame_age_seconds",
    "Age of the newest frame handed to the aggregator, at hand-off.",
    ["camera"],
)
ABANDONED_READERS = Gauge(
    "locowatch_capture_abandoned_readers",
    "Readers the watchdog gave up on whose blocked read has not returned yet.",
    ["camera"],
)
PUSH_ERRORS = Counter(
    "locowatch_capture_push_errors",
    "PushFrames streams to the aggregator that failed (it was down or went away).",
    ["camera"],
)
HEALTH_PUBLISHED = Counter(
    "locowatch_capture_health_published", "CameraHealth envelopes accepted by the uplink."
)
HEALTH_PUBLISH_ERRORS = Counter(
    "locowatch_capture_health_publish_errors", "Publish calls to the uplink that failed."
)


def set_state(camera_id: str, state: CameraState) -> None:
    for each in CameraState:
        STATE.labels(camera_id, each.value).set(1 if each is state else 0)
