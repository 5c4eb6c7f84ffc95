"""``locowatch cloud run|migrate|token|user`` and ``locowatch report``."""

from __future__ import annotations

import csv
import os
import secrets
import sys
from datetime import datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import click

from locowatch.db.cli import db_url_option, home_option
from locowatch.db.location import resolve_db_url
from locowatch.errors import UsageError

CONFIG = click.option(
    "--config",
    "config_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    required=True,
    help="The cloud config (cloud.yaml): listen address, TLS, facilities, gateways.",
)


@click.group()
def cloud() -> None:
    """Cloud ingest with the facility state estimator, and its database."""


@cloud.command()
@CONFIG
@db_url_option
@home_option
def run(config_path: Path, db_url: str | None, home: Path | None) -> None:
    """Serve gateway streams until stopped (SIGINT/SIGTERM stop it gracefully)."""
    import asyncio

    from cloud.config import load_cloud_config
    from cloud.server import serve
    from locowatch.collector import collect_rarely

    config = load_cloud_config(config_path)
    collect_rarely()
    asyncio.run(serve(config, resolve_db_url(db_url, home)))


@cloud.command()
@CONFIG
@db_url_option
@home_option
def plant(config_path: Path, db_url: str | None, home: Path | None) -> None:
    """Send state, events and alerts to plant systems (MQTT, webhooks): cloud.yaml's
    'plant:' section; runs beside ingest on the writer role until stopped."""
    from cloud.config import load_cloud_config
    from cloud.plant.service import serve_plant

    serve_plant(load_cloud_config(config_path), resolve_db_url(db_url, home))


@cloud.command()
@click.option(
    "--config",
    "config_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="cloud.yaml, for its retention settings (default 30 days raw, 730 days state).",
)
@db_url_option
@home_option
def migrate(config_path: Path | None, db_url: str | None, home: Path | None) -> None:
    """Bring the schema up to date and set policies (run as the database owner)."""
    from cloud.config import Retention, load_cloud_config
    from cloud.schema import apply_policies
    from cloud.schema import migrate as apply_migrations

    url = resolve_db_url(db_url, home)
    retention = load_cloud_config(config_path).retention if config_path else Retention()
    applied = apply_migrations(url)
    info = apply_policies(url, retention.raw_days, retention.state_days, retention.snapshot_days)
    click.echo(
        f"applied {len(applied)} migrations" + (f": {', '.join(applied)}" if applied else "")
    )
    click.echo(f"TimescaleDB {info.version}, {info.license} license")


@cloud.command()
@click.option("--gateway", "gateway_id", required=True, help="Gateway id the token is for.")
@click.option("--facility", "facility_id", required=True, help="Facility the gateway writes to.")
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the token here (mode 600) instead of printing it.",
)
def token(gateway_id: str, facility_id: str, out: Path | None) -> None:
    """Make a new gateway token; print the cloud.yaml entry that accepts it."""
    from cloud.config import token_sha256

    value = secrets.token_urlsafe(32)
    if out is not None:
        out.write_text(value + "\n", encoding="utf-8")
        out.chmod(0o600)
        click.echo(f"token written to {out}", err=True)
    else:
        click.echo(f"token: {value}", err=True)
    click.echo(
        "# add under 'gateways:' in cloud.yaml; to rotate without a gap, list both hashes "
        "(token_sha256: [new, old]) until the gateway has its new token"
    )
    click.echo(
        f"- {{id: {gateway_id}, facility: {facility_id}, token_sha256: {token_sha256(value)}}}"
    )


@cloud.command()
@click.argument("name")
@click.option("--role", type=click.Choice(["writer", "reader"]), required=True)
@click.option(
    "--password-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Set the password in this file (a mounted secret) instead of making one up.",
)
@click.option(
    "--password-env",
    metavar="VARIABLE",
    help="Set the password in this environment variable (a container's injected secret).",
)
@db_url_option
@home_option
def user(
    name: str,
    role: str,
    password_file: Path | None,
    password_env: str | None,
    db_url: str | None,
    home: Path | None,
) -> None:
    """Create (or re-password) a login user for ingest (writer) or dashboard and reports
    (reader); print its URL. Safe to run again, e.g. at every deployment.

    A password it made up is in the URL; a given one is not (it would land in logs).
    """
    import psycopg

    from cloud.schema import conninfo_url, create_login_user

    password = _given_password(password_file, password_env)
    created = create_login_user(resolve_db_url(db_url, home), name, role, password)  # type: ignore[arg-type]
    if password is None:
        click.echo(created.url)
    else:
        shown = psycopg.conninfo.make_conninfo(created.url, password="")
        click.echo(conninfo_url(shown))


