"""``locowatch demo``: the one command that shows the product working.

For now it brings up the managed TimescaleDB and the facility twin (the simulated depot),
writes a look at it, runs cloud ingest with the facility state estimator on the twin's
day (the twin plays the gateway), prints the accuracy and the visits report, and serves
the dashboard on that day until stopped. The edge services join as their issue lands.
"""

from __future__ import annotations

import contextlib
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import click
import cv2
import psycopg

from locowatch.db.cli import db_url_option, home_option
from locowatch.db.location import default_home
from locowatch.db.managed import ManagedServer
from locowatch.errors import LocowatchError

if TYPE_CHECKING:
    from sim.twin import Twin


@click.command()
@db_url_option
@home_option
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the twin depot.")
@click.option(
    "--dashboard-port",
    type=click.IntRange(0, 65535),
    default=8050,
    show_default=True,
    help="Port of the dashboard; 0: do not serve it (the demo ends after the reports).",
)
def demo(db_url: str | None, home: Path | None, seed: int, dashboard_port: int) -> None:
    """Run the demo on the embedded default (managed TimescaleDB, the twin depot)."""
    from sim.twin import Twin, TwinSpec  # the twin pulls in rendering: only load it here

    home = home or default_home()
    click.echo("[1/4] database")
    url = db_url or ManagedServer(home).up().url()
    click.echo(f"      TimescaleDB ready: {url}")
    click.echo("[2/4] facility twin")
    twin = Twin(TwinSpec(seed=seed))
    facility = twin.facility
    click.echo(
        f"      {facility.facility.name}: {len(facility.tracks)} tracks, "
        f"{len(facility.stations)} stations, {len(facility.cameras)} cameras, "
        f"{len(twin.scenario.fleet)} locomotives over a {twin.spec.scenario.duration_s:.0f} s day"
    )
    out = home / "demo"
    out.mkdir(parents=True, exist_ok=True)
    midday = twin.spec.scenario.duration_s / 2
    hour = twin.scenario.hour_of_day(midday)
    for track in facility.tracks:
        camera = next(c.id for c in facility.cameras if c.views[0].track == track.id)
        frame = twin.frame(camera, midday)
        if frame is not None:
            path = out / f"{camera}.jpg"
            cv2.imwrite(str(path), frame)
            click.echo(f"      {track.id}: {camera} at {hour:02.0f}:00 -> {path}")
    click.echo("[3/4] cloud ingest and the facility state estimator")
    with _demo_database(url, db_url is None) as demo_url:
        _cloud(twin, demo_url, out)
        click.echo(
            "Edge services are not built yet; this demo will run them when they land. "
            "Meanwhile: 'locowatch sim serve' streams the twin's cameras over RTSP, "
            "'locowatch sim feed' plays a gateway against 'locowatch cloud run'."
        )
        if dashboard_port:
            click.echo("[4/4] dashboard")
            _dashboard(demo_url, out, dashboard_port)


@contextlib.contextmanager
def _demo_database(url: str, managed: bool) -> Iterator[str]:
    """A fresh database on the managed server (kept for a look afterwards), else ``url``."""
    if not managed:
        yield url
        return
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DROP DATABASE IF EXISTS locowatch_demo WITH (FORCE)")
        conn.execute("CREATE DATABASE locowatch_demo")
    info = psycopg.conninfo.conninfo_to_dict(url)
    yield psycopg.conninfo.make_conninfo("", **{**info, "dbname": "locowatch_demo"})


