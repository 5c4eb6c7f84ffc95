"""Backups of a locowatch database with PostgreSQL's own tools, as TimescaleDB documents
them: ``pg_dump -Fc`` of the whole database; a restore creates the extension, calls
``timescaledb_pre_restore()``, runs ``pg_restore``, then ``timescaledb_post_restore()``.

The dump is written beside its final name and renamed when complete, so a backup folder
never holds half a dump under a good name. Passwords go to the tools through the
environment (``PGPASSWORD``), never their command line.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import psycopg
from psycopg import sql

from locowatch.db.postgres import find_postgres
from locowatch.errors import UsageError

log = logging.getLogger(__name__)

SUFFIX = ".dump"
GROUP_ROLES = ("locowatch_writer", "locowatch_reader")  # GRANTs in the dump name them


@dataclass(frozen=True)
class Target:
    """Where a tool connects: libpq's parameters without the password, and the password."""

    params: dict[str, str]
    password: str | None

    @classmethod
    def of(cls, url: str) -> Target:
        info = {k: str(v) for k, v in psycopg.conninfo.conninfo_to_dict(url).items()}
        password = info.pop("password", None)
        return cls(info, password)

    @property
    def dbname(self) -> str:
        return self.params.get("dbname", "postgres")

    def url(self, dbname: str | None = None) -> str:
        params = {**self.params, "dbname": dbname or self.dbname}
        if self.password is not None:
            params["password"] = self.password
        return psycopg.conninfo.make_conninfo(**params)

    @property
    def conninfo(self) -> str:
        """What the tools' --dbname takes: every parameter but the password."""
        return psycopg.conninfo.make_conninfo(**self.params)

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k != "PGPASSWORD"}
        if self.password is not None:
            env["PGPASSWORD"] = self.password
        return env


def tool(name: str) -> str:
    """pg_dump / pg_restore: the managed install's (its version is the server's), else PATH."""
    found = find_postgres()
    if found is not None and Path(found.binary(name)).exists():
        return found.binary(name)
    on_path = shutil.which(name)
    if on_path is None:
        raise UsageError(f"{name} not found: install postgresql-client (or 'locowatch db install')")
    return on_path


def backup(url: str, out: Path, keep: int | None = None) -> Path:
    """Dump the database of ``url`` to ``out`` (a file named *.dump, or a folder to put a
    dated one in); with ``keep``, only the newest ``keep`` dumps of that database stay in
    the folder."""
    target = Target.of(url)
    if out.is_dir() or out.suffix != SUFFIX:
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        out = out / f"{target.dbname}-{stamp}{SUFFIX}"
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(f".{out.name}.partial")
    started = time.monotonic()
    log.info("backing up database %s to %s", target.dbname, out)
    _run(
        [tool("pg_dump"), "--format=custom", "--file", str(partial), "--dbname", target.conninfo],
        target,
        "pg_dump",
    )
    partial.chmod(0o600)  # the depot's whole history: its owner's only
    with partial.open("rb") as written:
        os.fsync(written.fileno())
    partial.replace(out)
    log.info(
        "backup of %s done: %s, %.1f MB in %.1f s",
        target.dbname, out, out.stat().st_size / 1e6, time.monotonic() - started,
    )  # fmt: skip
    if keep is not None:
        prune(out.parent, target.dbname, keep)
    return out


def prune(folder: Path, dbname: str, keep: int) -> list[Path]:
    """Delete all but the newest ``keep`` dated dumps of ``dbname`` in ``folder``."""
    dumps = sorted(folder.glob(f"{dbname}-*{SUFFIX}"))  # dated names sort by time
    gone = dumps[:-keep] if keep > 0 else dumps
    for path in gone:
        path.unlink()
        log.info("old backup removed: %s", path)
    return gone


def restore(dump: Path, url: str, replace: bool = False) -> None:
    """Restore ``dump`` into the database of ``url``: created if missing; refused if it
    holds tables, unless ``replace`` (it is then dropped and created afresh)."""
    if not dump.is_file():
        raise UsageError(f"no backup at {dump}")
    target = Target.of(url)
    _prepare(target, replace)
    with psycopg.connect(target.url(), autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
        conn.execute("SELECT timescaledb_pre_restore()")
    started = time.monotonic()
    log.info("restoring %s into database %s", dump, target.dbname)
    try:
        _run(
            [tool("pg_restore"), "--no-owner", "--exit-on-error", "--dbname", target.conninfo,
             str(dump)],
            target,
            "pg_restore",
        )  # fmt: skip
    finally:  # the database leaves restore mode whatever happened
        with psycopg.connect(target.url(), autocommit=True) as conn:
            conn.execute("SELECT timescaledb_post_restore()")
    with psycopg.connect(target.url(), autocommit=True) as conn:
        conn.execute("ANALYZE")
    log.info("restored %s in %.1f s", target.dbname, time.monotonic() - started)


def _prepare(target: Target, replace: bool) -> None:
    """The group roles the dump's grants name, and an empty target database."""
    name = sql.Identifier(target.dbname)
    with psycopg.connect(target.url("postgres"), autocommit=True) as conn:
        for role in GROUP_ROLES:
            if (
                conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone()
                is None
            ):
                conn.execute(sql.SQL("CREATE ROLE {} NOLOGIN").format(sql.Identifier(role)))
        exists = conn.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", (target.dbname,)
        ).fetchone()
        if exists and replace:
            conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(name))
            exists = None
        if not exists:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(name))
            return
    with psycopg.connect(target.url(), autocommit=True) as conn:
        tables = conn.execute(
            "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"
        ).fetchone()
    if tables and tables[0]:
        raise UsageError(
            f"database {target.dbname} holds {tables[0]} tables; restore into a new one "
            "(another database name in --db), or pass --replace to drop it first (stop "
            "ingest and the dashboard before)"
        )


def _run(command: list[str], target: Target, what: str) -> None:
    result = subprocess.run(command, env=target.env(), capture_output=True, text=True, check=False)
    for line in result.stderr.splitlines():  # e.g. TimescaleDB's catalog's circular keys
        if line.strip():
            log.debug("%s: %s", what, line.strip())
    if result.returncode != 0:
        last = result.stderr.strip().splitlines()[-1:] or ["(no message)"]
        raise UsageError(f"{what} failed (exit {result.returncode}): {last[0]}")
