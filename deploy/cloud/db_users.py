"""Make (or re-password) the login users of the compose stack, after ``cloud migrate``.

``locowatch cloud user`` invents a password and prints the URL; in compose the passwords
are secret files the services already mount, so this sets those instead. Run as the owner
(LOCOWATCH_DB, password through PGPASSWORD); safe to run at every ``docker compose up``.

    python db_users.py locowatch_ingest=writer:/run/secrets/db-ingest-password ...
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from cloud.schema import create_login_user


def main(specs: list[str]) -> None:
    owner_url = os.environ["LOCOWATCH_DB"]
    for spec in specs:
        name, _, rest = spec.partition("=")
        role, _, password_file = rest.partition(":")
        if role not in ("writer", "reader") or not password_file:
            sys.exit(f"expected NAME=writer|reader:PASSWORD_FILE, got {spec!r}")
        password = Path(password_file).read_text(encoding="utf-8").strip()
        create_login_user(owner_url, name, role, password)  # type: ignore[arg-type]
        print(f"login user {name} ({role}) is ready")


if __name__ == "__main__":
    main(sys.argv[1:])
