"""``locowatch edge run|plan|engines|capture|aggregator|estimator|uplink|health|deploy``."""

from __future__ import annotations

import os
from pathlib import Path

import click

CONFIG = click.option(
    "--config",
    "config_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    required=True,
    envvar="LOCOWATCH_CONFIG",
    help="The facility file with its gateway section [env LOCOWATCH_CONFIG].",
)
OUT = click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder to write the files into.",
)


def _load(config_path: Path):  # type: ignore[no-untyped-def]
    from edge.deploy import DATA_DIR_ENV
    from edge.plan import gateway_plan
    from locowatch.facility import load_facility

    config = load_facility(config_path)
    # An installed gateway (systemd unit, container) keeps its data where the install
    # decided, whatever the facility file says: the one writable place of a hardened unit.
    data_dir = os.environ.get(DATA_DIR_ENV)
    if data_dir and config.gateway is not None:
        gateway = config.gateway.model_copy(update={"data_dir": Path(data_dir)})
        config = config.model_copy(update={"gateway": gateway})
    return config, gateway_plan(config)


@click.group()
def edge() -> None:
    """The edge gateway: capture -> aggregator -> estimators -> uplink, one process each.

    LOCOWATCH_DATA_DIR, when set, replaces the facility file's gateway.data_dir (the
    uplink queue and the engine cache); installed gateways set it.
    """


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
def engines(config_path: Path) -> None:
    """Open every estimator's engine as its service will, then close it: builds and caches
    TensorRT plans (minutes each, progress in the log) before the gateway starts, and on
    any machine checks the models' hashes and the facility's views. Run it at deploy."""
    import time

    from edge.estimators.service import open_estimator
    from edge.plan import check_models

    config, gateway = _load(config_path)
    check_models(gateway)
    for service in gateway.services:
        if service.estimator is None:
            continue
        started = time.monotonic()
        estimator = open_estimator(config, service.estimator)
        estimator.engine.close()
        click.echo(
            f"{service.name:32} {estimator.artefact.ref:12} {estimator.engine.name:24} "
            f"ready in {time.monotonic() - started:.1f} s"
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


@edge.command()
@CONFIG
@click.option(
    "--service",
    "names",
    multiple=True,
    envvar="LOCOWATCH_SERVICE",
    help="Ask only this service (repeatable) [env LOCOWATCH_SERVICE]. Default: every one.",
)
@click.option("--all", "every", is_flag=True, help="Ask every service of the gateway.")
@click.option(
    "--timeout",
    "timeout_s",
    type=click.FloatRange(0.1, 60),
    default=5.0,
    show_default=True,
    help="Seconds to wait for each answer.",
)
def health(config_path: Path, names: tuple[str, ...], every: bool, timeout_s: float) -> None:
    """Print each service's gRPC health; exit 0 only when every one asked is SERVING.

    For compose health checks, the image's HEALTHCHECK and operators after an install.
    """
    from edge.health import check
    from locowatch.errors import UsageError

    if names and every:
        raise UsageError("give --service or --all, not both")
    _, gateway = _load(config_path)
    services = [gateway.service(name) for name in names] or list(gateway.services)
    results = check(services, timeout_s)
    for result in results:
        click.echo(result.line())
    if not all(result.serving for result in results):
        raise SystemExit(1)


@edge.group()
def deploy() -> None:
    """Deployment files generated from the facility file: one service per edge process."""


@deploy.command("compose")
@CONFIG
@OUT
@click.option("--image", help="Edge image (default: locowatch-edge:VERSION).")
def deploy_compose(config_path: Path, out: Path | None, image: str | None) -> None:
    """A compose file (compose.yaml): one container per service, host network, GPU."""
    from edge.deploy import IMAGE, compose_file, write
    from edge.plan import check_models

    _, gateway = _load(config_path)
    check_models(gateway)
    text = compose_file(gateway, image=image or IMAGE)
    if out is None:
        click.echo(text, nl=False)
        return
    for path in write({"compose.yaml": text}, out):
        click.echo(str(path), err=True)


@deploy.command("systemd")
@CONFIG
@OUT
@click.option("--executable", help="The installed locowatch program.")
@click.option("--installed-config", help="Where the facility file is installed.")
@click.option("--env-file", help="Optional file of log settings (LOCOWATCH_LOG_*).")
@click.option("--state-dir", help="The one writable folder: uplink queue, engine cache.")
@click.option("--models", help="The models folder.")
@click.option("--user", help="The service user.")
def deploy_systemd(config_path: Path, out: Path | None, **paths: str | None) -> None:
    """systemd units: one per service, locowatch-edge.target, and the retry helper.

    Defaults are the layout deploy/edge/install.sh makes (/opt/locowatch,
    /etc/locowatch/facility.yaml, /var/lib/locowatch, user locowatch).
    """
    from dataclasses import replace

    from edge.deploy import Layout, systemd_units, write
    from edge.plan import check_models

    _, gateway = _load(config_path)
    check_models(gateway)
    given = {key: value for key, value in paths.items() if value is not None}
    if "installed_config" in given:
        given["config"] = given.pop("installed_config")
    units = systemd_units(gateway, replace(Layout(), **given))
    for path in write(units, out or Path()):
        click.echo(str(path), err=True)
