"""Prometheus metrics of an estimator process, one definition each."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

PACKETS = Counter("locowatch_estimator_packets", "Packets received from the aggregator.")
PACKETS_DROPPED = Counter(
    "locowatch_estimator_packets_dropped", "Packets dropped (oldest first) while busy."
)
INFERRED = Counter("locowatch_estimator_inferred", "Packets run through the network.")
REPEATED = Counter(
    "locowatch_estimator_repeated",
    "Unchanged packets answered with the last estimation instead of the network.",
)
BATCH_SIZE = Histogram(
    "locowatch_estimator_batch_size",
    "Packets per inference batch.",
    buckets=(1, 2, 4, 8, 16, 32, 64),
)
INFER_SECONDS = Histogram(
    "locowatch_estimator_infer_seconds", "Engine time per batch.",
    buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
)  # fmt: skip
LATENCY = Histogram(
    "locowatch_estimator_latency_seconds",
    "Capture time to estimation published, per estimation.",
    buckets=(0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1, 1.5, 2, 3, 5, 10),
)
ESTIMATIONS = Counter(
    "locowatch_estimator_estimations", "Estimations published, by flow.", ["flow"]
)
READINGS_REFUSED = Counter(
    "locowatch_estimator_readings_refused",
    "Attribute readings not of the form the flow accepts (accept:), never published.",
    ["attribute", "camera"],
)
PUBLISH_FAILURES = Counter(
    "locowatch_estimator_publish_failures", "Publish calls to the uplink that failed."
)
LOST = Counter(
    "locowatch_estimator_lost", "Estimations given up after the uplink stayed unreachable."
)
READY = Gauge("locowatch_estimator_ready", "1 once the engine is open and serving.")
