"""What every edge service process shares: a gRPC server with health checking and
reflection, a Prometheus endpoint, and a clean stop on SIGINT/SIGTERM.

A service registers its servicers, starts, and reports itself NOT_SERVING until it is
ready (an estimator building a TensorRT engine for minutes is alive but not ready), then
SERVING. ``edge run`` and the tests poll the standard gRPC health service.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from concurrent import futures
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from prometheus_client import start_http_server

log = logging.getLogger(__name__)

# Raw 1280x720 BGR frames are 2.8 MB; 4K ones 25 MB.
MAX_MESSAGE_BYTES = 32 * 1024 * 1024
CHANNEL_OPTIONS = [
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    ("grpc.keepalive_time_ms", 10_000),
    ("grpc.keepalive_timeout_ms", 5_000),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.max_pings_without_data", 0),
    # Find a restarted peer within seconds (gRPC's default backoff grows to 120 s).
    ("grpc.initial_reconnect_backoff_ms", 500),
    ("grpc.max_reconnect_backoff_ms", 5000),
]
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


def channel(target: str) -> grpc.Channel:
    """A loopback/LAN channel to another edge service, with the edge's message limits."""
    return grpc.insecure_channel(target, options=CHANNEL_OPTIONS)


class EdgeServer:
    """One service's gRPC server; ``add`` servicers, ``start``, ``set_ready``, ``stop``."""

    def __init__(
        self,
        name: str,
        host: str,
        port: int,
        metrics_port: int | None = None,
        workers: int = 64,
    ) -> None:
        self.name = name
        self.address = f"{host}:{port}"
        self.metrics_port = metrics_port
        self.host = host
        self.server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=workers, thread_name_prefix=name),
            options=[
                *CHANNEL_OPTIONS,
                ("grpc.so_reuseport", 0),  # a second copy must fail, not share the port
                # Accept the clients' 10 s keepalive pings on idle streams (the default
                # answers pings more often than every 5 minutes with GOAWAY too_many_pings).
                ("grpc.http2.min_recv_ping_interval_without_data_ms", 5000),
                ("grpc.http2.max_ping_strikes", 0),
            ],
        )
        self.health = health.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        self.services: list[str] = []
        self.port = 0

    def add(
        self, register: Callable[[Any, grpc.Server], None], servicer: Any, full_name: str
    ) -> None:
        """Register ``servicer`` with its generated ``add_*Servicer_to_server``."""
        register(servicer, self.server)
        self.services.append(full_name)

    def start(self) -> None:
        reflection.enable_server_reflection(
            (*self.services, health.SERVICE_NAME, reflection.SERVICE_NAME), self.server
        )
        self.port = self.server.add_insecure_port(self.address)
        if self.port == 0:
            raise OSError(f"{self.name}: cannot listen on {self.address}")
        self.server.start()
        self.set_ready(False)
        if self.metrics_port:
            start_http_server(self.metrics_port, addr=self.host)
        log.info(
            "%s listening on %s (metrics %s)",
            self.name,
            self.address,
            f"{self.host}:{self.metrics_port}" if self.metrics_port else "off",
        )

    def set_ready(self, ready: bool) -> None:
        """SERVING or NOT_SERVING, for the whole server and each of its services."""
        status = SERVING if ready else NOT_SERVING
        for service in ("", *self.services):
            self.health.set(service, status)

    def stop(self, grace_s: float = 2.0) -> None:
        self.health.enter_graceful_shutdown()
        self.server.stop(grace_s).wait()
        log.info("%s stopped", self.name)


def wait_for_signal() -> None:
    """Block the main thread until SIGINT or SIGTERM."""
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()


def describe_error(error: BaseException | None) -> str:
    """One line for a log or a health message: a gRPC error's status and details, any
    other error's type and message."""
    if isinstance(error, grpc.RpcError) and isinstance(error, grpc.Call):
        return f"{error.code().name}: {error.details()}"
    return f"{type(error).__name__}: {error}"