def _given_password(password_file: Path | None, password_env: str | None) -> str | None:
    if password_file is not None and password_env is not None:
        raise click.UsageError("give --password-file or --password-env, not both")
    if password_file is not None:
        password = password_file.read_text(encoding="utf-8").strip()
        source = str(password_file)
    elif password_env is not None:
        password = os.environ.get(password_env, "").strip()
        source = f"${password_env}"
    else:
        return None
    if not password:
        raise click.UsageError(f"{source} is empty or unset: no password to set")
    return password


@click.command()
@click.argument("name", type=click.Choice(["occupancy", "visits", "stays", "counts", "models"]))
@click.option("--from", "start", required=True, help="Start (ISO date or date-time).")
@click.option("--to", "end", help="End, exclusive (default: a day after --from).")
@click.option("--flow", default="prod", show_default=True)
@click.option("--facility", help="Facility id (default: the only one in the database).")
@click.option("--bucket", default="1 hour", show_default=True, help="Bucket width (SQL interval).")
@click.option("--tz", default="UTC", show_default=True, help="Time zone of times and buckets.")
@click.option("--csv", "as_csv", is_flag=True, help="Write CSV instead of a table.")
@click.option("--output", type=click.Path(dir_okay=False, path_type=Path), help="Write here.")
@db_url_option
@home_option
def report(
    name: str,
    start: str,
    end: str | None,
    flow: str,
    facility: str | None,
    bucket: str,
    tz: str,
    as_csv: bool,
    output: Path | None,
    db_url: str | None,
    home: Path | None,
) -> None:
    """Run a report: occupancy, visits, stays, counts or models. SQL: docs/reports.md."""
    from cloud.reports import ReportRange, known_facilities, run_report

    url = resolve_db_url(db_url, home)
    zone = _zone(tz)
    begin = _when(start, zone, "--from")
    finish = _when(end, zone, "--to") if end else begin + timedelta(days=1)
    if finish <= begin:
        raise UsageError("--to must be after --from")
    if facility is None:
        facilities = known_facilities(url)
        if len(facilities) != 1:
            found = ", ".join(facilities) or "none"
            raise UsageError(f"name the facility with --facility (in the database: {found})")
        facility = facilities[0]
    columns, rows = run_report(url, name, ReportRange(facility, flow, begin, finish, bucket, tz))
    stream = output.open("w", encoding="utf-8", newline="") if output else sys.stdout
    try:
        if as_csv:
            writer = csv.writer(stream)
            writer.writerow(columns)
            writer.writerows([_cell(v) for v in row] for row in rows)
        else:
            stream.write(table(columns, rows) + "\n")
    finally:
        if output:
            stream.close()


def _zone(tz: str) -> ZoneInfo:
    try:
        return ZoneInfo(tz)
    except (KeyError, ValueError) as exc:
        raise UsageError(f"--tz: unknown time zone {tz!r}") from exc


def _when(text: str, zone: ZoneInfo, option: str) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError as exc:
        raise UsageError(f"{option}: expected an ISO date or date-time, got {text!r}") from exc
    if len(text) <= 10:  # a bare date: its midnight
        value = datetime.combine(value.date(), time())
    return value if value.tzinfo else value.replace(tzinfo=zone)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.isoformat(timespec="seconds")
    return str(value)


def table(columns: list[str], rows: list[tuple[Any, ...]]) -> str:
    """Rows as an aligned text table with a row count (what ``report`` prints)."""
    cells = [columns, *([_cell(v) for v in row] for row in rows)]
    widths = [max(len(r[i]) for r in cells) for i in range(len(columns))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines) + f"\n({len(rows)} rows)"
