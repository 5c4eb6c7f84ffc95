"""The cloud side for small sites: its image lints clean, both compose files follow the
compose spec and our rules, and the compose services' own commands (through the image's
entrypoint, with passwords in files) migrate a real TimescaleDB and run ingest.

No Docker engine runs here: the image is linted, never built.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import yaml
from psycopg import sql

from locowatch.db.scratch import scratch_database
from sim.streaming import free_port
from tests.fixtures import processes

REPO = Path(__file__).resolve().parents[2]
CLOUD = REPO / "deploy" / "cloud"
COMPOSE_FILES = [CLOUD / "compose.yaml", REPO / "deploy" / "edge" / "compose.yaml"]
BIN = Path(sys.executable).parent
ONE_SHOT = "migrate"


def tool(name: str) -> Path:
    path = BIN / name
    if not path.exists():
        pytest.fail(f"{name} is missing: pip install -e '.[test]' (it is in the test extra)")
    return path


def run(*argv: str | Path, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    command = [str(a) for a in argv]
    return subprocess.run(command, capture_output=True, text=True, check=False, **kwargs)


def compose() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load((CLOUD / "compose.yaml").read_text())
    return document


def test_hadolint_passes_the_cloud_dockerfile() -> None:
    result = run(tool("hadolint"), CLOUD / "Dockerfile")
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("path", COMPOSE_FILES, ids=lambda p: p.parent.name)
def test_the_compose_files_follow_the_compose_spec(path: Path) -> None:
    # check-jsonschema ships the compose-spec JSON schema (what `docker compose config` uses).
    result = run(tool("check-jsonschema"), "--builtin-schema", "vendor.compose-spec", path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_long_running_service_restarts_and_has_a_health_check() -> None:
    for name, service in compose()["services"].items():
        if name == ONE_SHOT:  # runs once per `up`; the others wait for it to complete
            assert service["restart"] == "no"
            continue
        assert service["restart"] == "unless-stopped", name
        assert service["healthcheck"]["test"][0] == "CMD", name
        assert not service["healthcheck"].get("disable"), name


def test_ingest_and_dashboard_start_after_migrations_on_their_own_roles() -> None:
    services = compose()["services"]
    assert services["migrate"]["depends_on"]["timescaledb"]["condition"] == "service_healthy"
    users = {}
    for name in ("ingest", "dashboard"):
        condition = services[name]["depends_on"][ONE_SHOT]["condition"]
        assert condition == "service_completed_successfully", name
        users[name] = services[name]["environment"]["LOCOWATCH_DB"].split("//")[1].split("@")[0]
    assert users == {"ingest": "locowatch_ingest", "dashboard": "locowatch_dashboard"}
    assert ":" not in "".join(users.values())  # no password in a URL


def test_no_secret_is_written_in_the_compose_file() -> None:
    document = compose()
    for name, service in document["services"].items():
        for key, value in service.get("environment", {}).items():
            if any(word in key for word in ("PASSWORD", "SECRET", "TOKEN")):
                assert key.endswith("_FILE") and value.startswith("/run/secrets/"), (name, key)
    for secret in document["secrets"].values():
        assert set(secret) == {"file"}  # from files, never inline values or environment
    image = document["services"]["timescaledb"]["image"]
    assert image.split(":")[1][0].isdigit(), f"pin the TimescaleDB image: {image}"
    assert set(document["volumes"]) == {"db-data"}


# --- the services' commands, for real ----------------------------------------------------


def local(command: list[str], files: dict[str, Path]) -> list[str]:
    """A compose command as compose runs it (``${NAME:-default}`` interpolated), with the
    container's paths replaced by this test's."""
    text = re.sub(
        r"\$\{(\w+):-([^}]*)\}", lambda m: os.environ.get(m[1]) or m[2], "\0".join(command)
    )
    for container_path, here in files.items():
        text = text.replace(container_path, str(here))
    return text.split("\0")


@pytest.fixture
def site(db_server_url: str, tmp_path: Path) -> Iterator[dict[str, Any]]:
    """A scratch database, secret files, cloud.yaml; unique login user names."""
    suffix = uuid.uuid4().hex[:8]
    users = {"ingest": f"lw_ingest_{suffix}", "dashboard": f"lw_dashboard_{suffix}"}
    with scratch_database(db_server_url, "locowatch_compose") as url:
        owner = psycopg.conninfo.conninfo_to_dict(url)
        secrets = tmp_path / "secrets"
        secrets.mkdir()
        for name, value in (("owner", str(owner.pop("password", ""))), ("ingest", "i-" + suffix),
                            ("dashboard", "d-" + suffix)):  # fmt: skip
            (secrets / f"db-{name}-password").write_text(value + "\n")
        config = yaml.safe_load((REPO / "examples" / "cloud.yaml").read_text())
        config.update(
            listen=f"127.0.0.1:{free_port()}",
            metrics_port=free_port(),
            fse_metrics_port=free_port(),
            facilities=[str(REPO / "examples" / "depot.yaml")],
        )
        (tmp_path / "cloud.yaml").write_text(yaml.safe_dump(config))
        files = {
            "/etc/locowatch/cloud.yaml": tmp_path / "cloud.yaml",
            "/opt/locowatch/healthcheck.py": CLOUD / "healthcheck.py",
            "/run/secrets/db-owner-password": secrets / "db-owner-password",
            "/run/secrets/db-ingest-password": secrets / "db-ingest-password",
            "/run/secrets/db-dashboard-password": secrets / "db-dashboard-password",
            "locowatch_ingest": Path(users["ingest"]),
            "locowatch_dashboard": Path(users["dashboard"]),
            "127.0.0.1:9464": Path(f"127.0.0.1:{config['metrics_port']}"),
        }
        try:
            yield {"owner": owner, "files": files, "users": users}
        finally:
            with psycopg.connect(url, autocommit=True) as conn:
                for user in users.values():
                    exists = "SELECT 1 FROM pg_roles WHERE rolname = %s"
                    if conn.execute(exists, (user,)).fetchone():
                        conn.execute(sql.SQL("DROP OWNED BY {0}; DROP ROLE {0}").format(
                            sql.Identifier(user)))  # fmt: skip


def service_env(service: dict[str, Any], site: dict[str, Any]) -> dict[str, str]:
    """The service's environment as compose gives it, pointed at the scratch database."""
    owner = site["owner"]
    env = {**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}"}
    for key, value in service["environment"].items():
        env[key] = local([str(value)], site["files"])[0]
    user = env["LOCOWATCH_DB"].split("//")[1].split("@")[0]
    user = owner["user"] if user == "locowatch" else user  # the compose stack's owner
    port, dbname = owner.get("port", 5432), owner["dbname"]
    env["LOCOWATCH_DB"] = f"postgresql://{user}@{owner['host']}:{port}/{dbname}"
    return env


