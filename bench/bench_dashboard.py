"""Dashboard callbacks against 30 days of 1 Hz state of the twin's 4-track depot.

The database holds what a month of ingest leaves for one flow: a state snapshot every
second, a row per locomotive per second (14 stations, mostly occupied), the visit events
and camera health of 34 cameras every 10 s. It is generated in SQL (``generate_series``
over synthetic visits, a day at a time), not through the FSE, which would take hours.

Measured in-process on the dashboard's own code (``DashboardApp``), with the plotly JSON
the browser would receive:
- the live view's callback when new rows arrived (a rebuild: every live query plus the
  figures), against the same callback when nothing changed (the version probe only);
- the station timeline and visits of one day (``history``), against the analyst's
  ``station_stays`` view filtered to that day (the baseline: the view numbers every state
  ever written before the filter applies);
- on screen: a real ``locowatch dashboard`` process and headless Chromium; a new
  snapshot row is committed every 1.5 s and the time until the page shows it is taken,
  for the websocket push against the interval fallback.

Writes bench/results/dashboard.json.

    .venv/bin/python bench/bench_dashboard.py [--days 30] [--repeat 20] [--rows 20] [--keep NAME]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import plotly.io
import psycopg

from bench.bench_reports import END, fill_history
from cloud.schema import migrate
from dashboard.app import DashboardApp, DashboardSettings
from dashboard.live import ViewKey
from locowatch.db.location import running_server_url
from locowatch.db.scratch import scratch_database
from sim.twin import Twin

RESULTS = Path(__file__).resolve().parent / "results"
FLOW = "prod"
TABLES = ("state_snapshots", "locomotive_spans", "locomotive_events", "camera_health")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=30, help="days of 1 Hz state")
    parser.add_argument("--repeat", type=int, default=20, help="timed calls per measure")
    parser.add_argument("--rows", type=int, default=20, help="new rows timed on screen")
    parser.add_argument("--db", help="server URL (default: the managed one)")
    parser.add_argument(
        "--keep", metavar="NAME", help="fill database NAME once and keep it for later runs"
    )
    args = parser.parse_args()
    server_url = running_server_url(args.db)
    facility = Twin().facility
    end = END
    start = end - timedelta(days=args.days)
    database = (
        kept_database(server_url, args.keep) if args.keep
        else scratch_database(server_url, "locowatch_bench_dash")
    )  # fmt: skip
    with database as url:
        migrate(url)
        counts = table_counts(url)
        if counts["state_snapshots"] != args.days * 86400:  # a kept database is filled once
            counts = fill(url, facility, start, end)
        print(f"database: {counts}", flush=True)
        results: dict[str, Any] = {"days": args.days, "rows": counts}
        app = DashboardApp(DashboardSettings(db_url=url, facilities=[facility]))
        app.reader.open(wait=True)
        results.update(measure(app, facility, end, args.repeat))
        results["stays_view_baseline_s"] = stays_view(url, facility.facility.id, end)
        results["timeline_speedup"] = (
            results["stays_view_baseline_s"] / results["timeline_s"]["median"]
        )
        app.reader.close()
        save(results)
        for transport in ("websocket", "interval"):
            results[f"screen_{transport}_s"] = on_screen(url, facility, transport, args.rows)
            save(results)
    print(json.dumps(results, indent=2))


def save(results: dict[str, Any]) -> None:
    """Write what is measured so far (a failure later keeps it)."""
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "dashboard.json").write_text(json.dumps(results, indent=2), encoding="utf-8")


@contextmanager
def kept_database(server_url: str, name: str) -> Iterator[str]:
    """A database that outlives the run, created when missing (``--keep NAME``)."""
    with psycopg.connect(server_url, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            conn.execute(psycopg.sql.SQL("CREATE DATABASE {}").format(psycopg.sql.Identifier(name)))
    info = psycopg.conninfo.conninfo_to_dict(server_url)
    yield psycopg.conninfo.make_conninfo("", **{**info, "dbname": name})


def table_counts(url: str) -> dict[str, int]:
    with psycopg.connect(url) as conn:
        return {
            table: int(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])  # type: ignore[index]
            for table in TABLES
        }


# -- data ---------------------------------------------------------------------------------


def fill(url: str, facility: Any, start: datetime, end: datetime) -> dict[str, int]:
    """The synthetic history as the state writer leaves it (bench_reports.fill_history):
    a month of facts and hourly roll-ups, every day's 1 Hz snapshots; camera health."""
    days = round((end - start).total_seconds() / 86_400)
    fill_history(url, facility, days, flows=(FLOW,), snapshot_days=days)
    with psycopg.connect(url, autocommit=True) as conn:
        cameras = [c.id for c in facility.cameras]
        day = start
        while day < end:
            conn.execute(
                "INSERT INTO camera_health SELECT t, %(fid)s, 'gw-bench', 0, c, 'streaming', "
                "2.0, t, 0, 0, '' FROM unnest(%(cameras)s::text[]) c, "
                "generate_series(%(from)s, %(to)s - INTERVAL '1 s', INTERVAL '10 s') t",
                {"fid": facility.facility.id, "cameras": cameras, "from": day,
                 "to": day + timedelta(days=1)},
            )  # fmt: skip
            day += timedelta(days=1)
        conn.execute("ANALYZE")
    return table_counts(url)


