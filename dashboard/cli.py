"""``locowatch dashboard``: serve the Dash dashboard on the read-only database role;
``locowatch dashboard user``: manage who may log in to it."""

from __future__ import annotations

import logging
from pathlib import Path

import click

from locowatch.db.cli import db_url_option, home_option
from locowatch.errors import UsageError

log = logging.getLogger(__name__)
READER_USER = "locowatch_dashboard"


USERS_FILE_ENV = "LOCOWATCH_DASHBOARD_USERS"


@click.group(invoke_without_command=True)
@db_url_option
@home_option
@click.option(
    "--facility",
    "facility_files",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    multiple=True,
    help="Facility YAML (tracks, stations, cameras, flows); repeat for several facilities. "
    "Required to serve.",
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
@click.option("--late-after", "late_after_s", type=click.FloatRange(1), default=30.0,
              show_default=True, help="Seconds without a report before a camera, gateway or the "
              "state is shown amber (cameras report every 5 s).")  # fmt: skip
@click.option("--silent-after", "silent_after_s", type=click.FloatRange(1), default=120.0,
              show_default=True, help="Seconds without a report before it is shown red and "
              "counted silent (metric locowatch_dashboard_silent).")  # fmt: skip
@click.option(
    "--auth-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    envvar=USERS_FILE_ENV,
    help="Users file ('locowatch dashboard user add' writes it): each user sees the "
    f"facilities granted to it [env {USERS_FILE_ENV}]. Default: no login (keep --host local).",
)
@click.option(
    "--trusted-user-header",
    envvar="LOCOWATCH_TRUSTED_USER_HEADER",
    help="Take the user's name from this header of a reverse proxy that logs users in "
    "(single sign-on, e.g. X-Forwarded-User); role and facilities still come from "
    "--auth-file. Only where nothing but that proxy reaches the port.",
)
@click.pass_context
def dashboard(
    ctx: click.Context,
    db_url: str | None,
    home: Path | None,
    facility_files: tuple[Path, ...],
    host: str,
    port: int,
    url_prefix: str,
    transport: str,
    refresh_s: float,
    late_after_s: float,
    silent_after_s: float,
    auth_file: Path | None,
    trusted_user_header: str | None,
) -> None:
    """Serve the live dashboard (map, counts, timeline, visits, cameras, flow comparison).

    With --db it connects as given: use a member of locowatch_reader
    ('locowatch cloud user NAME --role reader'). Without it, it creates (or re-passwords) the
    login user locowatch_dashboard in the reader group of the managed server.
    """
    if ctx.invoked_subcommand is not None:
        return
    if not facility_files:
        raise UsageError("name the facilities to serve: --facility FILE (repeat for more)")
    if silent_after_s < late_after_s:
        raise UsageError("--silent-after must be at least --late-after")
    if trusted_user_header and not auth_file:
        raise UsageError("--trusted-user-header needs --auth-file for roles and facilities")
    from datetime import timedelta

    import uvicorn

    from dashboard.app import DashboardApp, DashboardSettings
    from dashboard.auth import UsersFile
    from dashboard.live import Liveness
    from locowatch.facility.loading import load_facility_without_secrets

    facilities = [load_facility_without_secrets(path) for path in facility_files]
    ids = [f.facility.id for f in facilities]
    if len(set(ids)) != len(ids):
        raise UsageError(f"two facility files share an id: {ids}")
    settings = DashboardSettings(
        db_url=db_url or _managed_reader_url(home),
        facilities=facilities,
        url_prefix=url_prefix,
        transport="interval" if transport == "interval" else "websocket",
        refresh_s=refresh_s,
        liveness=Liveness(timedelta(seconds=late_after_s), timedelta(seconds=silent_after_s)),
        users=UsersFile(auth_file) if auth_file else None,
        trusted_user_header=trusted_user_header,
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


@dashboard.group("user")
def user() -> None:
    """Who may log in: argon2 password hashes, a role and facilities per user."""


USERS_FILE = click.option(
    "--users-file",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar=USERS_FILE_ENV,
    required=True,
    help=f"The users file the dashboard reads (--auth-file) [env {USERS_FILE_ENV}].",
)


@user.command("add")
@click.argument("name")
@USERS_FILE
@click.option(
    "--role",
    type=click.Choice(["viewer", "installer", "admin"]),
    default="viewer",
    show_default=True,
    help="viewer: the dashboard; installer: also calibration and coverage; admin: "
    "every facility and page.",
)
@click.option(
    "--facility",
    "facilities",
    multiple=True,
    help="A facility id this user sees (repeat; '*' for all). Not for admins.",
)
@click.option(
    "--password-stdin",
    is_flag=True,
    help="Read the password from the first line of stdin (scripts) instead of asking.",
)
@click.option(
    "--no-password",
    is_flag=True,
    help="A user who logs in through the trusted proxy header only.",
)
def add_command(
    name: str,
    users_file: Path,
    role: str,
    facilities: tuple[str, ...],
    password_stdin: bool,
    no_password: bool,
) -> None:
    """Add a user, or set its password, role and facilities anew. The dashboard reads the
    file again within a second; no restart."""
    import sys

    from dashboard.users import Role, add_user

    if no_password:
        password = None
    elif password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("password", hide_input=True, confirmation_prompt=True, err=True)
    added = add_user(users_file, name, password, Role[role], facilities)
    seen = "every facility" if added.role.name == "admin" else ", ".join(added.facilities)
    click.echo(f"{users_file}: {name} ({added.role.name}: {seen})", err=True)


@user.command("remove")
@click.argument("name")
@USERS_FILE
def remove_command(name: str, users_file: Path) -> None:
    """Remove a user (logged-in pages of it are refused within a second)."""
    from dashboard.users import remove_user

    remove_user(users_file, name)
    click.echo(f"{users_file}: {name} removed", err=True)


@user.command("list")
@USERS_FILE
def list_command(users_file: Path) -> None:
    """Name, role and facilities of every user (never the hashes)."""
    from dashboard.users import Role, load_users

    for found in load_users(users_file).values():
        seen = "*" if found.role >= Role.admin else ",".join(found.facilities)
        login = "password" if found.password else "proxy only"
        click.echo(f"{found.name}\t{found.role.name}\t{seen}\t{login}")


@user.command("hash")
@click.option("--password-stdin", is_flag=True, help="Read the password from stdin's first line.")
def hash_command(password_stdin: bool) -> None:
    """Print the argon2 hash of a password, for users kept elsewhere (terraform's
    dashboard_users, a config repository)."""
    import sys

    from dashboard.users import hash_password

    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("password", hide_input=True, confirmation_prompt=True, err=True)
    click.echo(hash_password(password))
