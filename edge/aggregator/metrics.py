"""Prometheus metrics of the aggregator, one definition each."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

FRAMES = Counter("locowatch_aggregator_frames", "Frames received, by camera.", ["camera"])
FRAMES_REJECTED = Counter(
    "locowatch_aggregator_frames_rejected",
    "Frames refused (unknown camera, bad image).",
    ["reason"],
)
PACKETS = Counter("locowatch_aggregator_packets", "Packets cut and fanned out, by kind.", ["kind"])
UNCHANGED = Counter(
    "locowatch_aggregator_unchanged_strips", "Strips marked unchanged by change gating.", ["camera"]
)
PACKETS_DROPPED = Counter(
    "locowatch_aggregator_packets_dropped",
    "Packets dropped (oldest first) because a subscriber fell behind.",
    ["subscriber"],
)
SUBSCRIBERS = Gauge("locowatch_aggregator_subscribers", "Subscriber streams open now.")
LOCATE_MISSES = Counter(
    "locowatch_aggregator_locate_misses",
    "Positions reported for a frame no longer cached (the estimator lagged too far).",
)
VIEWS_UNUSED = Gauge(
    "locowatch_aggregator_views_unused",
    "1 for a configured view the camera does not see from rail to roof anywhere (not used).",
    ["camera", "track"],
)
