"""Where the database is: the managed embedded TimescaleDB, or a server given by URL."""

from locowatch.db.location import DB_ENV, default_home, external_db_url, resolve_db_url
from locowatch.db.managed import ManagedDbError, ManagedServer, ServerStatus

__all__ = [
    "DB_ENV",
    "ManagedDbError",
    "ManagedServer",
    "ServerStatus",
    "default_home",
    "external_db_url",
    "resolve_db_url",
]
