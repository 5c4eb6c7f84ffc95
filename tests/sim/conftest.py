"""One daytime twin for the whole sim test session: its camera renderers cost ~1.3 s each."""

from __future__ import annotations

import pytest

from sim.faults import NO_FAULTS
from sim.scenario import ScenarioSpec
from sim.twin import Twin, TwinSpec

DAY_SPEC = TwinSpec(seed=0, scenario=ScenarioSpec(duration_s=600), faults=NO_FAULTS)


@pytest.fixture(scope="session")
def day_twin() -> Twin:
    return Twin(DAY_SPEC)
