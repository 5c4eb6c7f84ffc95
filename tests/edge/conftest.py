"""Edge fixtures: a still twin day, its facility with a gateway section, in-process servers.

Pipeline fixtures (``twin_day``, ``gateway_config``, ``serve``) are shared by the
aggregator, estimator and gateway tests.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from edge import images
from edge.service import EdgeServer
from locowatch.facility.config import FacilityConfig, Gateway
from locowatch.v1 import frames_pb2
from sim.faults import NO_FAULTS
from sim.scenario import ScenarioSpec
from sim.twin import Twin, TwinSpec

EPOCH = 1_800_000_000.0  # unix time of the twin's t = 0 in these tests


@pytest.fixture(scope="session")
def twin_day() -> Twin:
    """The default twin depot's day (600 s) without camera faults."""
    return Twin(TwinSpec(seed=0, scenario=ScenarioSpec(duration_s=600), faults=NO_FAULTS))


def with_gateway(config: FacilityConfig, **gateway: Any) -> FacilityConfig:
    """``config`` with a gateway section (services on free ports unless given)."""
    section = {
        "id": "gw-test",
        "cloud": {"endpoint": "127.0.0.1:1", "tls": False, "token_file": "token"},
        **gateway,
    }
    return config.model_copy(update={"gateway": Gateway.model_validate(section)})


@pytest.fixture(scope="session")
def gateway_config(twin_day: Twin) -> FacilityConfig:
    return with_gateway(twin_day.facility)


def twin_frame(twin: Twin, camera_id: str, t: float, seq: int = 1) -> frames_pb2.Frame:
    """The twin's picture of ``camera_id`` at ``t``, as capture would send it."""
    stamp = Timestamp()
    stamp.FromNanoseconds(round((EPOCH + t) * 1e9))
    image = twin.frame(camera_id, t)
    assert image is not None
    return frames_pb2.Frame(
        camera_id=camera_id, frame_seq=seq, capture_time=stamp, image=images.encode(image)
    )


@pytest.fixture
def serve() -> Iterator[Callable[..., EdgeServer]]:
    """Start servicers on a loopback port in this process; stopped after the test."""
    servers: list[EdgeServer] = []

    def start(
        name: str, register: Callable[..., None], servicer: Any, full_name: str
    ) -> EdgeServer:
        server = EdgeServer(name, "127.0.0.1", 0)
        server.add(register, servicer, full_name)
        server.start()
        server.set_ready(True)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop(0)
