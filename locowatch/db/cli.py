"""``locowatch db up|down|status|url|backup|restore``: the managed TimescaleDB, or a server
given by URL."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click
import psycopg

from locowatch.db.install import ensure_postgres_with_timescaledb
from locowatch.db.location import DB_ENV, HOME_ENV, default_home
from locowatch.db.managed import ManagedDbError, ManagedServer
from locowatch.db.postgres import find_postgres

F = TypeVar("F", bound=Callable[..., Any])


def db_url_option(func: F) -> F:
    """``--db URL``: the same flag and variable on every command that uses the database."""
    return click.option(
        "--db",
        "db_url",
        envvar=DB_ENV,
        metavar="URL",
        help=f"PostgreSQL/TimescaleDB URL of an existing server [env {DB_ENV}]. "
        "Default: the managed server.",
    )(func)


def home_option(func: F) -> F:
    return click.option(
        "--home",
        type=click.Path(file_okay=False, path_type=Path),
        envvar=HOME_ENV,
        help=f"Folder of the managed server and other local state [env {HOME_ENV}].",
    )(func)


@click.group()
def db() -> None:
    """The database: a managed local TimescaleDB, or an existing server (--db)."""


@db.command()
@click.option(
    "--check", is_flag=True, help="Only say whether they are installed (exit 1 when not)."
)
def install(check: bool) -> None:
    """Install PostgreSQL and build TimescaleDB (Debian, as root) without starting a server.

    'db up' does this itself when it runs as root; a non-root user runs this once with sudo
    ('make demo' and 'make test' do, when --check says it is needed).
    """
    found = find_postgres() if check else ensure_postgres_with_timescaledb()
    if found is None or not found.has_timescaledb:
        click.echo("PostgreSQL with TimescaleDB is not installed", err=True)
        raise click.exceptions.Exit(1)
    click.echo(f"PostgreSQL {found.major} with TimescaleDB in {found.bindir}")


@db.command()
@db_url_option
@home_option
def up(db_url: str | None, home: Path | None) -> None:
    """Install (on Debian), initialise and start the managed TimescaleDB; print its URL.

    Idempotent: a second call finds it running and only prints the URL. With --db, checks
    that the given server answers and has TimescaleDB instead.
    """
    if db_url:
        version = _check_external(db_url)
        click.echo(f"using the server at {_masked(db_url)} (TimescaleDB {version})", err=True)
        click.echo(db_url)
        return
    server = ManagedServer(home or default_home())
    state = server.up()
    click.echo(state.url())


@db.command()
@db_url_option
@home_option
def down(db_url: str | None, home: Path | None) -> None:
    """Stop the managed server (its data stays)."""
    if db_url:
        raise ManagedDbError("--db points at a server locowatch does not manage; not stopping it")
    server = ManagedServer(home or default_home())
    click.echo("stopped" if server.down() else "not running")


@db.command()
@db_url_option
@home_option
def status(db_url: str | None, home: Path | None) -> None:
    """Say what runs where: server, port, data folder, versions and TimescaleDB license."""
    if db_url:
        version = _check_external(db_url)
        click.echo(f"external server  {_masked(db_url)}\ntimescaledb      {version}")
        return
    info = ManagedServer(home or default_home()).status()
    rows = [
        ("managed server", "running" if info.running else "stopped"),
        ("home", str(info.home)),
        ("data", str(info.data)),
    ]
    if info.state is not None:
        rows += [
            ("url", info.state.url(hide_password=True)),
            ("postgresql", info.postgres_version or str(info.state.major)),
        ]
    if info.running:
        rows += [
            ("pid", str(info.pid)),
            ("timescaledb", f"{info.timescaledb_version} ({info.timescaledb_license} license)"),
        ]
    width = max(len(k) for k, _ in rows) + 2
    click.echo("\n".join(f"{k:<{width}}{v}" for k, v in rows))
    if not info.running:
        raise click.exceptions.Exit(3)  # like systemctl/pg_ctl: 3 = not running


@db.command()
@db_url_option
@home_option
def url(db_url: str | None, home: Path | None) -> None:
    """Print the connection URL (of --db, or of the managed server)."""
    click.echo(db_url or ManagedServer(home or default_home()).url())


@db.command("backup")
@db_url_option
@home_option
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    required=True,
    help="The dump file (*.dump), or a folder to write a dated one in "
    "(DATABASE-YYYYMMDDTHHMMSSZ.dump).",
)
@click.option("--keep", type=click.IntRange(1), help="Keep only the newest N dumps in the folder.")
def backup_command(db_url: str | None, home: Path | None, out: Path, keep: int | None) -> None:
    """Back the database up (pg_dump, custom format): every table, view and grant."""
    from locowatch.db.backup import backup
    from locowatch.db.location import resolve_db_url

    click.echo(backup(resolve_db_url(db_url, home), out, keep))


@db.command("restore")
@click.argument("dump", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@db_url_option
@home_option
@click.option(
    "--replace",
    is_flag=True,
    help="Drop the target database first if it holds tables (stop ingest and the dashboard).",
)
def restore_command(dump: Path, db_url: str | None, home: Path | None, replace: bool) -> None:
    """Restore DUMP into the database of --db (created if missing), the TimescaleDB way."""
    from locowatch.db.backup import restore
    from locowatch.db.location import resolve_db_url

    restore(dump, resolve_db_url(db_url, home), replace)
    click.echo(f"restored {dump}", err=True)


def _check_external(db_url: str) -> str:
    try:
        with psycopg.connect(db_url, connect_timeout=10) as conn:
            row = conn.execute(
                "SELECT default_version FROM pg_available_extensions WHERE name = 'timescaledb'"
            ).fetchone()
    except psycopg.Error as exc:
        raise ManagedDbError(f"cannot connect to {_masked(db_url)}: {exc}") from exc
    if row is None:
        raise ManagedDbError(f"the server at {_masked(db_url)} has no timescaledb extension")
    return str(row[0])


def _masked(db_url: str) -> str:
    info = psycopg.conninfo.conninfo_to_dict(db_url)
    return f"{info.get('host', 'localhost')}:{info.get('port', 5432)}/{info.get('dbname', '')}"
