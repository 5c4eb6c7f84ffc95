"""Find the PostgreSQL server installs on this machine (Debian's /usr/lib/postgresql/N)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

DEBIAN_LIB = Path("/usr/lib/postgresql")
DEBIAN_SHARE = Path("/usr/share/postgresql")


@dataclass(frozen=True)
class PostgresInstall:
    major: int
    bindir: Path
    sharedir: Path

    @property
    def pg_config(self) -> Path:
        return self.bindir / "pg_config"

    @property
    def has_timescaledb(self) -> bool:
        return (self.sharedir / "extension" / "timescaledb.control").exists()

    def binary(self, name: str) -> str:
        return str(self.bindir / name)


def find_postgres(major: int | None = None) -> PostgresInstall | None:
    """The newest installed server (one with TimescaleDB preferred), or ``major`` if given."""
    installs = [
        PostgresInstall(int(path.name), path / "bin", DEBIAN_SHARE / path.name)
        for path in (DEBIAN_LIB.iterdir() if DEBIAN_LIB.is_dir() else [])
        if path.name.isdigit() and (path / "bin" / "postgres").exists()
    ]
    if major is not None:
        installs = [i for i in installs if i.major == major]
    if not installs:
        return None
    return max(installs, key=lambda i: (i.has_timescaledb, i.major))
