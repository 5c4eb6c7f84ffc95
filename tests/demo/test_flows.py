"""The demo's flows: prod runs this checkout's models even on footage cached before them."""

from __future__ import annotations

from pathlib import Path

from demo.stack import _with_demo_flows
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
    prod, dev = _with_demo_flows(cached).flows
    assert (prod.name, dev.name) == ("prod", "dev")
    assert prod.attributes == default_flows()[0].attributes
    assert prod.attributes["plate"].model != "plate@3"
    assert dev.attributes["plate"].model == "plate@1"
    assert dev.position == prod.position and dev.attributes["model"] == prod.attributes["model"]


def test_dev_models_put_other_versions_beside_prod() -> None:
    """``demo --dev-models position=...,model=...``: dev runs those, prod stays; a model
    this checkout lacks, or of another estimator, is refused before anything starts."""
    import click
    import pytest

    from demo.cli import _dev_models

    models = _dev_models("position=position@1, plate=plate@3")
    assert models == {"position": "position@1", "plate": "plate@3"}
    prod, dev = _with_demo_flows(load_facility(EXAMPLE), models).flows
    assert prod.attributes == default_flows()[0].attributes
    assert dev.attributes["plate"].model == "plate@3" and dev.position.model == "position@1"
    assert dev.attributes["model"] == prod.attributes["model"]
    with pytest.raises(click.BadParameter, match="position@9"):
        _dev_models("position=position@9")
    with pytest.raises(click.BadParameter, match="is a plate model, not a model one"):
        _dev_models("model=plate@4")
