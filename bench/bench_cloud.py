"""Cloud ingest and FSE throughput on this machine, against baselines run side by side.

Ingest: the twin's day (prod and dev flows, repeated over ``--days`` days) streamed by
simulated gateways through a real ``locowatch cloud run`` into TimescaleDB, against
the same rows written (a) with one INSERT per row and (b) with bare binary COPY in
batches of the same size: the ceiling on this machine. Ingest runs twice: with
``--gateways`` gateways streaming at once, each the gateway of a depot of its own (a
share of the days each), and with one gateway sending everything (a backlog replay).
Bare COPY runs with one connection and with as many as there are gateways. Each
method gets a fresh database. The gateway clients run on the same 2 cores as ingest,
its FSE process and PostgreSQL.

FSE: position estimations fused per second of capture time, as recorded (34 cameras at
2 fps) and dense (the same cameras at 15 fps), for one flow.

Writes bench/results/cloud.json.

    .venv/bin/python bench/bench_cloud.py [--days 3] [--gateways 3] [--batch 2000]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import psycopg
import yaml
from grpc_health.v1 import health_pb2, health_pb2_grpc

from cloud.config import token_sha256
from cloud.fse import FacilityStateEstimator
from cloud.fse_process import HEALTH_NAME as FSE_HEALTH_NAME
from cloud.records import AttributeRecord, HealthRecord, PositionRecord, Record, Rejected
from cloud.schema import migrate
from cloud.store import at
from cloud.validation import FacilityCatalog, Validator
from locowatch.db.location import running_server_url
from locowatch.db.scratch import scratch_database
from locowatch.v1 import uplink_pb2
from sim.estimations import capture_seconds, capture_stamp, twin_estimations
from sim.gateway import SimGateway
from sim.recording import write_facility
from sim.scenario import ScenarioSpec, recent_start
from sim.streaming import free_port
from sim.twin import Twin, TwinSpec

RESULTS = Path(__file__).resolve().parent / "results"
REPO = Path(__file__).resolve().parents[1]
TOKEN = "bench-token-0123456789"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=3, help="copies of the twin's day")
    parser.add_argument("--batch", type=int, default=2000, help="envelopes per batch")
    parser.add_argument("--insert-rows", type=int, default=20000, help="rows for INSERT")
    parser.add_argument(
        "--gateways", type=int, default=3, help="gateways (depots) streaming at once"
    )
    parser.add_argument("--db", help="server URL (default: the managed one)")
    args = parser.parse_args()
    server_url = running_server_url(args.db)

    # the copies of the day end by now: none is refused as future or is past retention
    start = recent_start(span_s=args.days * 86_400)
    twin = Twin(TwinSpec(scenario=ScenarioSpec(start_time=start)))
    print("generating the twin's estimations ...", flush=True)
    envelopes = _days(twin, args.days)
    records = _validated(twin, envelopes)
    print(f"{len(envelopes)} envelopes ({args.days} days x 2 flows)", flush=True)

    results: dict[str, Any] = {"envelopes": len(envelopes), "batch": args.batch}
    with _database(server_url) as url:
        results["insert_rows_per_s"] = _per_row_insert(url, records[: args.insert_rows])
    with _database(server_url) as url:
        results["copy_rows_per_s"] = _bare_copy(url, records, args.batch)
    with _database(server_url) as url:
        results["copy_parallel_rows_per_s"] = _bare_copy(url, records, args.batch, args.gateways)
    with _database(server_url) as url:
        results["ingest"] = _through_ingest(twin, url, envelopes, args.batch, args.gateways)
    with _database(server_url) as url:  # the same rows from one gateway: a backlog replay
        results["ingest_one_gateway"] = _through_ingest(twin, url, envelopes, args.batch)
    results["fse"] = {
        "recorded_2fps": _fse(twin, fps=2.0, seconds=600),
        "dense_15fps": _fse(twin, fps=15.0, seconds=120),
    }
    _report(results)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "cloud.json").write_text(json.dumps(results, indent=2))


def _days(twin: Twin, days: int) -> list[uplink_pb2.Envelope]:
    day = list(twin_estimations(twin, flows=("prod", "dev")))
    out: list[uplink_pb2.Envelope] = []
    for d in range(days):
        for envelope in day:
            copy = uplink_pb2.Envelope()
            copy.CopyFrom(envelope)
            stamp = capture_stamp(copy)
            stamp.FromDatetime(stamp.ToDatetime() + timedelta(days=d))
            copy.seq = len(out) + 1
            out.append(copy)
    return out


def _validated(twin: Twin, envelopes: list[uplink_pb2.Envelope]) -> list[Record]:
    validator = Validator(FacilityCatalog.from_config(twin.facility), "gw-bench")
    checked = [validator.check(e, now=float("inf")) for e in envelopes]
    return [r for r in checked if not isinstance(r, Rejected)]


@contextmanager
def _database(server_url: str) -> Iterator[str]:
    with scratch_database(server_url, "locowatch_bench") as url:
        migrate(url)
        yield url


def _per_row_insert(url: str, records: list[Record]) -> float:
    """The naive writer: one INSERT statement per row, a commit per 2000 rows."""
    start = time.perf_counter()
    with psycopg.connect(url) as conn:
        for index, r in enumerate(records):
            _insert(conn, r)
            if index % 2000 == 1999:
                conn.commit()
    rate = len(records) / (time.perf_counter() - start)
    print(f"per-row INSERT: {rate:,.0f} rows/s ({len(records)} rows)", flush=True)
    return rate


def _insert(conn: psycopg.Connection[tuple[object, ...]], r: Record) -> None:
    o = r.origin
    if isinstance(r, PositionRecord):
        iv = r.intervals
        conn.execute(
            "INSERT INTO position_estimations VALUES "
            "(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            (at(r.time), o.facility_id, o.gateway_id, o.seq, r.flow, r.camera_id, r.track_id,
             r.covered_start_m, r.covered_end_m, r.confidence, [i.start_m for i in iv],
             [i.end_m for i in iv], [i.start_real for i in iv], [i.end_real for i in iv],
             [i.confidence for i in iv], r.model_version, r.engine),
        )  # fmt: skip
    elif isinstance(r, AttributeRecord):
        conn.execute(
            "INSERT INTO attribute_estimations VALUES "
            "(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s::text[], %s::real[], %s, %s)",
            (at(r.time), o.facility_id, o.gateway_id, o.seq, r.flow, r.camera_id, r.name,
             r.value, r.confidence, r.track_id, r.position_m, [], [], r.model_version, r.engine),
        )  # fmt: skip
    elif isinstance(r, HealthRecord):
        conn.execute(
            "INSERT INTO camera_health VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            (at(r.time), o.facility_id, o.gateway_id, o.seq, r.camera_id, r.state, r.fps,
             None, r.reconnects, r.decode_errors, r.message),
        )  # fmt: skip


def _bare_copy(url: str, records: list[Record], batch: int, connections: int = 1) -> float:
    """The ceiling: the same rows by binary COPY, one transaction per batch, nothing else;
    with several connections, each writes an equal share at the same time."""
    from cloud.store import _copy_records

    def write(share: list[Record]) -> None:
        with psycopg.connect(url) as conn:
            for first in range(0, len(share), batch):
                with conn.transaction(), conn.cursor() as cur:
                    _copy_records(cur, share[first : first + batch])

    size = -(-len(records) // connections)
    shares = [records[i : i + size] for i in range(0, len(records), size)]
    start = time.perf_counter()
    with ThreadPoolExecutor(connections) as pool:
        list(pool.map(write, shares))
    rate = len(records) / (time.perf_counter() - start)
    print(f"bare binary COPY, {connections} connection(s): {rate:,.0f} rows/s", flush=True)
    return rate


def _through_ingest(
    twin: Twin, url: str, envelopes: list[uplink_pb2.Envelope], batch: int, gateways: int = 1
) -> dict[str, object]:
    """Envelopes/s acked, and until the FSE has fused them all; CPU per envelope by process.

    With several gateways, each is the gateway of a depot of its own (the twin's layout
    under another facility id) and sends a share of the days, all streams at once."""
    shares = _shares(envelopes, gateways)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        facility_files, gateway_entries = [], []
        for g in range(gateways):
            facility_id = _facility_id(twin, g)
            facility = folder / f"facility-{g}.yaml"
            depot = twin.facility.model_copy(
                update={"facility": twin.facility.facility.model_copy(update={"id": facility_id})}
            )
            write_facility(facility, depot, "Twin depot, for the ingest benchmark")
            facility_files.append(str(facility))
            gateway_entries.append(
                {
                    "id": f"gw-bench-{g}",
                    "facility": facility_id,
                    "token_sha256": token_sha256(f"{TOKEN}-{g}"),
                }
            )
        port = free_port()
        config = {
            "version": 1, "listen": f"127.0.0.1:{port}",
            "metrics_port": None, "fse_metrics_port": None,
            "facilities": facility_files,
            "gateways": gateway_entries,
            "limits": {"max_batch_envelopes": max(batch, 5000)},
        }  # fmt: skip
        (folder / "cloud.yaml").write_text(yaml.safe_dump(config), "utf-8")
        log = (folder / "ingest.log").open("wb")
        process = subprocess.Popen(
            [sys.executable, "-m", "locowatch", "cloud", "run", "--config",
             str(folder / "cloud.yaml"), "--db", url],
            stdout=log, stderr=subprocess.STDOUT, cwd=REPO,
        )  # fmt: skip
        try:
            _wait_serving(port)
            clients = [
                SimGateway(
                    f"127.0.0.1:{port}",
                    f"gw-bench-{g}",
                    _facility_id(twin, g),
                    f"{TOKEN}-{g}",
                    batch_size=batch,
                    window=4,
                )
                for g in range(gateways)
            ]
            cpu_before = _cpu_seconds(process.pid)
            start = time.perf_counter()
            with ThreadPoolExecutor(gateways) as pool:
                reports = list(pool.map(SimGateway.send, clients, shares))
            elapsed = time.perf_counter() - start
            cpu = _cpu_seconds(process.pid)
            _wait_fused(url, {
                _facility_id(twin, g): max(map(capture_seconds, share[-1000:]))
                for g, share in enumerate(shares)
            })  # fmt: skip
            drained = time.perf_counter() - start
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=30)
    for report, share in zip(reports, shares, strict=True):
        assert report.stored == len(share), report
    n = len(envelopes)
    print(
        f"gRPC ingest, {gateways} gateway(s): {n / elapsed:,.0f} envelopes/s acked "
        f"({elapsed:.1f} s)",
        flush=True,
    )
    print(f"  fused: the FSE wrote its last snapshot {drained - elapsed:.1f} s after the last ack")
    use = {role: (cpu[role] - cpu_before.get(role, 0.0)) for role in cpu}
    for role, seconds in use.items():
        cores, micros = seconds / elapsed, 1e6 * seconds / n
        print(f"  {role}: {cores:.2f} cores, {micros:.1f} us of CPU an envelope")
    return {
        "gateways": gateways,
        "envelopes_per_s": n / elapsed,
        "fused_envelopes_per_s": n / drained,
        "cpu_us_per_envelope": {role: 1e6 * seconds / n for role, seconds in use.items()},
    }


def _facility_id(twin: Twin, gateway: int) -> str:
    return f"{twin.facility.facility.id}-{gateway}"


def _shares(envelopes: list[uplink_pb2.Envelope], gateways: int) -> list[list[uplink_pb2.Envelope]]:
    """Split the days between gateways in whole days (capture order kept), each share
    numbered from 1 as its gateway's queue would number it."""
    days: dict[int, list[uplink_pb2.Envelope]] = {}
    first = capture_seconds(envelopes[0])
    for envelope in envelopes:
        days.setdefault(int((capture_seconds(envelope) - first) // 86_400), []).append(envelope)
    shares: list[list[uplink_pb2.Envelope]] = [[] for _ in range(gateways)]
    for index, day in enumerate(days.values()):
        shares[index % gateways] += day
    for share in shares:
        for seq, envelope in enumerate(share, start=1):
            envelope.seq = seq
    return shares


def _wait_fused(url: str, last_capture_s: dict[str, float], timeout_s: float = 300.0) -> None:
    """Until both flows of every facility have a snapshot within a few seconds of that
    facility's last capture."""
    deadline = time.monotonic() + timeout_s
    query = "SELECT facility_id, flow, max(time) FROM state_snapshots GROUP BY facility_id, flow"
    with psycopg.connect(url, autocommit=True) as conn:
        while time.monotonic() < deadline:
            rows = conn.execute(query).fetchall()
            behind = [f for f, _, newest in rows if newest < at(last_capture_s[f] - 5.0)]
            if len(rows) == 2 * len(last_capture_s) and not behind:
                return
            time.sleep(0.1)
    raise RuntimeError("the FSE did not catch up with the last capture")


def _cpu_seconds(ingest_pid: int) -> dict[str, float]:
    """CPU seconds so far of the ingest process, its FSE child, PostgreSQL's processes
    (when the server runs on this machine) and this process (the gateway), from /proc."""
    tick = os.sysconf("SC_CLK_TCK")
    out = {"ingest": 0.0, "FSE process": 0.0, "PostgreSQL": 0.0, "gateway (this process)": 0.0}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2 :].split()
        pid, ppid = int(entry.name), int(fields[1])
        seconds = (int(fields[11]) + int(fields[12])) / tick  # utime + stime
        if pid == ingest_pid:
            out["ingest"] += seconds
        elif ppid == ingest_pid:  # the FSE process (and multiprocessing's tiny tracker)
            out["FSE process"] += seconds
        elif name == "postgres":
            out["PostgreSQL"] += seconds
        elif pid == os.getpid():
            out["gateway (this process)"] += seconds
    return out


def _wait_serving(port: int) -> None:
    """Until ingest serves and its state estimators have restored: the clock then times
    steady work, not the FSE process starting up (about a second of CPU, which would
    count against the envelopes)."""
    import grpc

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
                stub = health_pb2_grpc.HealthStub(channel)
                statuses = [
                    stub.Check(health_pb2.HealthCheckRequest(service=name), timeout=1).status
                    for name in ("", FSE_HEALTH_NAME)
                ]
                if all(s == health_pb2.HealthCheckResponse.SERVING for s in statuses):
                    return
        except grpc.RpcError:
            pass
        time.sleep(0.2)
    raise RuntimeError("ingest did not start")


def _fse(twin: Twin, fps: float, seconds: float) -> dict[str, float]:
    """Position estimations fused per second, ticking at 1 Hz of capture time."""
    envelopes = twin_estimations(twin, flows=("prod",), fps=fps, end_s=seconds)
    records = [r for r in _validated(twin, list(envelopes)) if not isinstance(r, HealthRecord)]
    positions = sum(1 for r in records if isinstance(r, PositionRecord))
    fse = FacilityStateEstimator(twin.facility, "prod")
    start = time.perf_counter()
    ticks = 0
    for record in records:
        fse.add(record)
        ticks += len(fse.advance())
    elapsed = time.perf_counter() - start
    out = {
        "fps": fps,
        "position_updates": positions,
        "updates_per_s": positions / elapsed,
        "ticks": ticks,
        "ms_per_snapshot": 1000 * elapsed / max(ticks, 1),
        "facility_seconds_per_s": seconds / elapsed,
    }
    print(
        f"FSE at {fps:g} fps: {out['updates_per_s']:,.0f} updates/s, "
        f"{out['ms_per_snapshot']:.2f} ms per snapshot",
        flush=True,
    )
    return out


def _report(r: dict[str, Any]) -> None:
    many, one = r["ingest"], r["ingest_one_gateway"]
    ingest, single = float(many["envelopes_per_s"]), float(one["envelopes_per_s"])
    copy, insert = float(r["copy_rows_per_s"]), float(r["insert_rows_per_s"])
    parallel = float(r["copy_parallel_rows_per_s"])
    n = many["gateways"]
    print()
    print(f"| method | rows/s | ingest ({n} gateways) vs it | ingest (1 gateway) vs it |")
    print("|---|---|---|---|")
    print(f"| per-row INSERT | {insert:,.0f} | {ingest / insert:.1f}x | {single / insert:.1f}x |")
    print(f"| bare binary COPY, 1 connection | {copy:,.0f} | {ingest / copy:.2f}x "
          f"| {single / copy:.2f}x |")  # fmt: skip
    print(f"| bare binary COPY, {n} connections | {parallel:,.0f} | {ingest / parallel:.2f}x "
          f"| {single / parallel:.2f}x |")  # fmt: skip
    for label, run in ((f"{n} gateways", many), ("1 gateway", one)):
        acked, fused = float(run["envelopes_per_s"]), float(run["fused_envelopes_per_s"])
        print(f"| gRPC ingest, {label} (validate, COPY, ack; FSE beside it) | {acked:,.0f} | | |")
        print(f"| the same, until the FSE has fused it all | {fused:,.0f} | | |")


if __name__ == "__main__":
    main()
