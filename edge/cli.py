"""``locowatch edge run|plan|capture|aggregator|estimator|uplink``."""

from __future__ import annotations

from pathlib import Path

import click

CONFIG = click.option(
    "--config",
    "config_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    required=True,
    help="The facility file with its gateway section.",
)


def _load(config_path: Path):  # type: ignore[no-untyped-def]
    from edge.plan import gateway_plan
    from locowatch.facility import load_facility

    config = load_facility(config_path)
    return config, gateway_plan(config)


@click.group()
def edge() -> None:
    """The edge gateway: capture -> aggregator -> estimators -> uplink, one process each."""


@edge.command()
@CONFIG
@click.option(
    "--service",
    "only",
    multiple=True,
    help="Run only this service (repeatable; names as `edge plan` prints them).",
)
def run(config_path: Path, only: tuple[str, ...]) -> None:
    """Run every service of the gateway, restarting any that dies, until stopped."""
    from edge.plan import check_models
    from edge.supervisor import Supervisor

    _, plan = _load(config_path)
    check_models(plan)
    services = [plan.service(name) for name in only] or None
    Supervisor(plan, config_path, services).run()


@edge.command()
@CONFIG
def plan(config_path: Path) -> None:
    """Print the gateway's services, their ports and the flows each estimator serves."""
    _, gateway = _load(config_path)
    for service in gateway.services:
        flows = ",".join(service.estimator.flows) if service.estimator else "-"
        metrics = service.metrics_port or "-"
        click.echo(
            f"{service.name:32} {service.kind:10} {service.address:22} {metrics!s:6} {flows}"
        )


@edge.command()
@CONFIG
def capture(config_path: Path) -> None:
    """Read every camera, push frames to the aggregator and health to the uplink."""
    from edge.capture.service import run_capture

    run_capture(*_load(config_path))


@edge.command()
@CONFIG
def aggregator(config_path: Path) -> None:
    """Cut frames into strips and crops and fan them out to every flow."""
    from edge.aggregator.service import run_aggregator

    run_aggregator(*_load(config_path))


@edge.command()
@CONFIG
@click.option("--name", required=True, help="Estimator name as `edge plan` prints it.")
def estimator(config_path: Path, name: str) -> None:
    """Run one estimator (position, or an attribute such as model or plate)."""
    from edge.estimators.service import run_estimator

    config, gateway = _load(config_path)
    run_estimator(config, gateway, gateway.service(name))


@edge.command()
@CONFIG
def uplink(config_path: Path) -> None:
    """Queue estimations on disk and forward them to cloud ingest."""
    from edge.uplink.service import run_uplink

    run_uplink(*_load(config_path))
