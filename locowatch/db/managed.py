"""The embedded TimescaleDB that locowatch manages itself for demos, tests and small sites.

One PostgreSQL cluster lives in ``<home>/db``: its data folder, log, unix socket and a
small state file (port, superuser password). PostgreSQL refuses to run as root, so when
locowatch runs as root the server runs as the unprivileged system user ``locowatch``.
The server listens on 127.0.0.1 only, with ``timescaledb`` preloaded and its telemetry
off; clients connect over TCP with a generated password.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import pwd
import secrets
import shutil
import socket
import stat
import subprocess
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import psycopg
from psycopg import sql

from locowatch.db.install import ensure_postgres_with_timescaledb
from locowatch.db.postgres import PostgresInstall, find_postgres
from locowatch.errors import LocowatchError

log = logging.getLogger(__name__)

DB_OS_USER = "locowatch"  # runs the server when we are root
SUPERUSER = "postgres"
DATABASE = "locowatch"
DEFAULT_PORT = 55432
SHARED_CLUSTERS = Path("/var/lib/locowatch")


class ManagedDbError(LocowatchError):
    """The managed server could not be set up, started or reached."""


@dataclass(frozen=True)
class ServerState:
    """What ``db up`` decided once and every later command reuses."""

    port: int
    password: str
    major: int

    def url(self, database: str = DATABASE, hide_password: bool = False) -> str:
        password = "***" if hide_password else self.password
        return f"postgresql://{SUPERUSER}:{password}@127.0.0.1:{self.port}/{database}"


@dataclass(frozen=True)
class ServerStatus:
    running: bool
    pid: int | None
    home: Path
    data: Path
    state: ServerState | None
    postgres_version: str | None = None
    timescaledb_version: str | None = None
    timescaledb_license: str | None = None


class ManagedServer:
    """The cluster under ``home/db``; every method is safe to call again (idempotent)."""

    def __init__(self, home: Path) -> None:
        self.home = home.resolve()
        self.root = _cluster_root(self.home)
        self.data = self.root / "data"
        self.socket_dir = self.root / "run"
        self.logfile = self.root / "postgres.log"
        self.state_file = self.root / "state.json"

    # -- public verbs -------------------------------------------------------------------

    def up(self) -> ServerState:
        """Install what is missing, initialise the cluster once, start it, create the db."""
        with self._lock():
            return self._up()

    def _up(self) -> ServerState:
        install = ensure_postgres_with_timescaledb()
        state = self._read_state() or self._init_cluster(install)
        if state.major != install.major:
            found = find_postgres(state.major)
            if found is None or not found.has_timescaledb:
                raise ManagedDbError(
                    f"the cluster in {self.data} is PostgreSQL {state.major}, which is not "
                    f"installed with TimescaleDB here; remove {self.root} to start afresh"
                )
            install = found
        if self.pid() is None:
            state = self._start(install, state)
        self._ensure_database(state)
        return state

    def down(self) -> bool:
        """Stop the server; returns False when it was not running."""
        state = self._read_state()
        if state is None or self.pid() is None:
            return False
        install = self._install_for(state)
        self._as_db_user(
            [install.binary("pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop"], "stop"
        )
        return True

    def status(self) -> ServerStatus:
        state = self._read_state()
        pid = self.pid()
        if state is None or pid is None:
            return ServerStatus(
                running=False, pid=None, home=self.home, data=self.data, state=state
            )
        try:
            with psycopg.connect(state.url(), connect_timeout=5) as conn:
                pg = conn.execute("SHOW server_version").fetchone()
                ts = conn.execute(
                    "SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'"
                ).fetchone()
                lic = conn.execute("SHOW timescaledb.license").fetchone()
        except psycopg.Error as exc:
            raise ManagedDbError(
                f"PostgreSQL runs (pid {pid}) but does not answer on port {state.port}: {exc}; "
                f"see {self.logfile}"
            ) from exc
        return ServerStatus(
            running=True,
            pid=pid,
            home=self.home,
            data=self.data,
            state=state,
            postgres_version=pg[0] if pg else None,
            timescaledb_version=ts[0] if ts else None,
            timescaledb_license=lic[0] if lic else None,
        )

    def url(self) -> str:
        state = self._read_state()
        if state is None:
            raise ManagedDbError(f"no managed database in {self.root}: run 'locowatch db up'")
        return state.url()

    def pid(self) -> int | None:
        """PID of the running postmaster, from its pid file, if the process is alive."""
        try:
            pid = int((self.data / "postmaster.pid").read_text().split("\n", 1)[0])
        except (OSError, ValueError):
            return None
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            return pid  # alive, owned by the db user
        return pid

    # -- steps --------------------------------------------------------------------------

    def _init_cluster(self, install: PostgresInstall) -> ServerState:
        if (self.data / "PG_VERSION").exists():
            raise ManagedDbError(
                f"{self.data} holds a cluster but {self.state_file} is missing; "
                f"remove {self.root} to start afresh"
            )
        if self.root.parent == SHARED_CLUSTERS:
            log.info("%s is private to root; the cluster lives in %s", self.home, self.root)
        log.info("initialising a PostgreSQL %s cluster in %s", install.major, self.data)
        self._prepare_dirs()
        state = ServerState(
            port=_free_port(DEFAULT_PORT), password=secrets.token_urlsafe(24), major=install.major
        )
        pwfile = self.root / "initdb.pw"
        pwfile.write_text(state.password + "\n")
        self._give_to_db_user(pwfile)
        try:
            self._as_db_user(
                [
                    install.binary("initdb"),
                    "-D",
                    str(self.data),
                    "-U",
                    SUPERUSER,
                    f"--pwfile={pwfile}",
                    "--auth-local=trust",  # the socket folder is private to the db user
                    "--auth-host=scram-sha-256",
                    "--encoding=UTF8",
                    "--locale=C",
                ],
                "initdb",
            )
        finally:
            pwfile.unlink(missing_ok=True)
        self._write_server_config(state)
        self._write_state(state)
        return state

    def _write_server_config(self, state: ServerState) -> None:
        settings = {
            "listen_addresses": "'127.0.0.1'",
            "port": str(state.port),
            "unix_socket_directories": f"'{self.socket_dir}'",
            "shared_preload_libraries": "'timescaledb'",
            "timescaledb.telemetry_level": "off",
            "max_connections": "200",
            "shared_buffers": "'256MB'",
            "timezone": "'UTC'",
            "log_timezone": "'UTC'",
            "log_line_prefix": "'%m [%p] %q%u@%d '",
        }
        conf = self.data / "locowatch.conf"
        conf.write_text(
            "# Written by 'locowatch db up'.\n"
            + "".join(f"{k} = {v}\n" for k, v in settings.items())
        )
        self._give_to_db_user(conf)
        main_conf = self.data / "postgresql.conf"
        text = main_conf.read_text()
        if "include_if_exists = 'locowatch.conf'" not in text:
            main_conf.write_text(text + "\ninclude_if_exists = 'locowatch.conf'\n")

    def _start(self, install: PostgresInstall, state: ServerState) -> ServerState:
        if not _port_free(state.port):
            # Another checkout's server (or another program) took our port while we were
            # down; clients always ask for the URL, so moving is cheaper than failing.
            moved = replace(state, port=_free_port(state.port))
            log.warning("port %s is taken; moving to %s", state.port, moved.port)
            self._write_server_config(moved)
            self._write_state(moved)
            state = moved
        log.info("starting PostgreSQL %s on 127.0.0.1:%s", install.major, state.port)
        self._as_db_user(
            [
                install.binary("pg_ctl"),
                "-D",
                str(self.data),
                "-l",
                str(self.logfile),
                "-w",
                "-t",
                "60",
                "start",
            ],
            "start (see " + str(self.logfile) + ")",
        )
        return state

    def _ensure_database(self, state: ServerState) -> None:
        with psycopg.connect(state.url("postgres"), autocommit=True, connect_timeout=10) as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [DATABASE])
            if exists.fetchone() is None:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(DATABASE)))
        with psycopg.connect(state.url(), autocommit=True, connect_timeout=10) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")

    # -- helpers ------------------------------------------------------------------------

    @contextmanager
    def _lock(self) -> Iterator[None]:
        """Serialise concurrent 'db up' calls on one home (make and a test run, say)."""
        self.home.mkdir(parents=True, exist_ok=True)
        with (self.home / "db.lock").open("w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            yield

    def _install_for(self, state: ServerState) -> PostgresInstall:
        install = find_postgres(state.major)
        if install is None:
            raise ManagedDbError(f"PostgreSQL {state.major} is no longer installed")
        return install

    def _prepare_dirs(self) -> None:
        for path in (self.root, self.data, self.socket_dir):
            path.mkdir(parents=True, exist_ok=True)
        for path in (self.data, self.socket_dir):
            path.chmod(0o700)
        if _db_user() is not None:
            for path in (self.root, self.data, self.socket_dir):
                self._give_to_db_user(path)

    def _give_to_db_user(self, path: Path) -> None:
        user = _db_user()
        if user is not None:
            shutil.chown(path, user=user.pw_uid, group=user.pw_gid)

    def _as_db_user(self, command: Sequence[str], what: str) -> None:
        user = _db_user()
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C", "LANG": "C"}
        if user is not None:
            env["HOME"] = user.pw_dir
        result = subprocess.run(
            list(command),
            user=user.pw_uid if user else None,
            group=user.pw_gid if user else None,
            extra_groups=[] if user else None,
            cwd=self.root,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            output = (result.stdout + result.stderr).strip()
            raise ManagedDbError(f"PostgreSQL {what} failed (exit {result.returncode}):\n{output}")

    def _read_state(self) -> ServerState | None:
        try:
            return ServerState(**json.loads(self.state_file.read_text()))
        except FileNotFoundError:
            return None
        except (ValueError, TypeError) as exc:
            raise ManagedDbError(f"{self.state_file} is damaged: {exc}") from exc

    def _write_state(self, state: ServerState) -> None:
        self.state_file.write_text(json.dumps(asdict(state), indent=2) + "\n")
        self.state_file.chmod(0o600)


def _cluster_root(home: Path) -> Path:
    """Folder of the cluster: ``home/db``, unless the server's OS user could not reach it.

    As root, a home under a private folder (a 0700 /root, say) is out of reach of the
    unprivileged user that runs PostgreSQL; the cluster then lives under /var/lib/locowatch
    in a folder named after the home, so each checkout still gets its own server.
    """
    root = home / "db"
    if os.geteuid() != 0 or (root / "state.json").exists() or _traversable_by_others(home):
        return root
    digest = hashlib.sha1(str(home).encode()).hexdigest()[:12]
    return SHARED_CLUSTERS / f"{home.parent.name}-{home.name.lstrip('.')}-{digest}"


def _traversable_by_others(path: Path) -> bool:
    """Whether every existing folder from / down to ``path`` lets other users pass."""
    for folder in [*reversed(path.parents), path]:
        try:
            mode = folder.stat().st_mode
        except FileNotFoundError:
            break
        if not mode & stat.S_IXOTH:
            return False
    return True


def _db_user() -> pwd.struct_passwd | None:
    """The OS user to run the server as when we are root (created on first use), else None."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam(DB_OS_USER)
    except KeyError:
        log.info("creating the unprivileged system user %r to run PostgreSQL", DB_OS_USER)
        subprocess.run(
            ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", DB_OS_USER],
            check=True,
        )
        return pwd.getpwnam(DB_OS_USER)


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _free_port(preferred: int) -> int:
    if _port_free(preferred):
        return preferred
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
