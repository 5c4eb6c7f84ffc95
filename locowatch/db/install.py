"""Install PostgreSQL and build the TimescaleDB extension on a Debian machine.

Debian 12 (bookworm) has no TimescaleDB package, but Debian 13 (trixie) ships its source
(2.19, Apache-2 build). We add a ``deb-src`` entry for trixie on the same mirror the
machine already uses, fetch the source with ``apt-get source`` and build it against the
installed PostgreSQL's server headers. Only source packages come from trixie, so the
machine's binary packages stay bookworm's.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

from locowatch.db.postgres import PostgresInstall, find_postgres
from locowatch.errors import LocowatchError

log = logging.getLogger(__name__)

TRIXIE_SOURCES = Path("/etc/apt/sources.list.d/locowatch-trixie-src.sources")
APT_SOURCE_FILES = (Path("/etc/apt/sources.list.d/debian.sources"), Path("/etc/apt/sources.list"))
CREATECLUSTER_CONF = Path("/etc/postgresql-common/createcluster.conf")
DEFAULT_MIRROR = "http://deb.debian.org/debian"
BUILD_PACKAGES = ("cmake", "gcc", "make", "dpkg-dev", "libssl-dev", "libkrb5-dev")


class InstallError(LocowatchError):
    """A step of the installation failed; the message says which and how to fix it."""


def ensure_postgres_with_timescaledb() -> PostgresInstall:
    """Return a PostgreSQL install that has TimescaleDB, installing what is missing."""
    install = find_postgres()
    if install is not None and install.has_timescaledb:
        return install
    _require_debian_root()
    if install is None:
        log.info("PostgreSQL not found: installing it from Debian's packages")
        _apt_install(["postgresql-common"])
        _no_default_cluster()
        _apt_install(["postgresql", "postgresql-contrib"])
        install = find_postgres()
        if install is None:
            raise InstallError("apt-get installed PostgreSQL but no server binaries were found")
    log.info("TimescaleDB not found for PostgreSQL %s: building it from source", install.major)
    build_timescaledb(install)
    built = find_postgres(install.major)
    if built is None or not built.has_timescaledb:
        raise InstallError("TimescaleDB was built but its extension files are not where expected")
    return built


def build_timescaledb(install: PostgresInstall) -> None:
    """Build and install the Apache-2 TimescaleDB from Debian trixie's source package."""
    _apt_install([f"postgresql-server-dev-{install.major}", *BUILD_PACKAGES])
    _add_trixie_sources()
    _run(["apt-get", "update", "-qq"], "apt-get update")
    with tempfile.TemporaryDirectory(prefix="locowatch-timescaledb-") as tmp:
        work = Path(tmp)
        log.info("fetching the timescaledb source package from trixie")
        _run(["apt-get", "source", "-qq", "timescaledb"], "apt-get source timescaledb", cwd=work)
        source = next((p for p in work.iterdir() if p.is_dir()), None)
        if source is None:
            raise InstallError("apt-get source timescaledb produced no source folder")
        log.info("building %s against PostgreSQL %s (about a minute)", source.name, install.major)
        env = {**os.environ, "PATH": f"{install.bindir}:{os.environ.get('PATH', '')}"}
        _run(
            [
                "./bootstrap",
                "-DAPACHE_ONLY=1",
                "-DREGRESS_CHECKS=OFF",
                "-DTAP_CHECKS=OFF",
                "-DWARNINGS_AS_ERRORS=OFF",
                "-DSEND_TELEMETRY_DEFAULT=OFF",
                f"-DPG_CONFIG={install.pg_config}",
            ],
            "timescaledb bootstrap",
            cwd=source,
            env=env,
        )
        jobs = str(os.cpu_count() or 2)
        _run(
            ["make", "-C", "build", "-j", jobs, "install"], "timescaledb build", cwd=source, env=env
        )
    log.info("TimescaleDB installed for PostgreSQL %s", install.major)


def _no_default_cluster() -> None:
    """Stop Debian from creating and starting its own 'main' cluster on port 5432.

    locowatch runs its own cluster; an idle second server would only hold a port.
    """
    if CREATECLUSTER_CONF.exists():
        text = CREATECLUSTER_CONF.read_text()
        text = re.sub(r"(?m)^#?\s*create_main_cluster\s*=.*$", "create_main_cluster = false", text)
        if "create_main_cluster = false" not in text:
            text += "\ncreate_main_cluster = false\n"
        CREATECLUSTER_CONF.write_text(text)


def _require_debian_root() -> None:
    if not Path("/etc/debian_version").exists() or shutil.which("apt-get") is None:
        raise InstallError(
            "PostgreSQL with TimescaleDB is missing and this is not a Debian machine: install "
            "them yourself (or use the official timescale/timescaledb Docker image) and pass "
            "--db URL or set LOCOWATCH_DB"
        )
    if os.geteuid() != 0:
        raise InstallError(
            "PostgreSQL with TimescaleDB is missing; installing it needs root: run "
            "'sudo locowatch db install' once, or pass --db URL / set LOCOWATCH_DB"
        )


def _apt_install(packages: Sequence[str]) -> None:
    missing = [p for p in packages if not _dpkg_installed(p)]
    if not missing:
        return
    log.info("apt-get install %s", " ".join(missing))
    _run(["apt-get", "update", "-qq"], "apt-get update")
    _run(
        ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing],
        "apt-get install",
        env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
    )


def _dpkg_installed(package: str) -> bool:
    result = subprocess.run(
        ["dpkg-query", "-W", "-f=${Status}", package], capture_output=True, text=True, check=False
    )
    return result.returncode == 0 and result.stdout.endswith("installed")


def _add_trixie_sources() -> None:
    """Write a deb-src entry for trixie on the machine's own Debian mirror."""
    text = (
        "# Added by locowatch: the TimescaleDB source package (only deb-src, no binaries).\n"
        "Types: deb-src\n"
        f"URIs: {debian_mirror()}\n"
        "Suites: trixie\n"
        "Components: main\n"
        "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n"
    )
    if not TRIXIE_SOURCES.exists() or TRIXIE_SOURCES.read_text() != text:
        TRIXIE_SOURCES.write_text(text)


def debian_mirror(files: Sequence[Path] = APT_SOURCE_FILES) -> str:
    """The Debian archive URI the machine already uses (not its security mirror)."""
    for path in files:
        if not path.exists():
            continue
        for uri in re.findall(
            r"(?:URIs:\s*|deb(?:-src)?\s+(?:\[[^]]*\]\s+)?)(\S+)", path.read_text()
        ):
            if "security" not in uri and "debian" in uri:
                return str(uri)
    return DEFAULT_MIRROR


def _run(
    command: Sequence[str],
    what: str,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
) -> None:
    result = subprocess.run(
        list(command), cwd=cwd, env=env, capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-20:])
        raise InstallError(f"{what} failed (exit {result.returncode}):\n{tail}")