@pytest.mark.db
def test_the_services_commands_migrate_the_database_and_run_ingest(
    site: dict[str, Any], tmp_path: Path
) -> None:
    services = compose()["services"]
    entrypoint = CLOUD / "entrypoint.sh"
    migrate = services["migrate"]
    done = run(entrypoint, *local(migrate["command"], site["files"]),
               env=service_env(migrate, site), timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    # The writer logs in with the password of its secret file.
    owner, files = site["owner"], site["files"]
    password = files["/run/secrets/db-ingest-password"].read_text().strip()
    with psycopg.connect(host=owner["host"], port=owner.get("port", 5432), dbname=owner["dbname"],
                         user=site["users"]["ingest"], password=password) as conn:  # fmt: skip
        assert conn.execute("SELECT pg_has_role('locowatch_writer', 'MEMBER')").fetchone() == (
            True,
        )

    ingest = services["ingest"]
    log = (tmp_path / "ingest.log").open("wb")
    process = subprocess.Popen(
        [entrypoint, *local(ingest["command"], files)], env=service_env(ingest, site),
        stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        check = local(ingest["healthcheck"]["test"][1:], files)
        deadline, result = time.monotonic() + 60, run(*check)
        while result.returncode != 0 and time.monotonic() < deadline:
            time.sleep(0.5)
            result = run(*check)
        assert result.returncode == 0, (tmp_path / "ingest.log").read_text()[-3000:]
    finally:
        processes.stop(process)
        log.close()
