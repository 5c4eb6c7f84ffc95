"""The cloud schema on the real TimescaleDB: migrations, roles, retention, license paths."""

from __future__ import annotations

import os
import uuid
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from cloud.config import token_sha256
from cloud.schema import (
    apply_policies,
    create_login_user,
    migrate,
    pending_migrations,
    timescale_info,
)
from cloud.store import Store

pytestmark = pytest.mark.db


def test_migrations_apply_once_and_make_hypertables(cloud_db: str) -> None:
    assert migrate(cloud_db) == []  # the fixture applied them; a second run does nothing
    assert pending_migrations(cloud_db) == []
    with psycopg.connect(cloud_db) as conn:
        tables = dict(
            conn.execute(
                "SELECT hypertable_name, d.time_interval FROM timescaledb_information.dimensions d"
            ).fetchall()
        )
        views = {
            r[0] for r in conn.execute("SELECT table_name FROM information_schema.views").fetchall()
        }
    assert tables["position_estimations"] == timedelta(days=1)
    assert tables["state_snapshots"] == timedelta(days=7)
    assert tables["locomotive_events"] == timedelta(days=30)
    assert tables["locomotive_stays"] == timedelta(days=90)
    assert {
        "station_occupancy_hourly", "visits", "station_stays", "model_mix_daily",
        "locomotive_counts_hourly",
    } <= views  # fmt: skip


def test_the_reader_reads_and_the_writer_writes_only_data(cloud_db: str) -> None:
    suffix = uuid.uuid4().hex[:6]
    reader = create_login_user(cloud_db, f"dash_{suffix}", "reader")
    writer = create_login_user(cloud_db, f"ingest_{suffix}", "writer")
    with psycopg.connect(reader.url) as conn:
        conn.execute("SELECT count(*) FROM visits")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("INSERT INTO gateway_progress VALUES ('g', 'f', 1)")
    with psycopg.connect(writer.url, autocommit=True) as conn:
        conn.execute("INSERT INTO gateway_progress VALUES ('g', 'f', 1)")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("DROP TABLE position_estimations")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("DELETE FROM state_snapshots")


@pytest.mark.calendar
def test_the_writer_drops_only_chunks_past_retention(cloud_db: str) -> None:
    """Raw rows, snapshots and history each go at their own age."""
    writer = create_login_user(cloud_db, f"ingest_{uuid.uuid4().hex[:6]}", "writer")
    now = datetime.now(UTC)
    with psycopg.connect(cloud_db) as conn:
        for age in (1, 40, 100):
            conn.execute(
                "INSERT INTO camera_health VALUES (%s, 'f', 'g', %s, 'c', 'streaming', 2, NULL, "
                "0, 0, '')",
                (now - timedelta(days=age), age),
            )
        for age in (1, 30):  # 30: its 7-day chunk ends before the 14-day cut on any date
            conn.execute(
                "INSERT INTO state_snapshots VALUES (%s, 'f', 'retention', now(), 0, '[]')",
                (now - timedelta(days=age),),
            )
        for age in (1, 500):
            conn.execute(
                "INSERT INTO locomotive_stays VALUES ('f', 'retention', %s, 'S1', 'T1', %s, %s)",
                (f"fse-{age}", now - timedelta(days=age), now - timedelta(days=age - 0.5)),
            )
    store = Store(writer.url)
    store.open()
    try:
        assert store.drop_old_chunks(raw_days=30, snapshot_days=14, state_days=400) == 4
        with psycopg.connect(cloud_db) as conn:
            assert conn.execute("SELECT seq FROM camera_health").fetchall() == [(1,)]
            assert conn.execute("SELECT count(*) FROM state_snapshots").fetchone() == (1,)
            assert conn.execute("SELECT loco_id FROM locomotive_stays").fetchall() == [("fse-1",)]
        # ages count back from the caller's clock (ingest's), not the database server's
        a_year_on = (now + timedelta(days=365)).timestamp()
        assert store.drop_old_chunks(30, 14, 400, now=a_year_on) == 2
    finally:
        store.close()
    with psycopg.connect(cloud_db) as conn:
        assert conn.execute("SELECT seq FROM camera_health").fetchall() == []
        assert conn.execute("SELECT count(*) FROM state_snapshots").fetchone() == (0,)
        assert conn.execute("SELECT count(*) FROM locomotive_stays").fetchone() == (1,)


def test_the_license_decides_the_policies(cloud_db: str) -> None:
    info = apply_policies(cloud_db, raw_days=30, state_days=730)
    with psycopg.connect(cloud_db) as conn:
        jobs = conn.execute(
            "SELECT proc_name FROM timescaledb_information.jobs WHERE hypertable_name IS NOT NULL"
        ).fetchall()
        counts_kind = conn.execute(
            "SELECT count(*) FROM timescaledb_information.continuous_aggregates"
        ).fetchone()
    assert counts_kind == (0,)  # hours are rolled up by the state writer under both
    if info.license == "apache":
        assert jobs == []  # Apache: no policies; ingest drops chunks itself
    else:  # runs against a server with the Timescale license (LOCOWATCH_DB)
        names = {j[0] for j in jobs}
        assert {"policy_retention", "policy_compression"} <= names


def test_cloud_migrate_logs_the_license(cloud_db: str, locowatch_cli) -> None:  # type: ignore[no-untyped-def]
    result = locowatch_cli("cloud", "migrate", "--db", cloud_db)
    assert result.returncode == 0, result.stderr
    with psycopg.connect(cloud_db) as conn:
        license_name = timescale_info(conn).license
    assert f"{license_name} license" in result.stdout
    assert "applied 0 migrations" in result.stdout