def _cloud(twin: Twin, url: str, out: Path) -> None:
    """Ingest the twin's day through a real ingest process; score and report it."""
    import yaml

    from cloud.cli import table
    from cloud.config import token_sha256
    from cloud.reports import ReportRange, run_report
    from cloud.schema import conninfo_url, migrate
    from sim.estimations import twin_estimations
    from sim.evaluation import evaluate, read_snapshots_from_db, snapshot_from_record
    from sim.gateway import SimGateway
    from sim.recording import write_facility
    from sim.streaming import free_port

    migrate(url)
    facility_file = out / "facility.yaml"
    write_facility(facility_file, twin.facility, "Twin depot (true poses), for the demo's ingest")
    token, port = secrets.token_urlsafe(24), free_port()
    gateway_id, facility_id = "gw-demo", twin.facility.facility.id
    config = {
        "version": 1, "listen": f"127.0.0.1:{port}", "metrics_port": None,
        "fse_metrics_port": None, "facilities": [str(facility_file)],
        "gateways": [{"id": gateway_id, "facility": facility_id,
                      "token_sha256": token_sha256(token)}],
    }  # fmt: skip
    (out / "cloud.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    with _ingest(out / "cloud.yaml", url, out / "ingest.log"):
        envelopes = list(twin_estimations(twin, flows=("prod", "dev")))
        gateway = SimGateway(f"127.0.0.1:{port}", gateway_id, facility_id, token, batch_size=2000)
        started = time.monotonic()
        report = gateway.send(gateway.number(envelopes))
        click.echo(
            f"      {report.stored} estimations stored and acked in "
            f"{time.monotonic() - started:.1f} s (log: {out / 'ingest.log'})"
        )
        day_start = twin.scenario.spec.start_time.timestamp()
        _wait_for_snapshots(url, day_start + twin.spec.scenario.duration_s - 2)
    estimates = list(read_snapshots_from_db(url, "prod", day_start, day_start + 86400))
    truth = [snapshot_from_record(twin.truth(s.time - day_start)) for s in estimates]
    scores = evaluate(truth, estimates, {t.id: t.length_m for t in twin.facility.tracks})
    click.echo(
        f"      prod flow vs ground truth: exact count {scores.count_exact:.1%} of "
        f"{scores.snapshots} snapshots, head/tail error median {scores.end_error_median_m:.2f} m, "
        f"{scores.id_switches} id switches"
    )
    day = datetime.fromtimestamp(day_start, UTC)
    where = ReportRange(facility_id, "prod", day, day + timedelta(days=1))
    columns, rows = run_report(url, "visits", where)
    click.echo("      visits (locowatch report visits):")
    for line in table(columns, rows).splitlines():
        click.echo(f"      {line}")
    shown = conninfo_url(url)
    click.echo(f"      try: locowatch report stays --from {day:%Y-%m-%d} --db '{shown}'")


def _dashboard(url: str, out: Path, port: int) -> None:
    """Serve the dashboard on the demo's database (read-only role) until Ctrl-C."""
    import urllib.request

    from cloud.schema import create_login_user

    reader = create_login_user(url, "locowatch_dashboard", "reader")
    log = out / "dashboard.log"
    command = [sys.executable, "-m", "locowatch", "dashboard", "--db", reader.url,
               "--facility", str(out / "facility.yaml"), "--port", str(port)]  # fmt: skip
    with log.open("wb") as sink:
        process = subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and process.poll() is None:
                with contextlib.suppress(OSError):
                    urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2)
                    break
                time.sleep(0.3)
            if process.poll() is not None:
                raise LocowatchError(f"the dashboard did not start; see {log}")
            click.echo(f"      dashboard: http://127.0.0.1:{port}/  (Ctrl-C stops the demo)")
            process.wait()
        except KeyboardInterrupt:
            click.echo("      stopping the dashboard")
        finally:
            process.terminate()
            process.wait(timeout=15)


@contextlib.contextmanager
def _ingest(config: Path, url: str, log: Path) -> Iterator[None]:
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "locowatch",
                "cloud",
                "run",
                "--config",
                str(config),
                "--db",
                url,
            ],
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
        try:
            yield
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=30)


def _wait_for_snapshots(url: str, until: float, timeout_s: float = 120.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with psycopg.connect(url) as conn:
            row = conn.execute(
                "SELECT extract(epoch FROM max(time)) FROM state_snapshots"
            ).fetchone()
        if row and row[0] is not None and float(row[0]) >= until:
            return
        time.sleep(0.5)
    raise LocowatchError("the facility state estimator did not catch up; see ingest.log")
