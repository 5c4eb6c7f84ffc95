"""Cloud fixtures: the twin depot as a facility, fresh migrated databases, real ingest.

They live in ``tests/fixtures/ingest.py`` (the edge uplink's tests use them too) and are
registered for every test by ``tests/conftest.py``; the names tests import are here.
Ingest runs as a real ``locowatch cloud run`` process on loopback, so a test can kill -9
it; the twin plays the gateway (``sim.estimations`` + ``sim.gateway``).
"""

from __future__ import annotations

from tests.fixtures.ingest import (
    FACILITY,
    GATEWAY,
    OTHER_GATEWAY,
    OTHER_TOKEN,
    SECOND_GATEWAY,
    SECOND_TOKEN,
    TOKEN,
    Ingest,
    IngestFactory,
)

__all__ = [
    "FACILITY",
    "GATEWAY",
    "OTHER_GATEWAY",
    "OTHER_TOKEN",
    "SECOND_GATEWAY",
    "SECOND_TOKEN",
    "TOKEN",
    "Ingest",
    "IngestFactory",
]
