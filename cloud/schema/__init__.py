"""The cloud database: versioned migrations, the TimescaleDB license, and login users.

Migrations are the files in ``migrations/`` applied in order by yoyo-migrations, which
records them in ``_yoyo_migration`` and takes a lock so that two ingest replicas starting
at once do not race. Run them as the database owner (``locowatch cloud migrate``);
ingest and the dashboard then connect as members of ``locowatch_writer`` and
``locowatch_reader``.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import psycopg
from psycopg import sql

from locowatch.errors import LocowatchError

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).with_name("migrations")
Role = Literal["writer", "reader"]
ROLE_GROUPS: dict[Role, str] = {"writer": "locowatch_writer", "reader": "locowatch_reader"}


class SchemaError(LocowatchError):
    """The database cannot be migrated or is not at the version this code needs."""


def yoyo_url(url: str) -> str:
    """yoyo picks its driver from the URL scheme; ours is psycopg 3."""
    try:
        as_url = conninfo_url(url)
    except psycopg.ProgrammingError as exc:
        raise SchemaError(f"not a PostgreSQL URL or conninfo: {exc}") from exc
    return as_url.replace("postgresql://", "postgresql+psycopg://", 1)


def migrate(
    url: str, folder: Path = MIGRATIONS, only: Callable[[Any], bool] | None = None
) -> list[str]:
    """Apply every pending migration; return the ids applied (empty when up to date).
    ``folder`` and ``only`` (a filter on yoyo's migrations) serve tests and benchmarks
    that need a database at an older version."""
    from yoyo import get_backend, read_migrations

    backend = get_backend(yoyo_url(url))
    migrations = read_migrations(str(folder))
    if only is not None:
        migrations = migrations.filter(only)
    with backend.lock():
        pending = backend.to_apply(migrations)
        applied = [m.id for m in pending]
        backend.apply_migrations(pending)
    for migration_id in applied:
        log.info("applied migration %s", migration_id)
    return applied


def pending_migrations(url: str) -> list[str]:
    """Migrations this code has that the database lacks."""
    from yoyo import get_backend, read_migrations

    backend = get_backend(yoyo_url(url))
    return [m.id for m in backend.to_apply(read_migrations(str(MIGRATIONS)))]


def require_current(url: str) -> None:
    """Refuse to run against a database whose schema is behind this code."""
    pending = pending_migrations(url)
    if pending:
        raise SchemaError(
            f"the database lacks migrations {', '.join(pending)}; "
            "run 'locowatch cloud migrate' as the database owner"
        )


@dataclass(frozen=True)
class TimescaleInfo:
    version: str
    license: str  # "apache" (Debian's build) or "timescale" (community features)

    @property
    def has_policies(self) -> bool:
        """Continuous aggregates, compression and retention policies need the TSL build."""
        return self.license == "timescale"


def timescale_info(conn: psycopg.Connection[tuple[str, str]]) -> TimescaleInfo:
    row = conn.execute(
        "SELECT extversion, current_setting('timescaledb.license') "
        "FROM pg_extension WHERE extname = 'timescaledb'"
    ).fetchone()
    if row is None:
        raise SchemaError("the timescaledb extension is not installed in this database")
    return TimescaleInfo(version=row[0], license=row[1])


@dataclass(frozen=True)
class LoginUser:
    name: str
    password: str
    url: str


def create_login_user(url: str, name: str, role: Role, password: str | None = None) -> LoginUser:
    """Create (or re-password) a login user in the writer or reader group; return its URL."""
    password = password or secrets.token_urlsafe(24)
    with psycopg.connect(url, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (name,)).fetchone()
        verb = "ALTER" if exists else "CREATE"
        conn.execute(
            sql.SQL(verb + " ROLE {} LOGIN PASSWORD {}").format(
                sql.Identifier(name), sql.Literal(password)
            )
        )
        conn.execute(
            sql.SQL("GRANT {} TO {}").format(
                sql.Identifier(ROLE_GROUPS[role]), sql.Identifier(name)
            )
        )
    info = psycopg.conninfo.conninfo_to_dict(url)
    user_url = psycopg.conninfo.make_conninfo("", **{**info, "user": name, "password": password})
    log.info("login user %s is a member of %s", name, ROLE_GROUPS[role])
    return LoginUser(name=name, password=password, url=conninfo_url(user_url))


def conninfo_url(conninfo: str) -> str:
    """A conninfo (key=value or URL) as a postgresql:// URL, what --db and LOCOWATCH_DB take."""
    from urllib.parse import quote, urlencode

    d = {k: str(v) for k, v in psycopg.conninfo.conninfo_to_dict(conninfo).items()}
    user, password = d.pop("user", ""), d.pop("password", "")
    auth = quote(user, safe="") + (":" + quote(password, safe="") if password else "")
    host, port, dbname = d.pop("host", "localhost"), d.pop("port", ""), d.pop("dbname", "")
    netloc = f"{auth}@{host}" if auth else host
    query = f"?{urlencode(d)}" if d else ""
    return f"postgresql://{netloc}{':' + port if port else ''}/{quote(dbname, safe='')}{query}"


RAW_TABLES = ("position_estimations", "attribute_estimations", "camera_health", "ingest_rejections")
SNAPSHOT_TABLES = ("state_snapshots",)
STATE_TABLES = (
    "locomotive_events",
    "locomotive_stays",
    "locomotive_visits",
    "locomotive_spans",
    "count_hours_closed",
    "station_hours_closed",
)
# The fact tables are updated while a fact is open, and small: only append-only tables
# are compressed.
COMPRESS_SEGMENTS = {
    "position_estimations": "facility_id, camera_id",
    "attribute_estimations": "facility_id, camera_id",
    "camera_health": "facility_id, camera_id",
    "state_snapshots": "facility_id, flow",
}


def apply_policies(
    url: str, raw_days: int, state_days: int, snapshot_days: int = 14
) -> TimescaleInfo:
    """Compression and retention policies where the license has them (run as the owner).

    Under the Apache license there are none: ingest drops old chunks itself (hourly,
    through ``locowatch_drop_old_chunks``), and raw data stays uncompressed.
    """
    with psycopg.connect(url, autocommit=True) as conn:
        info = timescale_info(conn)
        if not info.has_policies:
            log.info(
                "TimescaleDB %s (apache license): no policies; ingest drops old chunks",
                info.version,
            )
            return info
        for table, segments in COMPRESS_SEGMENTS.items():
            conn.execute(
                sql.SQL(
                    "ALTER TABLE {} SET (timescaledb.compress, timescaledb.compress_segmentby = {})"
                ).format(sql.Identifier(table), sql.Literal(segments))
            )
            conn.execute(
                "SELECT add_compression_policy(%s, INTERVAL '2 days', if_not_exists => true)",
                (table,),
            )
        ages = [(RAW_TABLES, raw_days), (SNAPSHOT_TABLES, snapshot_days)]
        for tables, days in [*ages, (STATE_TABLES, state_days)]:
            for table in tables:
                conn.execute("SELECT remove_retention_policy(%s, if_exists => true)", (table,))
                conn.execute(
                    "SELECT add_retention_policy(%s, make_interval(days => %s))", (table, days)
                )
        log.info(
            "TimescaleDB %s (timescale license): compression and retention policies set",
            info.version,
        )
    return info
