"""``locowatch cloud run``: the ingest process, assembled.

One asyncio process: the Ingest gRPC service (TLS when configured, the certificate
reloaded when its files change: ``cloud/tls.py``), gRPC health
checking and reflection, a Prometheus endpoint, and hourly retention under TimescaleDB's
Apache license (under the Timescale license, ``cloud migrate`` installs retention
policies instead); beside it, a child process with the facility state estimators
(``fse_process``).
"""

from __future__ import annotations

import asyncio
import logging
import signal
from dataclasses import dataclass

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1.health import aio as health_aio
from grpc_reflection.v1alpha import reflection
from prometheus_client import start_http_server

from cloud import metrics
from cloud.config import CloudConfig, load_facilities
from cloud.fse_process import HEALTH_NAME as FSE_HEALTH_NAME
from cloud.fse_process import StateProcess
from cloud.ingest import IngestService
from cloud.retry import retry_database
from cloud.schema import TimescaleInfo, require_current, timescale_info
from cloud.store import Store
from cloud.tls import CertificateFiles
from locowatch.v1 import uplink_pb2, uplink_pb2_grpc

log = logging.getLogger(__name__)

RETENTION_EVERY_S = 3600.0
SHUTDOWN_GRACE_S = 5.0
SERVICE_NAME = uplink_pb2.DESCRIPTOR.services_by_name["Ingest"].full_name


@dataclass
class RunningIngest:
    server: grpc.aio.Server
    port: int
    state: StateProcess
    store: Store
    health: health_aio.HealthServicer
    tasks: list[asyncio.Task[None]]

    async def stop(self) -> None:
        await self.health.enter_graceful_shutdown()
        await self.server.stop(SHUTDOWN_GRACE_S)
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        await self.state.stop()  # the FSEs fuse and write what is queued
        await asyncio.to_thread(self.store.close)
        log.info("ingest stopped")


async def start_ingest(config: CloudConfig, db_url: str) -> RunningIngest:
    facilities = load_facilities(config)
    # An unattended service waits for its database (restarting with it, or still booting).
    await retry_database("check schema", require_current, db_url)
    store = Store(db_url, max_connections=config.db_connections)
    await retry_database("open database", store.open)
    info = await retry_database("read license", _timescale, store)
    log.info(
        "TimescaleDB %s, %s license: %s",
        info.version,
        info.license,
        "retention by policies"
        if info.has_policies
        else f"plain views; ingest drops chunks older than {config.retention.raw_days} days "
        f"(raw) and {config.retention.state_days} days (state) hourly",
    )
    state = StateProcess(
        config.facilities, db_url, config.fse_metrics_port, max(2, config.db_connections // 2)
    )
    state.start()

    max_bytes = int(config.limits.max_message_mb * 1024 * 1024)
    server = grpc.aio.server(
        options=[
            ("grpc.max_receive_message_length", max_bytes),
            ("grpc.max_send_message_length", max_bytes),
            ("grpc.keepalive_time_ms", 30_000),  # find dead gateway connections
            ("grpc.keepalive_timeout_ms", 10_000),
            ("grpc.http2.max_pings_without_data", 0),
            ("grpc.keepalive_permit_without_calls", 1),
        ]
    )
    uplink_pb2_grpc.add_IngestServicer_to_server(
        IngestService(config, facilities, store, state), server
    )
    health = health_aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health, server)
    reflection.enable_server_reflection(
        (SERVICE_NAME, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
         reflection.SERVICE_NAME),
        server,
    )  # fmt: skip
    if config.tls is None:
        port = server.add_insecure_port(config.listen)
    else:
        port = server.add_secure_port(config.listen, CertificateFiles(config.tls).credentials())
    await server.start()
    await health.set(SERVICE_NAME, health_pb2.HealthCheckResponse.SERVING)
    await health.set(FSE_HEALTH_NAME, health_pb2.HealthCheckResponse.NOT_SERVING)
    if config.metrics_port is not None:
        start_http_server(config.metrics_port)
    tasks = [
        asyncio.create_task(state.supervise(), name="fse-supervisor"),
        asyncio.create_task(_report_fse_health(state, health), name="fse-health"),
    ]
    if not info.has_policies:
        tasks.append(asyncio.create_task(_retention(store, config), name="retention"))
    host = config.listen.rsplit(":", 1)[0]
    log.info(
        "ingest listening on %s:%d (%s), %d facilities, %d gateways",
        host,
        port,
        "TLS" if config.tls else "plaintext",
        len(facilities),
        len(config.gateways),
    )
    return RunningIngest(server, port, state, store, health, tasks)


async def serve(config: CloudConfig, db_url: str) -> None:
    """Run until SIGINT or SIGTERM, then stop gracefully."""
    running = await start_ingest(config, db_url)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info("stopping ingest")
    await running.stop()


async def _report_fse_health(
    state: StateProcess, health: health_aio.HealthServicer, period_s: float = 0.2
) -> None:
    """Keep the state estimators' health status in step with their process."""
    serving = False
    while True:
        if state.serving() != serving:
            serving = not serving
            metrics.FSE_SERVING.set(int(serving))
            status = health_pb2.HealthCheckResponse
            await health.set(FSE_HEALTH_NAME, status.SERVING if serving else status.NOT_SERVING)
            log.info("facility state estimators %s", "serving" if serving else "not serving")
        await asyncio.sleep(period_s)


def _timescale(store: Store) -> TimescaleInfo:
    with store.pool.connection() as conn:
        return timescale_info(conn)


async def _retention(store: Store, config: CloudConfig) -> None:
    """Drop chunks past retention (Apache license: no retention policies), counted back
    from this process's clock, the one that checks capture times."""
    while True:
        dropped = await retry_database(
            "retention",
            store.drop_old_chunks,
            config.retention.raw_days,
            config.retention.snapshot_days,
            config.retention.state_days,
        )
        if dropped:
            metrics.CHUNKS_DROPPED.inc(dropped)
            log.info("retention dropped %d chunks", dropped)
        await asyncio.sleep(RETENTION_EVERY_S)