# -- measures -----------------------------------------------------------------------------


def timed(call: Callable[[], object], repeat: int) -> dict[str, float]:
    seconds = []
    for _ in range(repeat):
        began = time.perf_counter()
        call()
        seconds.append(time.perf_counter() - began)
    return summary(seconds)


def summary(seconds: list[float]) -> dict[str, float]:
    seconds = sorted(seconds)
    return {
        "median": statistics.median(seconds),
        "p95": seconds[min(len(seconds) - 1, round(0.95 * (len(seconds) - 1)))],
        "max": seconds[-1],
    }


def measure(app: DashboardApp, facility: Any, end: datetime, repeat: int) -> dict[str, Any]:
    key = ViewKey(facility.facility.id, FLOW)

    def rebuild() -> None:  # what the callback does after new rows: all queries, figures, JSON
        version = app.reader.version(key.facility, key.flows)
        plotly.io.json.to_json_plotly(app.feed.build(key, version))

    def unchanged() -> None:  # what it does on a tick without new rows
        app.feed.current(key)

    day = (end - timedelta(days=2)).date().isoformat()

    def timeline() -> None:
        figure, rows = app.history(key.facility, FLOW, day, day, None)
        plotly.io.json.to_json_plotly({"figure": figure, "rows": rows})

    app.feed.current(key)  # warm the pool and the colour map
    results: dict[str, Any] = {
        "live_rebuild_s": timed(rebuild, repeat),
        "live_unchanged_s": timed(unchanged, repeat),
        "timeline_s": timed(timeline, max(3, repeat // 4)),
    }
    results["live_rebuild_vs_unchanged"] = (
        results["live_rebuild_s"]["median"] / results["live_unchanged_s"]["median"]
    )
    return results


def stays_view(url: str, fid: str, end: datetime) -> float:
    """The baseline: the same day's stays through the station_stays view."""
    day = end - timedelta(days=2)
    with psycopg.connect(url) as conn:
        began = time.perf_counter()
        conn.execute(
            "SELECT * FROM station_stays WHERE facility_id = %s AND flow = %s "
            "AND from_time < %s AND to_time >= %s",
            (fid, FLOW, day + timedelta(days=1), day),
        ).fetchall()
        return time.perf_counter() - began


def on_screen(url: str, facility: Any, transport: str, rows: int) -> dict[str, float]:
    """Seconds from the commit of a new snapshot to the page showing its time."""
    import subprocess
    import sys
    import tempfile
    import urllib.request
    from zoneinfo import ZoneInfo

    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By

    from sim.recording import write_facility
    from sim.streaming import free_port

    tz = ZoneInfo(facility.facility.timezone)
    with tempfile.TemporaryDirectory() as folder:
        facility_file = Path(folder) / "facility.yaml"
        write_facility(facility_file, facility, "bench")
        port = free_port()
        server = subprocess.Popen(
            [sys.executable, "-m", "locowatch", "dashboard", "--db", url, "--facility",
             str(facility_file), "--port", str(port), "--transport", transport],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        options = webdriver.ChromeOptions()
        options.binary_location = "/usr/bin/chromium"
        for argument in ("--headless=new", "--no-sandbox", "--disable-gpu"):
            options.add_argument(argument)
        browser = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
        try:
            for _ in range(300):
                try:
                    urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2)
                    break
                except OSError:
                    time.sleep(0.2)
            browser.get(f"http://127.0.0.1:{port}/")
            for _ in range(600):  # the page is up and shows the newest state
                shown_now = browser.find_elements(By.ID, "as-of")
                if shown_now and "state at" in shown_now[0].text:
                    break
                time.sleep(0.1)
            seconds = []
            with psycopg.connect(url, autocommit=True) as conn:
                for _ in range(rows):
                    time.sleep(1.5)
                    row = conn.execute(
                        "INSERT INTO state_snapshots (time, facility_id, flow, written_at, "
                        "locomotive_count, locomotives) SELECT time + INTERVAL '1 s', "
                        "facility_id, flow, now(), locomotive_count, locomotives "
                        "FROM state_snapshots WHERE flow = %s ORDER BY time DESC LIMIT 1 "
                        "RETURNING time",
                        (FLOW,),
                    ).fetchone()
                    committed = time.perf_counter()
                    shown = f"{row[0].astimezone(tz):%Y-%m-%d %H:%M:%S}"  # type: ignore[index]
                    while shown not in browser.find_element(By.ID, "as-of").text:
                        if time.perf_counter() - committed > 30:
                            raise RuntimeError(f"{transport}: the page never showed {shown}")
                        time.sleep(0.02)
                    seconds.append(time.perf_counter() - committed)
            print(f"  on screen ({transport}): {statistics.median(seconds):.2f} s median",
                  flush=True)  # fmt: skip
            return summary(seconds)
        finally:
            browser.quit()
            server.terminate()
            server.wait(timeout=30)


if __name__ == "__main__":
    main()
