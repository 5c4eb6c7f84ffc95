"""The demo's flows: prod runs this checkout's models even on footage cached before them."""

from __future__ import annotations

from pathlib import Path

from demo.stack import FlowModels, _with_demo_flows
from locowatch.facility.config import EstimatorRef
from locowatch.facility.loading import load_facility
from sim.layout import default_flows

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "depot.yaml"


def test_prod_is_the_layouts_flow_not_the_cached_recordings() -> None:
    """A recording rendered when plate@3 was the default keeps plate@3 in its facility
    file; the demo still runs today's prod readers, and dev the first plate reader."""
    cached = load_facility(EXAMPLE)
    old = {**cached.flows[0].attributes, "plate": EstimatorRef(model="plate@3")}
    cached = cached.model_copy(
        update={"flows": [cached.flows[0].model_copy(update={"attributes": old})]}
    )
    prod, dev = _with_demo_flows(cached, FlowModels()).flows
    assert (prod.name, dev.name) == ("prod", "dev")
    assert prod.attributes == default_flows()[0].attributes
    assert prod.attributes["plate"].model != "plate@3"
    assert dev.attributes["plate"].model == "plate@1"
    assert dev.position == prod.position and dev.attributes["model"] == prod.attributes["model"]


def test_flow_models_put_other_versions_side_by_side() -> None:
    """``demo --dev-models position=...,model=...``: dev runs those, prod stays;
    ``--prod-models`` changes prod alone (two candidates on the same footage); a model
    this checkout lacks, or of another estimator, is refused before anything starts."""
    import click
    import pytest

    from demo.cli import _flow_models

    models = _flow_models("position=position@1, plate=plate@3", "--dev-models")
    assert models == {"position": "position@1", "plate": "plate@3"}
    prod, dev = _with_demo_flows(load_facility(EXAMPLE), FlowModels(dev=models)).flows
    assert prod.attributes == default_flows()[0].attributes
    assert dev.attributes["plate"].model == "plate@3" and dev.position.model == "position@1"
    assert dev.attributes["model"] == prod.attributes["model"]
    both = FlowModels(prod={"position": "position@3"}, dev={"position": "position@4"})
    prod, dev = _with_demo_flows(load_facility(EXAMPLE), both).flows
    assert (prod.position.model, dev.position.model) == ("position@3", "position@4")
    assert prod.attributes == dev.attributes == default_flows()[0].attributes
    with pytest.raises(click.BadParameter, match="position@9"):
        _flow_models("position=position@9", "--prod-models")
    with pytest.raises(click.BadParameter, match="is a plate model, not a model one"):
        _flow_models("model=plate@4", "--dev-models")