def test_cloud_token_prints_an_entry_that_accepts_it(locowatch_cli, tmp_path) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "gw.token"
    result = locowatch_cli(
        "cloud", "token", "--gateway", "gw-a", "--facility", "depot", "--out", str(out)
    )
    assert result.returncode == 0, result.stderr
    token = out.read_text().strip()
    assert f"token_sha256: {token_sha256(token)}" in result.stdout
    assert oct(out.stat().st_mode & 0o777) == "0o600"


def test_report_errors_are_clear(cloud_db: str, locowatch_cli) -> None:  # type: ignore[no-untyped-def]
    bad_date = locowatch_cli("report", "visits", "--from", "yesterday", "--db", cloud_db)
    assert bad_date.returncode == 2 and "ISO date" in bad_date.stderr
    no_data = locowatch_cli("report", "visits", "--from", "2026-11-02", "--db", cloud_db)
    assert no_data.returncode == 2 and "--facility" in no_data.stderr
    empty = locowatch_cli(
        "report", "counts", "--from", "2026-11-02", "--facility", "x", "--db", cloud_db
    )
    assert empty.returncode == 0 and "(0 rows)" in empty.stdout


def test_the_analyst_docs_show_each_report_as_it_runs() -> None:
    from pathlib import Path

    from cloud.reports import REPORTS, report_sql

    docs = (Path(__file__).resolve().parents[2] / "docs" / "reports.md").read_text()
    for name in REPORTS:
        assert report_sql(name).strip() in docs, f"docs/reports.md lacks the current {name} SQL"


def test_the_example_cloud_config_is_valid() -> None:
    from pathlib import Path

    from cloud.config import load_cloud_config, load_facilities

    config = load_cloud_config(Path(__file__).resolve().parents[2] / "examples" / "cloud.yaml")
    facilities = load_facilities(config)
    assert [g.facility for g in config.gateways] == list(facilities)


def test_a_bad_cloud_config_names_the_key(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from cloud.config import load_cloud_config
    from locowatch.errors import UsageError

    path = tmp_path / "cloud.yaml"
    path.write_text(
        "version: 1\nfacilities: [f.yaml]\n"
        "gateways: [{id: gw, facility: f, token_sha256: not-a-hash}]\n"
    )
    with pytest.raises(UsageError, match=r"gateways\.0\.token_sha256"):
        load_cloud_config(path)


def test_a_rotated_token_overlaps_the_old_one(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """During a rotation both tokens open the gateway's stream; nothing else does."""
    from cloud.config import load_cloud_config
    from cloud.ingest import Authenticator
    from locowatch.errors import UsageError

    old, new, other = "old-token", "new-token", "other-token"
    path = tmp_path / "cloud.yaml"

    def config(gateways: str):  # type: ignore[no-untyped-def]
        path.write_text(f"version: 1\nfacilities: [f.yaml]\ngateways: {gateways}\n")
        return load_cloud_config(path)

    rotating = config(
        f"[{{id: gw, facility: f, token_sha256: [{token_sha256(new)}, {token_sha256(old)}]}},"
        f" {{id: gw2, facility: f, token_sha256: {token_sha256(other)}}}]"
    )
    auth = Authenticator(rotating)
    for token, gateway in ((old, "gw"), (new, "gw"), (other, "gw2")):
        assert auth.identify((("authorization", f"Bearer {token}"),)).gateway_id == gateway
    with pytest.raises(PermissionError, match="unknown gateway token"):
        auth.identify((("authorization", "Bearer stolen"),))

    with pytest.raises(UsageError, match="token_sha256 is empty"):
        config("[{id: gw, facility: f, token_sha256: []}]")
    with pytest.raises(UsageError, match="share a token"):
        config(
            f"[{{id: gw, facility: f, token_sha256: [{token_sha256(new)}, {token_sha256(old)}]}},"
            f" {{id: gw2, facility: f, token_sha256: {token_sha256(old)}}}]"
        )


def test_cloud_user_sets_a_given_password_and_keeps_it_out_of_the_output(
    cloud_db: str,
    locowatch_cli,
    tmp_path,  # type: ignore[no-untyped-def]
) -> None:
    """Deployments (compose secrets, ECS secrets) give the password; it never gets printed."""
    name, password = f"dash_{uuid.uuid4().hex[:6]}", "given-" + uuid.uuid4().hex
    secret = tmp_path / "password"
    secret.write_text(password + "\n")
    by_file = locowatch_cli(
        "cloud", "user", name, "--role", "reader", "--password-file", str(secret), "--db", cloud_db
    )
    assert by_file.returncode == 0, by_file.stderr
    assert password not in by_file.stdout + by_file.stderr
    login = psycopg.conninfo.make_conninfo(by_file.stdout.strip(), password=password)
    with psycopg.connect(login) as conn:
        assert conn.execute("SELECT current_user").fetchone() == (name,)

    env = {**os.environ, "DASH_PASSWORD": ""}
    unset = locowatch_cli("cloud", "user", name, "--role", "reader",
                          "--password-env", "DASH_PASSWORD", "--db", cloud_db, env=env)  # fmt: skip
    assert unset.returncode == 2 and "$DASH_PASSWORD is empty or unset" in unset.stderr
