"""Resolve which database a command talks to.

Order: an explicit ``--db URL``, then the ``LOCOWATCH_DB`` environment variable, then the
managed server in the locowatch home (``LOCOWATCH_HOME``, else ``.locowatch`` in a source
checkout, else ``~/.local/share/locowatch``).
"""

from __future__ import annotations

import os
from pathlib import Path

DB_ENV = "LOCOWATCH_DB"
HOME_ENV = "LOCOWATCH_HOME"


def default_home() -> Path:
    """Where locowatch keeps its managed database and other local state."""
    if os.environ.get(HOME_ENV):
        return Path(os.environ[HOME_ENV])
    checkout = Path(__file__).resolve().parents[2]
    if (checkout / "pyproject.toml").exists() and (checkout / "protos").is_dir():
        return checkout / ".locowatch"
    data_home = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    return data_home / "locowatch"


def external_db_url(explicit: str | None = None) -> str | None:
    """The URL of a server the user pointed at, or None to use the managed one."""
    return explicit or os.environ.get(DB_ENV) or None


def running_server_url(explicit: str | None = None, home: Path | None = None) -> str:
    """Like ``resolve_db_url``, but starts the managed server when it is the one used."""
    from locowatch.db.managed import ManagedServer

    return external_db_url(explicit) or ManagedServer(home or default_home()).up().url()


def resolve_db_url(explicit: str | None = None, home: Path | None = None) -> str:
    """The database URL to use; the managed server's when no other was given."""
    from locowatch.db.managed import ManagedServer

    return external_db_url(explicit) or ManagedServer(home or default_home()).url()
