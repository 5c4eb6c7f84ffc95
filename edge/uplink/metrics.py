"""Prometheus metrics of the edge uplink, one definition each (scraped at /metrics)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from prometheus_client import Counter, Gauge

if TYPE_CHECKING:
    from edge.uplink.queue import DurableQueue

QUEUED_ENVELOPES = Gauge(
    "locowatch_uplink_queued_envelopes", "Envelopes in the durable queue, not yet acked."
)
QUEUED_BYTES = Gauge(
    "locowatch_uplink_queued_bytes", "Bytes the queued envelopes count against max_queue_mb."
)
OLDEST_AGE = Gauge(
    "locowatch_uplink_oldest_unacked_age_seconds",
    "How long the oldest unacked envelope has waited in the queue (0 when empty).",
)
PUBLISHED = Counter("locowatch_uplink_published", "Envelopes published and committed to the queue.")
DROPPED = Counter(
    "locowatch_uplink_dropped",
    "Envelopes dropped (oldest first) because the queue hit its disk bound; starts at the "
    "total kept in the queue, so it carries on across restarts.",
)
SENT = Counter("locowatch_uplink_sent", "Envelopes sent to cloud ingest (resends included).")
ACKED = Counter(
    "locowatch_uplink_acked",
    "Envelopes acked by cloud ingest and deleted, by outcome.",
    ["outcome"],
)
REJECTED = Counter(
    "locowatch_uplink_rejected", "Envelopes ingest refused for good, by reason.", ["reason"]
)
REFUSED_BATCHES = Counter(
    "locowatch_uplink_refused_batches", "Batches ingest refused whole (resent split)."
)
RECONNECTS = Counter(
    "locowatch_uplink_reconnects", "Connection attempts to cloud ingest after a failure or a cut."
)
CONNECTED = Gauge("locowatch_uplink_cloud_connected", "1 while a stream to cloud ingest is open.")


def watch(queue: DurableQueue) -> None:
    """Read the queue's depth and age at each scrape; continue its persisted drop count."""
    QUEUED_ENVELOPES.set_function(lambda: queue.depth[0])
    QUEUED_BYTES.set_function(lambda: queue.depth[1])
    OLDEST_AGE.set_function(queue.oldest_age_s)
    DROPPED.inc(queue.dropped)
