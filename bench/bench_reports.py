"""Analysts' reports and views over one day, on databases of 7, 30 and 90 days; disk per day.

The databases hold the twin's 4-track, 14-station depot with three flows (prod, dev,
alt): stays of 2-30 h at every station with gaps of 0.5-6 h by a fleet of 60 (the
synthetic history of bench_dashboard.py, one seed per flow), as the state writer leaves
it (``cloud/history.py``): visits, stays and spans, events, hourly roll-ups, the 1 Hz
snapshots of the last day. The roll-ups are computed here from the same per-second
history the snapshots would give (numpy), because writing 90 days x 3 flows of 1 Hz
snapshots to roll them up would take hours.

The baseline is the layout before it (the commit named by ``--baseline``: its migrations
0001-0008, its views and its report SQL, read from git), filled with the same visits at
1 Hz: a snapshot and a row per locomotive per second. It is filled for ``--baseline-days``
only (filling it takes about 55 s a day for the three flows).

Measured: every report of ``locowatch report`` and every documented view filtered to one
day (the second-to-last), median of ``--repeat`` runs; the disk each layout takes per
depot-day (tables and indexes).

Writes bench/results/reports.json.

    .venv/bin/python bench/bench_reports.py [--days 7,30,90] [--baseline-days 7] [--repeat 5]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import subprocess
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
from psycopg import sql

from cloud.reports import REPORTS, ReportRange, report_rows
from cloud.schema import migrate
from locowatch.db.location import running_server_url
from locowatch.db.scratch import scratch_database
from sim.fleet import SERIES
from sim.twin import Twin

RESULTS = Path(__file__).resolve().parent / "results"
REPO = Path(__file__).resolve().parents[1]
FLOWS = ("prod", "dev", "alt")
END = datetime(2026, 11, 1, tzinfo=UTC)
TZ = "Europe/Moscow"
VISITS_BY_TIMES = (
    "SELECT * FROM visits WHERE facility_id = %(f)s AND flow = %(flow)s "
    "AND arrived_at < %(to)s AND coalesce(departed_at, 'infinity') >= %(from)s"
)
STAYS_BY_TIMES = (
    "SELECT * FROM station_stays WHERE facility_id = %(f)s AND flow = %(flow)s "
    "AND from_time < %(to)s AND to_time >= %(from)s"
)
VIEWS = {  # each documented view, one day of it, filtered as docs/reports.md says
    "visits": "SELECT * FROM visits WHERE facility_id = %(f)s AND flow = %(flow)s "
    "AND during && tstzrange(%(from)s, %(to)s)",
    "visits (from/to filter)": VISITS_BY_TIMES,
    "station_stays": "SELECT * FROM station_stays WHERE facility_id = %(f)s AND flow = %(flow)s "
    "AND during && tstzrange(%(from)s, %(to)s)",
    "station_stays (from/to filter)": STAYS_BY_TIMES,
    "station_occupancy_hourly": "SELECT * FROM station_occupancy_hourly WHERE facility_id = %(f)s "
    "AND flow = %(flow)s AND bucket >= %(from)s AND bucket < %(to)s",
    "locomotive_counts_hourly": "SELECT * FROM locomotive_counts_hourly WHERE facility_id = %(f)s "
    "AND flow = %(flow)s AND bucket >= %(from)s AND bucket < %(to)s",
    "model_mix_daily": "SELECT * FROM model_mix_daily WHERE facility_id = %(f)s "
    "AND flow = %(flow)s AND day >= %(from)s AND day < %(to)s",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", default="7,30,90", help="database sizes, in days")
    parser.add_argument("--baseline-days", default="7", help="sizes for the old layout")
    parser.add_argument("--baseline", default="1666777", help="commit of the old layout")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument(
        "--no-migrate", dest="migrate", action="store_false",
        help="skip migrating the old-layout database to the history layout",
    )  # fmt: skip
    parser.add_argument("--db", help="server URL (default: the managed one)")
    args = parser.parse_args()
    server = running_server_url(args.db)
    facility = Twin().facility
    results: dict[str, Any] = {"flows": FLOWS, "baseline": args.baseline, "runs": []}
    for days in [int(d) for d in args.days.split(",") if d]:
        with scratch_database(server, "locowatch_bench_reports") as url:
            migrate(url)
            began = time.monotonic()
            fill_history(url, facility, days)
            print(f"{days} days filled in {time.monotonic() - began:.0f} s", flush=True)
            run = measure(url, facility, "history", days, args.repeat, report_sql=None)
            results["runs"].append(run)
            save(results)
    for days in [int(d) for d in args.baseline_days.split(",") if d]:
        with scratch_database(server, "locowatch_bench_reports_old") as url:
            migrate_baseline(url, args.baseline)
            began = time.monotonic()
            fill_per_second(url, facility, days)
            print(f"{days} days (old layout) filled in {time.monotonic() - began:.0f} s",
                  flush=True)  # fmt: skip
            old_sql = {n: git_show(args.baseline, f"cloud/reports/{n}.sql") for n in REPORTS}
            run = measure(url, facility, "per-second", days, args.repeat, report_sql=old_sql)
            results["runs"].append(run)
            save(results)
            if args.migrate:
                results["runs"].append(migrate_measure(url, facility, days, args.repeat, run))
                save(results)
    print((RESULTS / "reports.json").read_text(encoding="utf-8"))


def save(results: dict[str, Any]) -> None:
    RESULTS.mkdir(exist_ok=True)
    kept = {
        **results,
        "runs": [{k: v for k, v in r.items() if k != "answers"} for r in results["runs"]],
    }
    (RESULTS / "reports.json").write_text(json.dumps(kept, indent=2), encoding="utf-8")


def git_show(commit: str, path: str) -> str:
    return subprocess.run(
        ["git", "show", f"{commit}:{path}"], cwd=REPO, check=True, capture_output=True, text=True
    ).stdout


# -- the synthetic history, as the state writer leaves it ----------------------------------


def synthetic_visits(
    facility: Any, start: datetime, end: datetime, seed: int = 7
) -> list[tuple[Any, ...]]:
    """Stays of 2-30 h at every station with gaps of 0.5-6 h, by a fleet of 60:
    (loco_id, track, station, tail, head, series, plate, arrive, depart)."""
    rng = random.Random(seed)
    fleet = [(f"loco-{i:03d}", SERIES[i % len(SERIES)]) for i in range(60)]
    rows: list[tuple[Any, ...]] = []
    for station in facility.stations:
        t = start + timedelta(hours=rng.uniform(0, 6))
        while t < end:
            loco_id, series = rng.choice(fleet)
            length = min(series.length_m, station.end_m - station.start_m - 1)
            tail = station.start_m + rng.uniform(0, station.end_m - station.start_m - length)
            depart = min(end, t + timedelta(hours=rng.uniform(2, 30)))
            plate = f"{series.name}-{int(loco_id[-3:]):04d}"
            rows.append((f"{loco_id}-{len(rows)}", station.track, station.id, tail,
                         tail + length, series.name, plate, t, depart))  # fmt: skip
            t = depart + timedelta(hours=rng.uniform(0.5, 6))
    return rows


def flow_visits(facility: Any, flow: str, days: int) -> list[tuple[Any, ...]]:
    """(loco_id, track, station, tail, head, series, plate, arrive, depart) of one flow."""
    start = END - timedelta(days=days)
    rows = synthetic_visits(facility, start, END, seed=7 + FLOWS.index(flow))
    return [(f"{flow}-{r[0]}", *r[1:]) for r in rows]


def fill_history(
    url: str, facility: Any, days: int, flows: tuple[str, ...] = FLOWS, snapshot_days: int = 1
) -> None:
    fid = facility.facility.id
    with psycopg.connect(url) as conn, conn.cursor() as cur:
        for flow in flows:
            stays = flow_visits(facility, flow, days)
            _copy(cur, "locomotive_visits", (
                (fid, flow, loco, track, arrive, _open(depart), series, plate)
                for loco, track, _, _, _, series, plate, arrive, depart in stays))  # fmt: skip
            _copy(cur, "locomotive_stays", (
                (fid, flow, loco, station, track, arrive, _open(depart), series, plate)
                for loco, track, station, _, _, series, plate, arrive, depart in stays
            ))  # fmt: skip
            _copy(cur, "locomotive_spans", (
                (fid, flow, loco, track, tail, head, station, series, plate, False, arrive,
                 _open(depart))
                for loco, track, station, tail, head, series, plate, arrive, depart in stays
            ))  # fmt: skip
            _copy(cur, "locomotive_events", _events(fid, flow, stays), EVENT_COLUMNS)
            counts, stations = _hours(facility, stays, days)
            _copy(cur, "count_hours_closed", ((fid, flow, *row) for row in counts))
            _copy(cur, "station_hours_closed", ((fid, flow, *row) for row in stations))
            cur.execute(
                "INSERT INTO state_progress VALUES (%s, %s, %s, %s)",
                (fid, flow, END - timedelta(seconds=1), END),
            )
            # the 1 Hz snapshots of the last days (what the live view and eval read)
            for back in range(snapshot_days, 0, -1):
                day = END - timedelta(days=back)
                _snapshots_from(cur, fid, flow, "locomotive_spans", "from_time", "to_time",
                                day, day + timedelta(days=1))  # fmt: skip
        conn.commit()
        conn.execute("ANALYZE")


def _open(depart: datetime) -> datetime | None:
    return None if depart >= END else depart


EVENT_COLUMNS = (
    "time, facility_id, flow, loco_id, kind, track_id, station_id, tail_m, head_m, series, plate"
)


def _events(fid: str, flow: str, stays: list[tuple[Any, ...]]) -> Iterator[tuple[Any, ...]]:
    for loco, track, station, tail, head, series, plate, arrive, depart in stays:
        common = (fid, flow, loco)
        place = (track, station, tail, head)
        yield (arrive, *common, "arrived", *place, None, None)
        yield (arrive + timedelta(minutes=5), *common, "identified", *place, series, plate)
        if depart < END:
            yield (depart, *common, "departed", *place, series, plate)


def _hours(
    facility: Any, stays: list[tuple[Any, ...]], days: int
) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """Hour rows as the writer rolls them up from 1 Hz snapshots of these stays."""
    start = END - timedelta(days=days)
    seconds = days * 86_400
    count = np.zeros(seconds, dtype=np.int32)
    by_station: dict[str, list[tuple[int, int, str, str]]] = defaultdict(list)
    for loco, _, station, _, _, _, plate, arrive, depart in stays:
        a = int((arrive - start).total_seconds())
        b = int((min(depart, END) - start).total_seconds())
        count[a:b] += 1
        by_station[station].append((a, b, loco, plate))
    hourly = count.reshape(-1, 3600)
    counts = [
        (start + timedelta(hours=h), 3600, int(row.sum()), int(row.min()), int(row.max()))
        for h, row in enumerate(hourly)
    ]
    stations = []
    for station, spells in by_station.items():
        occupied = np.zeros(seconds, dtype=bool)
        who: dict[int, dict[str, str | None]] = defaultdict(dict)
        for a, b, loco, plate in spells:
            occupied[a:b] = True
            for h in range(a // 3600, (b - 1) // 3600 + 1):
                # the plate is read 5 minutes after arrival (the 'identified' event)
                read = a + 300 < (h + 1) * 3600
                who[h][loco] = plate if read else None
        per_hour = occupied.reshape(-1, 3600).sum(axis=1)
        for h, locos in sorted(who.items()):
            ids = sorted(locos)
            stations.append((start + timedelta(hours=h), station, int(per_hour[h]), ids,
                             [locos[i] for i in ids], 3600))  # fmt: skip
    return counts, stations


def _copy(cur: psycopg.Cursor[Any], table: str, rows: Any, columns: str | None = None) -> None:
    target = f"{table} ({columns})" if columns else table
    with cur.copy(f"COPY {target} FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)


def _snapshots_from(
    cur: psycopg.Cursor[Any], fid: str, flow: str, table: str, start_col: str, end_col: str,
    day: datetime, end: datetime,
) -> None:  # fmt: skip
    """1 Hz snapshots of [day, end) from per-locomotive rows with a time range."""
    cur.execute(
        "INSERT INTO state_snapshots (time, facility_id, flow, written_at, locomotive_count, "
        "locomotives) "
        "SELECT t, %(fid)s, %(flow)s, t, count(s.loco_id), coalesce(jsonb_agg(jsonb_build_object("
        "  'id', s.loco_id, 'track', s.track_id, 'tail_m', s.tail_m, 'head_m', s.head_m, "
        "  'station', s.station_id, 'series', s.series, 'series_confidence', 0.97, "
        "  'plate', s.plate, 'plate_confidence', 0.9, 'stale', false, "
        f"  'since', extract(epoch FROM s.{start_col}), 'speed_mps', 0, "
        "  'attributes', '{}'::jsonb, 'range_m', NULL)) "
        "  FILTER (WHERE s.loco_id IS NOT NULL), '[]') "
        "FROM generate_series(%(from)s, %(to)s - INTERVAL '1 s', INTERVAL '1 s') t "
        f"LEFT JOIN {table} s ON s.facility_id = %(fid)s AND s.flow = %(flow)s "
        f"  AND s.{start_col} <= t AND coalesce(s.{end_col}, 'infinity') > t "
        "GROUP BY t",
        {"fid": fid, "flow": flow, "from": day, "to": end},
    )


# -- the baseline: the layout before, a row per locomotive per second -----------------------


def migrate_baseline(url: str, commit: str) -> None:
    """Migrations 0001-0008 as they were at ``commit``."""
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        listing = subprocess.run(
            ["git", "ls-tree", "--name-only", f"{commit}:cloud/schema/migrations"],
            cwd=REPO, check=True, capture_output=True, text=True,
        ).stdout.split()  # fmt: skip
        for name in listing:
            text = git_show(commit, f"cloud/schema/migrations/{name}")
            (Path(folder) / name).write_text(text, encoding="utf-8")
        migrate(url, folder=Path(folder))


def fill_per_second(url: str, facility: Any, days: int) -> None:
    fid = facility.facility.id
    with psycopg.connect(url, autocommit=True) as conn, conn.cursor() as cur:
        cur.execute(
            "CREATE TABLE bench_visits (loco_id text, track text, station text, tail real, "
            "head real, series text, plate text, arrive timestamptz, depart timestamptz, "
            "flow text)"
        )
        for flow in FLOWS:
            # whole seconds, as the state writer stamps states and snapshots alike (a state
            # at 10:00:00.45 joins no snapshot of the second)
            rows = [(*r[:7], r[7].replace(microsecond=0), r[8].replace(microsecond=0))
                    for r in flow_visits(facility, flow, days)]  # fmt: skip
            _copy(cur, "bench_visits", ((*r, flow) for r in rows))
            _copy(cur, "locomotive_events", _events(fid, flow, rows), EVENT_COLUMNS)
        day = END - timedelta(days=days)
        while day < END:
            began = time.monotonic()
            for flow in FLOWS:
                window = {"fid": fid, "flow": flow, "from": day, "to": day + timedelta(days=1)}
                cur.execute(
                    "INSERT INTO locomotive_states SELECT t, %(fid)s, %(flow)s, loco_id, track, "
                    "tail, head, station, series, CASE WHEN t >= arrive + INTERVAL '5 min' "
                    "THEN plate END, false FROM bench_visits, "
                    "generate_series(greatest(arrive, %(from)s), least(depart, %(to)s) - "
                    "INTERVAL '1 s', INTERVAL '1 s') t "
                    "WHERE flow = %(flow)s AND arrive < %(to)s AND depart > %(from)s",
                    window,
                )
                # fresh statistics, or the join below may be planned as a loop over the
                # day's rows per second (it once ran 20 minutes instead of 30 s)
                cur.execute("ANALYZE locomotive_states")
                cur.execute(
                    "INSERT INTO state_snapshots (time, facility_id, flow, written_at, "
                    "locomotive_count, locomotives) "
                    "SELECT t, %(fid)s, %(flow)s, t, count(s.loco_id), "
                    "coalesce(jsonb_agg(jsonb_build_object('id', s.loco_id, 'track', s.track_id, "
                    "'tail_m', s.tail_m, 'head_m', s.head_m, 'station', s.station_id, "
                    "'series', s.series, 'series_confidence', 0.97, 'plate', s.plate, "
                    "'plate_confidence', 0.9, 'stale', false, 'since', 0, 'speed_mps', 0, "
                    "'attributes', '{}'::jsonb, 'range_m', NULL)) "
                    "FILTER (WHERE s.loco_id IS NOT NULL), '[]') "
                    "FROM generate_series(%(from)s, %(to)s - INTERVAL '1 s', INTERVAL '1 s') t "
                    "LEFT JOIN locomotive_states s ON s.time = t AND s.facility_id = %(fid)s "
                    "AND s.flow = %(flow)s AND s.time >= %(from)s AND s.time < %(to)s GROUP BY t",
                    window,
                )
            print(f"  {day:%Y-%m-%d} filled in {time.monotonic() - began:.1f} s", flush=True)
            day += timedelta(days=1)
        cur.execute("DROP TABLE bench_visits")
        cur.execute("ANALYZE")


# -- measures -------------------------------------------------------------------------------


def measure(
    url: str, facility: Any, layout: str, days: int, repeat: int,
    report_sql: dict[str, str] | None,
) -> dict[str, Any]:  # fmt: skip
    fid = facility.facility.id
    day = END - timedelta(days=2)
    where = ReportRange(fid, "prod", day, day + timedelta(days=1), "1 hour", TZ)
    run: dict[str, Any] = {
        "layout": layout, "days": days, "reports_s": {}, "views_s": {}, "answers": {}
    }  # fmt: skip
    with psycopg.connect(url, autocommit=True) as conn:
        for name in REPORTS:
            call = _report_call(conn, name, where, report_sql)
            run["reports_s"][name] = timed(call, repeat)
            run["answers"][name] = [list(map(str, row)) for row in call()]
            print(f"  {layout} {days} d: report {name} {run['reports_s'][name]:.3f} s", flush=True)
        params = {"f": fid, "flow": "prod", "from": day, "to": day + timedelta(days=1)}
        for name, query in VIEWS.items():
            if report_sql is not None and "during" in query:
                continue  # the old views have no `during`: their from/to filter is measured
            run["views_s"][name] = timed(partial(_fetch, conn, query, params), repeat)
            print(f"  {layout} {days} d: view {name} {run['views_s'][name]:.3f} s", flush=True)
        run["disk"] = disk(conn, layout, days)
    return run


def _report_call(
    conn: psycopg.Connection[Any], name: str, where: ReportRange,
    report_sql: dict[str, str] | None,
) -> Callable[[], list[tuple[Any, ...]]]:  # fmt: skip
    """The report's rows: today's `locowatch report`, or the old layout's SQL text."""
    if report_sql is None:
        return lambda: report_rows(conn, name, where)[1]
    conn.execute(sql.SQL("SET TIME ZONE {}").format(sql.Literal(where.tz)))  # as report_rows
    return partial(_fetch, conn, report_sql[name], where.params())


