"""The demo's services as real processes: their config files, start, health, stop.

Everything runs as it would in a depot and a cloud, on loopback: ``locowatch cloud run``
(ingest and the FSE) with a ``cloud.yaml`` that knows one gateway, ``locowatch edge run``
with the facility file the gateway would have (cameras on the twin's RTSP streams), and
``locowatch dashboard`` on the read-only role. Each process writes its own log file in
the demo folder and runs in its own session, so a Ctrl-C at the terminal reaches only the
demo, which then stops them in order; each also dies with the demo if it is killed.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import yaml
from grpc_health.v1 import health_pb2, health_pb2_grpc

from cloud.config import token_sha256
from demo.scope import DemoScope, scoped_facility
from edge.plan import GatewayPlan, gateway_plan
from locowatch.errors import LocowatchError
from locowatch.facility.config import EstimatorRef, FacilityConfig, Flow
from locowatch.processes import die_with_parent_by_sigterm
from sim.layout import default_flows
from sim.recording import write_facility
from sim.streaming import free_port, free_ports

GATEWAY_ID = "gw-demo-1"


@dataclass
class Service:
    """One ``locowatch`` process with its log file."""

    name: str
    arguments: list[str]
    log: Path
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    def start(self) -> Service:
        with self.log.open("ab") as sink:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "locowatch", *self.arguments],
                stdout=sink,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=die_with_parent_by_sigterm,  # noqa: PLW1509 (it only calls prctl)
            )
        return self

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def check_alive(self) -> None:
        if not self.alive():
            raise LocowatchError(f"{self.name} exited; see {self.log}")

    def stop(self, timeout_s: float = 30.0) -> None:
        """SIGTERM to its process group (a supervisor's children too), then SIGKILL."""
        if not self.alive():
            return
        assert self.process is not None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()


@dataclass(frozen=True)
class DemoFiles:
    facility: Path  # what the gateway and ingest load (cameras on the RTSP streams)
    cloud: Path
    plan: GatewayPlan
    flows: list[str]
    ingest_target: str
    ingest_metrics_port: int
    fse_metrics_port: int


def write_configs(
    folder: Path,
    installer: FacilityConfig,
    scope: DemoScope,
    camera_urls: dict[str, str],
    models: FlowModels | None = None,
) -> DemoFiles:
    """The facility file of the demo's gateway, and the cloud's config that accepts it."""
    token = secrets.token_urlsafe(24)
    token_file = folder / "gateway.token"
    token_file.write_text(token + "\n", encoding="utf-8")
    token_file.chmod(0o600)
    ingest_port, metrics_port, fse_metrics_port = free_port(), free_port(), free_port()
    facility = _with_demo_flows(scoped_facility(installer, scope), models or FlowModels())
    cameras = [c.model_copy(update={"source": camera_urls[c.id]}) for c in facility.cameras]
    gateway = {
        "id": GATEWAY_ID,
        "data_dir": str(folder / "gateway"),
        "cloud": {
            "endpoint": f"127.0.0.1:{ingest_port}",
            "tls": False,
            "token_file": str(token_file),
        },
        "services": {"base_port": free_ports(8), "metrics_base_port": free_ports(8)},
    }
    facility = FacilityConfig.model_validate(
        {
            **facility.model_dump(mode="json", exclude_none=True),
            "cameras": [c.model_dump(mode="json", exclude_none=True) for c in cameras],
            "gateway": gateway,
        }
    )
    facility_path = folder / "facility.yaml"
    write_facility(facility_path, facility, "The demo's gateway: the twin's cameras over RTSP.")
    cloud = {
        "version": 1,
        "listen": f"127.0.0.1:{ingest_port}",
        "metrics_port": metrics_port,
        "fse_metrics_port": fse_metrics_port,
        "facilities": [str(facility_path)],
        "gateways": [
            {
                "id": GATEWAY_ID,
                "facility": facility.facility.id,
                "token_sha256": token_sha256(token),
            }
        ],
    }
    cloud_path = folder / "cloud.yaml"
    cloud_path.write_text(yaml.safe_dump(cloud, sort_keys=False), encoding="utf-8")
    return DemoFiles(
        facility_path,
        cloud_path,
        gateway_plan(facility),
        [f.name for f in facility.flows],
        f"127.0.0.1:{ingest_port}",
        metrics_port,
        fse_metrics_port,
    )


@dataclass(frozen=True)
class FlowModels:
    """The models each demo flow runs instead of the twin layout's (estimator -> model,
    ``demo --prod-models`` and ``--dev-models``); dev reads plates with the first reader
    unless told otherwise, so that a plain run compares two."""

    prod: dict[str, str] = field(default_factory=dict)
    dev: dict[str, str] = field(default_factory=lambda: {"plate": "plate@1"})


def _with_demo_flows(facility: FacilityConfig, models: FlowModels) -> FacilityConfig:
    """prod and dev as the twin's layout has them in this checkout (a cached recording's
    facility file keeps the models of the day it was rendered), each on ``models``."""
    base = default_flows()[0]
    flows = [
        on_models(base.model_copy(update={"name": name}), chosen)
        for name, chosen in (("prod", models.prod), ("dev", models.dev))
    ]
    return facility.model_copy(update={"flows": flows})


def on_models(flow: Flow, models: dict[str, str]) -> Flow:
    position = EstimatorRef(model=models.get("position", flow.position.model))
    attributes = {
        name: EstimatorRef(model=models[name]) if name in models else ref
        for name, ref in flow.attributes.items()
    }
    return flow.model_copy(update={"position": position, "attributes": attributes})


def wait_until(
    what: str, ready: Callable[[], bool], services: list[Service], timeout_s: float
) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for service in services:
            service.check_alive()
        if ready():
            return
        time.sleep(0.5)
    raise LocowatchError(
        f"{what} not ready after {timeout_s:.0f} s; see the logs in {services[0].log.parent}"
    )


def ingest_serving(target: str) -> bool:
    with grpc.insecure_channel(target) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        try:
            answer = stub.Check(
                health_pb2.HealthCheckRequest(service="locowatch.v1.Ingest"), timeout=2
            )
        except grpc.RpcError:
            return False
    return answer.status == health_pb2.HealthCheckResponse.SERVING


def http_up(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2):
            return True
    except OSError:
        return False
