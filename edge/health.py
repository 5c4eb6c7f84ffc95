"""``locowatch edge health``: ask services for their standard gRPC health status.

Compose health checks, the image's ``HEALTHCHECK``, an operator after an install and the
deploy tests all need one answer per service: SERVING or not. A service reports
NOT_SERVING while it is alive but not ready (an estimator building a TensorRT engine), and
an unreachable one reports the gRPC status code of the failed call (``UNAVAILABLE``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from edge.plan import ServicePlan
from edge.service import channel

SERVING = health_pb2.HealthCheckResponse.ServingStatus.Name(health_pb2.HealthCheckResponse.SERVING)


@dataclass(frozen=True)
class Health:
    service: ServicePlan
    status: str  # SERVING, NOT_SERVING, ... or the gRPC code of a failed call

    @property
    def serving(self) -> bool:
        return self.status == SERVING

    def line(self) -> str:
        return f"{self.service.name:32} {self.service.address:22} {self.status}"


def check(services: Sequence[ServicePlan], timeout_s: float) -> list[Health]:
    """Health of every service, asked concurrently (so N services take one timeout)."""
    channels = [channel(s.address) for s in services]
    try:
        calls = [
            health_pb2_grpc.HealthStub(ch).Check.future(
                health_pb2.HealthCheckRequest(service=""), timeout=timeout_s
            )
            for ch in channels
        ]
        return [Health(s, _status(call)) for s, call in zip(services, calls, strict=True)]
    finally:
        for ch in channels:
            ch.close()


def _status(call: grpc.Future) -> str:
    try:
        response = call.result()
    except grpc.RpcError as error:
        return str(error.code().name)
    return str(health_pb2.HealthCheckResponse.ServingStatus.Name(response.status))
