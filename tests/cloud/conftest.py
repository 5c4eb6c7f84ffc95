"""Cloud fixtures: the twin depot as a facility, fresh migrated databases, real ingest.

Ingest runs as a real ``locowatch cloud run`` process on loopback, so a test can
kill -9 it; the twin plays the gateway (``sim.estimations`` + ``sim.gateway``).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import pytest
import yaml
from grpc_health.v1 import health_pb2, health_pb2_grpc

from cloud.config import token_sha256
from cloud.schema import migrate
from locowatch.db.scratch import scratch_database
from sim.gateway import SimGateway
from sim.recording import write_facility
from sim.streaming import free_port
from sim.twin import Twin

REPO = Path(__file__).resolve().parents[2]
FACILITY = "twin-depot"
GATEWAY = "gw-twin-1"
TOKEN = "test-token-" + "x" * 20
OTHER_GATEWAY, OTHER_TOKEN = "gw-other-1", "other-token-" + "y" * 20


@pytest.fixture(scope="session")
def twin() -> Twin:
    """The default twin depot and its day (600 s), with its camera faults."""
    return Twin()


@pytest.fixture(scope="session")
def facility_file(twin: Twin, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("facility")
    path = folder / "facility.yaml"
    write_facility(path, twin.facility, "the twin depot")
    other = twin.facility.model_copy(
        update={"facility": twin.facility.facility.model_copy(update={"id": "other-depot"})}
    )
    write_facility(folder / "other.yaml", other, "the same depot under another id")
    return path


@pytest.fixture
def cloud_db(db_server_url: str) -> Iterator[str]:
    """A fresh, migrated database for one test."""
    with scratch_database(db_server_url, "locowatch_cloud") as url:
        migrate(url)
        yield url


@dataclass
class Ingest:
    """A ``locowatch cloud run`` process and how to talk to it."""

    config: Path
    db_url: str
    port: int
    metrics_port: int
    log: Path
    root_certificates: bytes | None = None
    client_certificate: tuple[bytes, bytes] | None = None  # (key, chain) for mutual TLS
    process: subprocess.Popen[bytes] | None = None
    extra_env: dict[str, str] = field(default_factory=dict)

    @property
    def target(self) -> str:
        return f"localhost:{self.port}" if self.root_certificates else f"127.0.0.1:{self.port}"

    def start(self) -> Ingest:
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "locowatch", "cloud", "run", "--config", str(self.config),
                 "--db", self.db_url],
                stdout=log, stderr=subprocess.STDOUT, cwd=REPO,
                env={**os.environ, **self.extra_env},
            )  # fmt: skip
        self.wait_serving()
        return self

    def wait_serving(self, timeout_s: float = 60.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise AssertionError(f"ingest exited:\n{self.log.read_text()}")
            try:
                if self.health() == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.RpcError:
                pass
            time.sleep(0.2)
        raise AssertionError(f"ingest did not start:\n{self.log.read_text()}")

    def channel(self) -> grpc.Channel:
        return self.gateway().open_channel()

    def health(self) -> int:
        with self.channel() as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            request = health_pb2.HealthCheckRequest(service="locowatch.v1.Ingest")
            return int(stub.Check(request, timeout=2).status)

    def gateway(self, **kwargs: object) -> SimGateway:
        args: dict[str, object] = {
            "gateway_id": GATEWAY, "facility_id": FACILITY, "token": TOKEN,
            "root_certificates": self.root_certificates,
            "client_certificate": self.client_certificate, **kwargs,
        }  # fmt: skip
        return SimGateway(self.target, **args)  # type: ignore[arg-type]

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


IngestFactory = Callable[..., Ingest]


@pytest.fixture
def ingest_factory(cloud_db: str, facility_file: Path, tmp_path: Path) -> Iterator[IngestFactory]:
    """Start ingest on the test's database; ``tls`` adds a self-signed certificate."""
    started: list[Ingest] = []

    def start(
        tls: bool = False, client_certs: bool = False, max_batch_envelopes: int = 5000
    ) -> Ingest:
        port, metrics_port = free_port(), free_port()
        config: dict[str, object] = {
            "version": 1,
            "listen": f"{'localhost' if tls else '127.0.0.1'}:{port}",
            "metrics_port": metrics_port,
            "fse_metrics_port": free_port(),
            "facilities": [str(facility_file), str(facility_file.with_name("other.yaml"))],
            "gateways": [
                {"id": GATEWAY, "facility": FACILITY, "token_sha256": token_sha256(TOKEN)},
                {"id": OTHER_GATEWAY, "facility": "other-depot",
                 "token_sha256": token_sha256(OTHER_TOKEN)},
            ],
            "limits": {"max_batch_envelopes": max_batch_envelopes},
        }  # fmt: skip
        root, client = None, None
        if tls or client_certs:
            cert, key = _self_signed(tmp_path)
            config["tls"] = {"cert_file": str(cert), "key_file": str(key)}
            root = cert.read_bytes()
        if client_certs:
            ca, gateway_cert, gateway_key = _gateway_certificate(tmp_path)
            config["tls"] = {  # type: ignore[dict-item]
                **config["tls"],  # type: ignore[dict-item]
                "client_ca_file": str(ca),
                "require_client_cert": True,
            }
            client = (gateway_key.read_bytes(), gateway_cert.read_bytes())
        path = tmp_path / f"cloud-{port}.yaml"
        path.write_text(yaml.safe_dump(config), encoding="utf-8")
        log = tmp_path / f"ingest-{port}.log"
        ingest = Ingest(path, cloud_db, port, metrics_port, log, root, client)
        started.append(ingest)
        return ingest.start()

    yield start
    for ingest in started:
        ingest.stop()


def _self_signed(folder: Path) -> tuple[Path, Path]:
    cert, key = folder / "ingest.crt", folder / "ingest.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


def _gateway_certificate(folder: Path) -> tuple[Path, Path, Path]:
    """A gateways' CA, and a client certificate it signed for the test gateway."""
    ca, ca_key = folder / "gateways-ca.crt", folder / "gateways-ca.key"
    cert, key, csr = folder / "gw.crt", folder / "gw.key", folder / "gw.csr"
    for command in (
        ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-subj", "/CN=gateways-ca", "-keyout", str(ca_key), "-out", str(ca)],
        ["req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={GATEWAY}",
         "-keyout", str(key), "-out", str(csr)],
        ["x509", "-req", "-in", str(csr), "-CA", str(ca), "-CAkey", str(ca_key),
         "-CAcreateserial", "-days", "2", "-out", str(cert)],
    ):  # fmt: skip
        subprocess.run(["openssl", *command], check=True, capture_output=True)
    return ca, cert, key
