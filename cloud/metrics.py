"""Prometheus metrics of cloud ingest, one definition each (scraped at /metrics)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

ENVELOPES = Counter(
    "locowatch_ingest_envelopes", "Envelopes handled, by outcome.", ["facility", "outcome"]
)
REJECTIONS = Counter(
    "locowatch_ingest_rejections", "Envelopes refused for good, by reason.", ["facility", "reason"]
)
REFUSED_BATCHES = Counter(
    "locowatch_ingest_refused_batches", "Batches refused whole (too large).", ["facility"]
)
PAST_RETENTION = Counter(
    "locowatch_ingest_past_retention",
    "Envelopes stored although older than raw retention when they arrived (an old "
    "backlog): the next retention pass drops their rows; the state fused from them stays.",
    ["facility", "gateway"],
)
AUTH_FAILURES = Counter(
    "locowatch_ingest_auth_failures", "Streams refused at authentication.", ["reason"]
)
STREAMS = Gauge("locowatch_ingest_streams", "Gateway streams open now.")
GATEWAY_LAST_BATCH = Gauge(
    "locowatch_ingest_gateway_last_batch_timestamp_seconds",
    "When ingest last stored a batch of each gateway (cameras report every 5 s, so a "
    "gateway sends at least that often): alert on time() minus it.",
    ["facility", "gateway"],
)
BATCH_WRITE_SECONDS = Histogram(
    "locowatch_ingest_batch_write_seconds",
    "Time to store one batch durably (COPY and commit).",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
DB_RETRIES = Counter("locowatch_db_retries", "Database operations retried after an error.", ["op"])
DB_UP = Gauge("locowatch_db_up", "1 when the last database operation succeeded.")
SNAPSHOTS = Counter("locowatch_fse_snapshots", "State snapshots written.", ["facility", "flow"])
SNAPSHOTS_DROPPED = Counter(
    "locowatch_fse_snapshots_dropped",
    "Snapshots dropped because the database could not keep up (oldest first).",
)
LOCOMOTIVES = Gauge(
    "locowatch_fse_locomotives", "Locomotives in the facility now.", ["facility", "flow"]
)
FSE_IGNORED = Counter(
    "locowatch_fse_records_ignored",
    "Stored estimations the FSE could not use (a track the facility config no longer has).",
    ["facility", "flow"],
)
FSE_HANDOVERS_SKIPPED = Counter(
    "locowatch_fse_handovers_skipped",
    "Stored batches not handed to a dead FSE process (its successor replays them).",
)
FSE_RESTARTS = Counter("locowatch_fse_process_restarts", "Restarts of the FSE process.")
FSE_SERVING = Gauge(
    "locowatch_fse_serving", "1 while the FSE process runs and has restored its estimators."
)
CHUNKS_DROPPED = Counter("locowatch_retention_chunks_dropped", "Chunks dropped by retention.")
