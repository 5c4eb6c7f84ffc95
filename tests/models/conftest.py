"""A held-out twin scene, rendered once per test session: seed 100 was never trained on."""

from __future__ import annotations

from pathlib import Path

import pytest

from sim.datasets import write_dataset
from sim.faults import NO_FAULTS
from sim.scenario import ScenarioSpec
from sim.twin import TwinSpec

HELD_OUT = TwinSpec(seed=100, scenario=ScenarioSpec(duration_s=600), faults=NO_FAULTS)


@pytest.fixture(scope="session")
def held_out_scene(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every 20 s of the held-out day on eight cameras: morning to night, all three kinds."""
    out = tmp_path_factory.mktemp("held-out")
    cameras = [f"cam-{n:02d}" for n in (1, 3, 5, 7, 11, 13, 17, 21)]
    write_dataset(HELD_OUT, out, every_s=20.0, camera_ids=cameras, progress=False)
    return out
