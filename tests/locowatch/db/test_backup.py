"""`locowatch db backup` and `restore` on a real TimescaleDB: every report answers the same
after a restore, the roles' grants come back, and a restore never overwrites data by
accident."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import psycopg
import pytest

from cloud.fse.offline import store_offline
from cloud.schema import create_login_user, migrate
from cloud.store import Store
from locowatch.db.backup import Target, prune, tool
from locowatch.db.scratch import scratch_database
from sim.estimations import twin_estimations
from sim.twin import Twin
from tests.conftest import REPO, LocowatchCli

pytestmark = pytest.mark.db
REPORTS = ("occupancy", "visits", "stays", "counts", "models")


def reports(locowatch_cli: LocowatchCli, url: str, day: str) -> dict[str, str]:
    out = {}
    for name in REPORTS:
        result = locowatch_cli("report", name, "--from", day, "--csv", "--db", url)
        assert result.returncode == 0, result.stderr
        out[name] = result.stdout
    return out


def test_a_restored_database_answers_every_report_as_before(
    db_server_url: str, tmp_path: Path, locowatch_cli: LocowatchCli
) -> None:
    twin = Twin()
    with scratch_database(db_server_url, "locowatch_backup") as url:
        migrate(url)
        store = Store(url, max_connections=2)
        store.open()
        try:
            envelopes = twin_estimations(twin, flows=("prod",), start_s=0.0, end_s=180.0)
            store_offline(store, twin.facility, ("prod",), envelopes, "gw-1")
        finally:
            store.close()
        day = twin.scenario.spec.start_time.date().isoformat()
        before = reports(locowatch_cli, url, day)
        assert before["visits"].count("\n") > 2  # the twin's morning has visits

        made = locowatch_cli("db", "backup", "--db", url, "--out", str(tmp_path) + "/")
        assert made.returncode == 0, made.stderr
        dump = Path(made.stdout.strip())
        assert dump.parent == tmp_path and dump.name.startswith(Target.of(url).dbname + "-")
        assert Target.of(url).password not in (made.stdout + made.stderr)

        # The compose stack's nightly job writes the same dumps (its own pg_dump).
        nightly = tmp_path / "nightly"
        nightly.mkdir()
        for _ in range(3):
            compose_backup(url, nightly, "once")
            time.sleep(1.1)  # dumps are named by the second
        kept = sorted(nightly.glob("*.dump"))
        assert len(kept) == 2 and compose_backup(url, nightly, "check").returncode == 0

        restored_url = Target.of(url).url(Target.of(url).dbname + "_restored")
        try:
            done = locowatch_cli("db", "restore", str(dump), "--db", restored_url)
            assert done.returncode == 0, done.stderr
            assert reports(locowatch_cli, restored_url, day) == before
            with psycopg.connect(restored_url) as conn:  # still hypertables
                hypertables = conn.execute(
                    "SELECT count(*) FROM timescaledb_information.hypertables"
                ).fetchone()
            assert hypertables is not None and hypertables[0] >= 6
            reader = create_login_user(restored_url, "locowatch_backup_reader", "reader")
            with psycopg.connect(reader.url) as conn:  # the grants came back
                conn.execute("SELECT count(*) FROM state_snapshots").fetchone()

            with psycopg.connect(Target.of(url).url("postgres"), autocommit=True) as conn:
                conn.execute(f'DROP DATABASE "{Target.of(url).dbname}_restored" WITH (FORCE)')
            done = locowatch_cli("db", "restore", str(kept[-1]), "--db", restored_url)
            assert done.returncode == 0, done.stderr
            assert reports(locowatch_cli, restored_url, day) == before

            again = locowatch_cli("db", "restore", str(dump), "--db", restored_url)
            assert again.returncode == 2
            assert "holds" in again.stderr and "--replace" in again.stderr
            replaced = locowatch_cli("db", "restore", str(dump), "--db", restored_url,
                                     "--replace")  # fmt: skip
            assert replaced.returncode == 0, replaced.stderr
            assert reports(locowatch_cli, restored_url, day)["visits"] == before["visits"]
        finally:
            with psycopg.connect(Target.of(url).url("postgres"), autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{Target.of(url).dbname}_restored" '
                             "WITH (FORCE)")  # fmt: skip


def compose_backup(url: str, folder: Path, mode: str) -> subprocess.CompletedProcess[str]:
    """deploy/cloud/backup.sh as the compose service runs it, with this server's tools."""
    target = Target.of(url)
    secret = folder.parent / "db-owner-password"
    secret.write_text((target.password or "") + "\n", encoding="utf-8")
    tools = Path(tool("pg_dump")).parent
    env = {
        "PATH": f"{tools}:/usr/bin:/bin",
        "PGHOST": target.params.get("host", "127.0.0.1"),
        "PGPORT": target.params.get("port", "5432"),
        "PGUSER": target.params.get("user", "postgres"),
        "PGDATABASE": target.dbname,
        "PGPASSWORD_FILE": str(secret),
        "BACKUP_DIR": str(folder),
        "BACKUP_KEEP": "2",
    }
    result = subprocess.run(
        ["sh", str(REPO / "deploy" / "cloud" / "backup.sh"), mode],
        env=env, capture_output=True, text=True, check=False, timeout=120,
    )  # fmt: skip
    if mode == "once":
        assert result.returncode == 0, result.stderr
        assert target.password is None or target.password not in result.stdout + result.stderr
    return result


def test_only_the_newest_backups_are_kept(tmp_path: Path) -> None:
    for stamp in ("20261201T023000Z", "20261202T023000Z", "20261203T023000Z"):
        (tmp_path / f"locowatch-{stamp}.dump").write_bytes(b"x")
    (tmp_path / "other-20261201T023000Z.dump").write_bytes(b"x")  # another database's
    gone = prune(tmp_path, "locowatch", keep=2)
    assert [p.name for p in gone] == ["locowatch-20261201T023000Z.dump"]
    assert len(list(tmp_path.glob("*.dump"))) == 3