def _fetch(conn: psycopg.Connection[Any], query: str, params: Any) -> list[tuple[Any, ...]]:
    return conn.execute(query, params).fetchall()


def migrate_measure(
    url: str, facility: Any, days: int, repeat: int, before: dict[str, Any]
) -> dict[str, Any]:
    """Migrates the old-layout database to the head and measures it again: how long the
    conversion took, and whether every report gives the answers it gave before."""
    began = time.monotonic()
    migrate(url)
    seconds = time.monotonic() - began
    print(f"{days} days (old layout) migrated in {seconds:.0f} s", flush=True)
    run = measure(url, facility, "migrated", days, repeat, report_sql=None)
    run["migrate_s"] = seconds
    run["same_answers"] = {
        name: run["answers"][name] == before["answers"][name] for name in REPORTS
    }
    print(f"  same answers as before the migration: {run['same_answers']}", flush=True)
    return run


def timed(call: Callable[[], object], repeat: int) -> float:
    call()  # warm
    seconds = []
    for _ in range(repeat):
        began = time.perf_counter()
        call()
        seconds.append(time.perf_counter() - began)
    return statistics.median(seconds)


STATE_TABLES = {
    "per-second": ("state_snapshots", "locomotive_states", "locomotive_events"),
    "history": (
        "state_snapshots", "locomotive_events", "locomotive_visits", "locomotive_stays",
        "locomotive_spans", "count_hours_closed", "station_hours_closed", "state_progress",
    ),
}  # fmt: skip
STATE_TABLES["migrated"] = STATE_TABLES["history"]


def disk(conn: psycopg.Connection[Any], layout: str, days: int) -> dict[str, Any]:
    """Bytes of each state table (with indexes), and per depot-day per flow."""
    sizes = {}
    for table in STATE_TABLES[layout]:
        hyper = conn.execute(
            "SELECT 1 FROM timescaledb_information.hypertables WHERE hypertable_name = %s",
            (table,),
        ).fetchone()
        query = "SELECT hypertable_size(%s)" if hyper else "SELECT pg_total_relation_size(%s)"
        sizes[table] = int(conn.execute(query, (table,)).fetchone()[0] or 0)  # type: ignore[index]
    # the history layout holds one day of snapshots; the per-second one, every day's
    snapshot_days = 1 if layout == "history" else days  # migrated: all, until retention
    per_day = {
        t: size / (snapshot_days if t == "state_snapshots" else days) / len(FLOWS)
        for t, size in sizes.items()
    }
    return {"bytes": sizes, "per_flow_day": per_day}


if __name__ == "__main__":
    main()
