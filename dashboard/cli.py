"""``locowatch dashboard``: serve the Dash dashboard on the read-only database role."""

from __future__ import annotations

import logging
from pathlib import Path

import click

from locowatch.db.cli import db_url_option, home_option
from locowatch.errors import UsageError

log = logging.getLogger(__name__)
READER_USER = "locowatch_dashboard"


@click.command()
@db_url_option
@home_option
@click.option(
    "--facility",
    "facility_files",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    multiple=True,
    required=True,
    help="Facility YAML (tracks, stations, cameras, flows); repeat for several facilities.",
)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=click.IntRange(0, 65535), default=8050, show_default=True)
@click.option(
    "--url-prefix",
    default="/",
    show_default=True,
    help="Path the app lives under, e.g. /locowatch/ behind a reverse proxy that keeps it.",
)
@click.option(
    "--transport",
    type=click.Choice(["websocket", "interval"]),
    default="websocket",
    show_default=True,
    help="Push live updates over a websocket, or poll on an interval (proxies without "
    "websocket support).",
)
@click.option("--refresh", "refresh_s", type=click.FloatRange(0.2, 60), default=1.0,
              show_default=True, help="Seconds between checks for new state rows.")  # fmt: skip
@click.option(
    "--auth-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    envvar="LOCOWATCH_DASHBOARD_USERS",
    help="Basic auth users, lines of 'name:<sha256 hex of password>' "
    "(printf %s PASSWORD | sha256sum) [env LOCOWATCH_DASHBOARD_USERS]. Default: no auth.",
)
def dashboard(
    db_url: str | None,
    home: Path | None,
    facility_files: tuple[Path, ...],
    host: str,
    port: int,
    url_prefix: str,
    transport: str,
    refresh_s: float,
    auth_file: Path | None,
) -> None:
    """Serve the live dashboard (map, counts, timeline, visits, cameras, flow comparison).

    With --db it connects as given: use a member of locowatch_reader
    ('locowatch cloud user NAME --role reader'). Without it, it creates (or re-passwords) the
    login user locowatch_dashboard in the reader group of the managed server.
    """
    import uvicorn

    from dashboard.app import DashboardApp, DashboardSettings
    from dashboard.auth import load_users
    from locowatch.facility.loading import load_facility

    facilities = [load_facility(path) for path in facility_files]
    ids = [f.facility.id for f in facilities]
    if len(set(ids)) != len(ids):
        raise UsageError(f"two facility files share an id: {ids}")
    settings = DashboardSettings(
        db_url=db_url or _managed_reader_url(home),
        facilities=facilities,
        url_prefix=url_prefix,
        transport="interval" if transport == "interval" else "websocket",
        refresh_s=refresh_s,
        users=load_users(auth_file) if auth_file else {},
    )
    app = DashboardApp(settings)
    click.echo(f"dashboard: http://{host}:{port}{settings.url_prefix}", err=True)
    # Open pages hold a websocket each: on stop, give them a moment, then close them.
    uvicorn.run(
        app.asgi, host=host, port=port, log_config=None, access_log=False,
        timeout_graceful_shutdown=3,
    )  # fmt: skip


def _managed_reader_url(home: Path | None) -> str:
    from cloud.schema import create_login_user
    from locowatch.db.location import resolve_db_url

    owner_url = resolve_db_url(None, home)
    return create_login_user(owner_url, READER_USER, "reader").url
