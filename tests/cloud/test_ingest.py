"""Cloud ingest as a real process on loopback, fed by the twin's simulated gateway."""

from __future__ import annotations

import csv
import io
import itertools
import math
import os
import re
import shutil
import signal
import subprocess
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import grpc
import psycopg
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from cloud.fse_process import HEALTH_NAME as FSE_HEALTH_NAME
from locowatch.v1 import uplink_pb2, uplink_pb2_grpc
from sim.estimations import camera_of, capture_seconds, twin_estimations
from sim.evaluation import evaluate, read_snapshots_from_db, snapshot_from_record
from sim.scenario import recent_start
from sim.twin import Twin

from .conftest import (
    FACILITY,
    GATEWAY,
    OTHER_TOKEN,
    SECOND_GATEWAY,
    SECOND_TOKEN,
    TOKEN,
    Ingest,
    IngestFactory,
)

pytestmark = pytest.mark.db
REPO = Path(__file__).resolve().parents[2]

SCENARIO_END_S = 240.0


@pytest.fixture(scope="module")
def envelopes(twin: Twin) -> list[uplink_pb2.Envelope]:
    """Four minutes of the twin's day as the gateway sends it (prod flow)."""
    return list(twin_estimations(twin, end_s=SCENARIO_END_S))


def numbered(envelopes: list[uplink_pb2.Envelope]) -> list[uplink_pb2.Envelope]:
    out = []
    for seq, envelope in enumerate(envelopes, 1):
        copy = uplink_pb2.Envelope()
        copy.CopyFrom(envelope)
        copy.seq = seq
        out.append(copy)
    return out


def rows(url: str, query: str, *args: object) -> list[tuple[object, ...]]:
    with psycopg.connect(url) as conn:
        return conn.execute(query, args).fetchall()  # type: ignore[arg-type]


def wait_for_state(url: str, until: float, timeout_s: float = 30.0) -> None:
    """Until the FSE's snapshots reach capture time ``until``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        (latest,) = rows(url, "SELECT extract(epoch FROM max(time)) FROM state_snapshots")[0]
        if latest is not None and float(latest) >= until:  # type: ignore[arg-type]
            return
        time.sleep(0.2)
    raise AssertionError("snapshots did not catch up")


def stored_counts(url: str) -> tuple[int, int]:
    """Rows stored across the raw tables, and distinct (gateway, seq) among them."""
    (total, distinct) = rows(
        url,
        "SELECT count(*), count(DISTINCT (gateway_id, seq)) FROM ("
        " SELECT gateway_id, seq FROM position_estimations UNION ALL"
        " SELECT gateway_id, seq FROM attribute_estimations UNION ALL"
        " SELECT gateway_id, seq FROM camera_health) s",
    )[0]
    return int(total), int(distinct)  # type: ignore[call-overload]


@pytest.mark.calendar
def test_a_twin_scenario_through_ingest_gives_the_right_reports(
    ingest_factory: IngestFactory,
    twin: Twin,
    envelopes: list[uplink_pb2.Envelope],
    locowatch_cli,  # type: ignore[no-untyped-def]
) -> None:
    ingest = ingest_factory()
    report = ingest.gateway(batch_size=1000).send(numbered(envelopes))
    assert (report.stored, report.duplicates, report.rejected) == (len(envelopes), 0, [])
    start = twin.scenario.spec.start_time.timestamp()
    wait_for_state(ingest.db_url, start + SCENARIO_END_S - 2)
    assert stored_counts(ingest.db_url) == (len(envelopes), len(envelopes))

    # The snapshots in the database score like the FSE does offline.
    estimates = list(read_snapshots_from_db(ingest.db_url, "prod", start, start + 1e6))
    truth = [snapshot_from_record(twin.truth(s.time - start)) for s in estimates]
    scores = evaluate(truth, estimates, {t.id: t.length_m for t in twin.facility.tracks})
    assert scores.count_exact >= 0.995 and scores.id_switches == 0, scores.table()
    assert scores.end_error_median_m is not None and scores.end_error_median_m <= 0.3

    # Visits: each locomotive that was inside, under its plate; departures on time.
    day = twin.scenario.spec.start_time.date().isoformat()
    visits = cli_csv(locowatch_cli, "visits", "--from", day, "--db", ingest.db_url)
    inside = _true_visits(twin, SCENARIO_END_S)
    by_plate = {v["plate"]: v for v in visits if v["plate"]}
    assert len(visits) == len(inside)
    identified = [p for p in inside if p in by_plate]
    assert len(identified) >= 0.9 * len(inside)
    for plate in identified:
        left = inside[plate]
        departed = by_plate[plate]["departed_at"]
        if left is None:
            assert departed == ""
        else:
            assert departed, plate
            seconds = _posix(departed) - (start + left)
            assert abs(seconds) <= 3.0, (plate, seconds)

    # Stays: stations where the twin's locomotives stood, and for how long.
    stays = cli_csv(locowatch_cli, "stays", "--from", day, "--db", ingest.db_url)
    expected = _true_stays(twin, SCENARIO_END_S)
    found = {(s["station"], s["plate"]): float(s["dwell_hours"]) * 3600 for s in stays}
    hits = [key for key in expected if key in found]
    assert len(hits) >= 0.9 * len(expected), (expected, found)
    for key in hits:
        assert abs(found[key] - expected[key]) <= 36.0, key  # dwell rounded to 0.01 h

    occupancy = cli_csv(locowatch_cli, "occupancy", "--from", day, "--db", ingest.db_url)
    occupied = {station for station, _ in _true_stays(twin, SCENARIO_END_S, min_s=3)}
    assert {row["station"] for row in occupancy} == occupied
    assert all(0 < float(row["occupied_fraction"]) <= 1 for row in occupancy)


def test_two_gateways_of_one_facility_fuse_into_one_state(
    ingest_factory: IngestFactory, twin: Twin, envelopes: list[uplink_pb2.Envelope]
) -> None:
    """A depot with more cameras than one gateway holds: each gateway owns half of them.

    Both stream live (second by second of capture time, side by side); the one FSE of the
    facility fuses the two halves as if one gateway had sent everything.
    """
    ingest = ingest_factory()
    cameras = sorted({camera_of(e) for e in envelopes})
    first_half = set(cameras[: len(cameras) // 2])
    halves = {
        GATEWAY: [e for e in envelopes if camera_of(e) in first_half],
        SECOND_GATEWAY: [e for e in envelopes if camera_of(e) not in first_half],
    }
    tokens = {GATEWAY: TOKEN, SECOND_GATEWAY: SECOND_TOKEN}
    start = twin.scenario.spec.start_time.timestamp()
    in_step = threading.Barrier(2, timeout=60)
    failures: list[BaseException] = []

    def stream(gateway_id: str) -> None:
        gateway = ingest.gateway(gateway_id=gateway_id, token=tokens[gateway_id])
        by_second: dict[int, list[uplink_pb2.Envelope]] = {}
        for envelope in halves[gateway_id]:
            by_second.setdefault(int(capture_seconds(envelope) - start), []).append(envelope)
        try:
            for second in range(int(SCENARIO_END_S) + 1):
                in_step.wait()  # the two gateways stay within a second of each other
                if second in by_second:
                    gateway.send(gateway.number(by_second[second]))
        except BaseException as exc:  # reported by the test thread
            failures.append(exc)
            in_step.abort()

    threads = [threading.Thread(target=stream, args=(g,)) for g in halves]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not failures, failures

    wait_for_state(ingest.db_url, start + SCENARIO_END_S - 2)
    assert stored_counts(ingest.db_url) == (len(envelopes), len(envelopes))
    per_gateway = rows(
        ingest.db_url,
        "SELECT gateway_id, count(DISTINCT camera_id) FROM position_estimations GROUP BY 1",
    )
    assert sorted(per_gateway) == sorted(  # type: ignore[type-var]
        [(GATEWAY, len(first_half)), (SECOND_GATEWAY, len(cameras) - len(first_half))]
    )
    estimates = list(read_snapshots_from_db(ingest.db_url, "prod", start, start + 1e6))
    truth = [snapshot_from_record(twin.truth(s.time - start)) for s in estimates]
    scores = evaluate(truth, estimates, {t.id: t.length_m for t in twin.facility.tracks})
    assert scores.count_exact >= 0.995 and scores.id_switches == 0, scores.table()
    assert scores.end_error_median_m is not None and scores.end_error_median_m <= 0.3


def cli_csv(locowatch_cli, name: str, *args: str) -> list[dict[str, str]]:  # type: ignore[no-untyped-def]
    result = locowatch_cli("report", name, "--csv", *args)
    assert result.returncode == 0, result.stderr
    return list(csv.DictReader(io.StringIO(result.stdout)))


def _true_visits(twin: Twin, end_s: float) -> dict[str, float | None]:
    """Plate -> departure time (None while still inside) of every locomotive inside."""
    last_seen: dict[str, float] = {}
    for t in range(0, int(end_s)):
        for loco in twin.truth(t)["locomotives"]:
            if loco["head_m"] > 0.5:
                last_seen[loco["plate"]] = t
    lengths = {t.id: t.length_m for t in twin.facility.tracks}
    out: dict[str, float | None] = {}
    for plate, t in last_seen.items():
        if t >= end_s - 3:
            out[plate] = None
            continue
        states = [s for s in twin.scenario.at(t) if s.loco.plate == plate]
        tail = states[0].tail_m
        speed = states[0].speed_mps or 1.0
        out[plate] = t + (lengths[states[0].track] - tail) / speed  # drives out
    return out


def _true_stays(twin: Twin, end_s: float, min_s: float = 20) -> dict[tuple[str, str], float]:
    """(station, plate) -> seconds the locomotive stood there, for stays of ``min_s`` or more."""
    seconds: dict[tuple[str, str], float] = {}
    for t in range(2, int(end_s) - 2):
        for loco in twin.truth(t)["locomotives"]:
            if loco["station"]:
                key = (loco["station"], loco["plate"])
                seconds[key] = seconds.get(key, 0.0) + 1.0
    return {k: v for k, v in seconds.items() if v >= min_s}


def _posix(text: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(text).timestamp()


@pytest.mark.calendar
def test_kill_minus_nine_loses_and_doubles_nothing(
    ingest_factory: IngestFactory, twin: Twin, envelopes: list[uplink_pb2.Envelope]
) -> None:
    ingest = ingest_factory()
    batch = numbered(envelopes)
    gateway = ingest.gateway(batch_size=200, window=2, reconnect_for_s=90)
    outcome: dict[str, object] = {}

    def send() -> None:
        try:
            outcome["report"] = gateway.send(batch)
        except Exception as exc:  # reported below
            outcome["error"] = exc

    sender = threading.Thread(target=send)
    sender.start()
    _wait_until(lambda: stored_counts(ingest.db_url)[0] > len(batch) // 3)
    _wait_until(lambda: bool(_fse_ids(ingest.db_url)))  # the FSEs have written state
    ids_before = _fse_ids(ingest.db_url)
    ingest.kill()
    time.sleep(1.0)
    ingest.start()
    sender.join(timeout=120)
    assert "error" not in outcome, outcome
    report = outcome["report"]
    assert report.reconnects >= 1  # type: ignore[attr-defined]
    assert stored_counts(ingest.db_url) == (len(batch), len(batch))
    start = twin.scenario.spec.start_time.timestamp()
    wait_for_state(ingest.db_url, start + SCENARIO_END_S - 2)
    # The FSE resumed from its last snapshot: the locomotives it knew keep their ids.
    (snapshot_times,) = rows(
        ingest.db_url,
        "SELECT count(*) - count(DISTINCT (time, flow)) FROM state_snapshots",
    )
    assert snapshot_times == (0,)
    kept = ids_before & _fse_ids(ingest.db_url, latest_only=True)
    assert kept, "no locomotive kept its id across the restart"


@pytest.mark.calendar
def test_a_backlog_older_than_retention_is_stored_counted_and_logged(
    ingest_factory: IngestFactory, twin: Twin, envelopes: list[uplink_pb2.Envelope]
) -> None:
    """A gateway back after a long outage sends a day 40 days old (raw retention: 30).

    Ingest stores, acks and fuses it like any other, and says so: a counter per gateway
    and a log line with the age. The retention pass of the next start then drops the old
    raw rows and snapshots (14 days); the history fused from them stays (730 days)."""
    start = twin.scenario.spec.start_time
    forty_days_back = replace(twin.scenario.spec, start_time=start - timedelta(days=40))
    old_day = Twin(replace(twin.spec, scenario=forty_days_back))
    backlog = list(twin_estimations(old_day, flows=("prod",), end_s=60.0))
    recent = envelopes[:500]
    ingest = ingest_factory()
    report = ingest.gateway(batch_size=500).send(numbered(backlog + recent))
    assert (report.stored, report.rejected) == (len(backlog) + len(recent), [])
    late = f'locowatch_ingest_past_retention_total{{facility="{FACILITY}",gateway="{GATEWAY}"}}'
    assert f"{late} {float(len(backlog))}" in _metrics(ingest)

    def said() -> list[tuple[str, str]]:  # the first batch at once, then a line a minute
        return re.findall(  # (or when the stream ends)
            rf"gateway {GATEWAY}: stored (\d+) envelopes already older than raw retention "
            r"\(30 days\), the oldest ([\d.]+) days old",
            ingest.log.read_text(),
        )

    _wait_until(lambda: sum(int(n) for n, _ in said()) == len(backlog))
    assert all(40.0 < float(age) < 42.1 for _, age in said())  # the day lies 1-2 days back

    def old(table: str, column: str) -> int:
        query = f"SELECT count(*) FROM {table} WHERE {column} < %s"
        return int(rows(ingest.db_url, query, start - timedelta(days=39))[0][0])  # type: ignore[call-overload]

    _wait_until(lambda: old("state_snapshots", "time") >= 55)  # the FSE fused the old minute
    spans = old("locomotive_spans", "from_time")
    visits = old("locomotive_visits", "arrived_at")
    assert spans and visits
    ingest.stop()
    ingest.start()  # its retention pass drops the old raw chunks and snapshots
    _wait_until(lambda: stored_counts(ingest.db_url)[0] == len(recent))
    assert old("state_snapshots", "time") == 0
    assert old("locomotive_spans", "from_time") == spans
    assert old("locomotive_visits", "arrived_at") == visits


def _fse_ids(url: str, latest_only: bool = False) -> set[str]:
    if latest_only:
        query = (
            "SELECT l->>'id' FROM state_snapshots s, jsonb_array_elements(s.locomotives) l "
            "WHERE s.time = (SELECT max(time) FROM state_snapshots)"
        )
    else:
        query = "SELECT DISTINCT loco_id FROM locomotive_spans"
    return {str(r[0]) for r in rows(url, query)}


def _wait_until(condition, timeout_s: float = 60.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.05)


def test_bad_envelopes_are_rejected_while_good_ones_land(
    ingest_factory: IngestFactory, envelopes: list[uplink_pb2.Envelope]
) -> None:
    ingest = ingest_factory()
    good = [uplink_pb2.Envelope() for _ in range(40)]
    for copy, source in zip(good, envelopes[:40], strict=True):
        copy.CopyFrom(source)
    positions = [e for e in envelopes if e.WhichOneof("payload") == "position"]
    bad = []
    for change in (
        lambda p: setattr(p.intervals[0] if p.intervals else p, "confidence", math.nan),
        lambda p: setattr(p.covered, "end_m", 10_000.0),
        lambda p: setattr(p, "camera_id", "cam-nowhere"),
        lambda p: setattr(p.covered, "track_id", "T99"),
        lambda p: setattr(p.provenance, "flow", "nobody"),
        lambda p: setattr(p.provenance, "model_version", "v\x00"),  # would fail the COPY
    ):
        envelope = uplink_pb2.Envelope()
        envelope.CopyFrom(positions[100])
        change(envelope.position)
        bad.append(envelope)
    bad.append(uplink_pb2.Envelope())  # no payload
    mixed = good[:20] + bad + good[20:]
    report = ingest.gateway(batch_size=1000).send(numbered(mixed))
    reasons = [uplink_pb2.RejectReason.Name(r.reason) for r in report.rejected]
    assert reasons == [
        "REJECT_REASON_NOT_FINITE",
        "REJECT_REASON_OUT_OF_RANGE",
        "REJECT_REASON_UNKNOWN_CAMERA",
        "REJECT_REASON_UNKNOWN_TRACK",
        "REJECT_REASON_UNKNOWN_FLOW",
        "REJECT_REASON_MALFORMED",
        "REJECT_REASON_MALFORMED",
    ]
    assert [r.seq for r in report.rejected] == list(range(21, 28))
    assert all(r.detail for r in report.rejected)
    assert report.stored == len(good)
    assert stored_counts(ingest.db_url) == (len(good), len(good))
    audit = rows(ingest.db_url, "SELECT seq, reason FROM ingest_rejections ORDER BY seq")
    assert [(s, r) for s, r in audit] == [
        (seq, name.removeprefix("REJECT_REASON_"))
        for seq, name in zip(range(21, 28), reasons, strict=True)
    ]
    metrics = _metrics(ingest)
    assert 'locowatch_ingest_rejections_total{facility="twin-depot",reason="NOT_FINITE"} 1.0' in (
        metrics
    )
    # Resending everything (a reconnect) stores nothing twice.
    again = ingest.gateway(batch_size=1000).send(numbered(mixed))
    assert again.stored == 0 and again.duplicates == len(mixed)
    assert stored_counts(ingest.db_url) == (len(good), len(good))


def _metrics(ingest: Ingest) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{ingest.metrics_port}/metrics") as response:
        return response.read().decode()


def _raw_stream(ingest: Ingest, token: str, hello: uplink_pb2.Hello) -> Iterator[object]:
    with ingest.channel() as channel:
        stub = uplink_pb2_grpc.IngestStub(channel)
        messages = iter([uplink_pb2.UplinkMessage(hello=hello)])
        yield from stub.Stream(messages, metadata=(("authorization", f"Bearer {token}"),))


def test_wrong_tokens_and_foreign_facilities_are_refused(ingest_factory: IngestFactory) -> None:
    ingest = ingest_factory()
    hello = uplink_pb2.Hello(gateway_id=GATEWAY, facility_id=FACILITY)
    with pytest.raises(grpc.RpcError) as wrong:
        list(_raw_stream(ingest, "not-a-token", hello))
    assert wrong.value.code() == grpc.StatusCode.UNAUTHENTICATED
    # The other depot's gateway may not write this depot's data.
    with pytest.raises(grpc.RpcError) as foreign:
        list(_raw_stream(ingest, OTHER_TOKEN, hello))
    assert foreign.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "other-depot" in (foreign.value.details() or "")
    welcome = next(_raw_stream(ingest, TOKEN, hello))
    assert welcome.WhichOneof("message") == "welcome"  # type: ignore[attr-defined]
    assert 'locowatch_ingest_auth_failures_total{reason="claim"} 1.0' in _metrics(ingest)


def test_an_oversized_batch_is_refused_then_arrives_split(
    ingest_factory: IngestFactory, envelopes: list[uplink_pb2.Envelope]
) -> None:
    ingest = ingest_factory(max_batch_envelopes=100)
    gateway = ingest.gateway(batch_size=100)
    gateway.batch_size = 450  # ignores the Welcome's limit: a misbehaving gateway
    report = _send_ignoring_limit(gateway, numbered(envelopes[:2000]))
    assert report.refused_batches >= 1
    assert report.stored == 2000
    assert stored_counts(ingest.db_url) == (2000, 2000)


def _send_ignoring_limit(gateway, batch):  # type: ignore[no-untyped-def]
    """Make the gateway's first batches too big, as an old or broken uplink might."""
    original = gateway._converse

    def converse(responses, outbox, pending, report):  # type: ignore[no-untyped-def]
        first = next(responses)
        first.welcome.max_batch_envelopes = 0  # pretend the limit was not announced
        return original(itertools.chain([first], responses), outbox, pending, report)

    gateway._converse = converse
    return gateway.send(batch)


def test_a_blocked_database_holds_the_gateway_back(
    ingest_factory: IngestFactory, envelopes: list[uplink_pb2.Envelope]
) -> None:
    ingest = ingest_factory()
    batch = numbered(envelopes[:6000])
    with psycopg.connect(ingest.db_url) as blocker:
        blocker.execute("LOCK TABLE gateway_progress IN ACCESS EXCLUSIVE MODE")
        outcome: dict[str, object] = {}
        gateway = ingest.gateway(batch_size=200, window=30)
        sender = threading.Thread(target=lambda: outcome.update(report=gateway.send(batch)))
        sender.start()
        time.sleep(3.0)
        assert sender.is_alive()  # nothing acked while the database cannot write
        rss = _rss_mb(ingest)
        time.sleep(2.0)
        assert _rss_mb(ingest) - rss < 50
    sender.join(timeout=60)
    assert outcome["report"].stored == len(batch)  # type: ignore[attr-defined]
    assert stored_counts(ingest.db_url) == (len(batch), len(batch))


def _rss_mb(ingest: Ingest) -> float:
    assert ingest.process is not None
    status = open(f"/proc/{ingest.process.pid}/status").read()  # noqa: PTH123, SIM115
    line = next(x for x in status.splitlines() if x.startswith("VmRSS"))
    return int(line.split()[1]) / 1024


def test_tls_health_and_reflection(
    ingest_factory: IngestFactory, envelopes: list[uplink_pb2.Envelope]
) -> None:
    ingest = ingest_factory(tls=True)
    report = ingest.gateway().send(numbered(envelopes[:300]))
    assert report.stored == 300
    last_batch = _metric(
        ingest,
        "locowatch_ingest_gateway_last_batch_timestamp_seconds"
        f'{{facility="{FACILITY}",gateway="{GATEWAY}"}}',
    )
    assert 0 <= time.time() - last_batch < 60
    plaintext = Ingest(ingest.config, ingest.db_url, ingest.port, 0, ingest.log)
    with pytest.raises(grpc.RpcError):
        plaintext.health()
    with ingest.channel() as channel:
        stub = reflection_pb2_grpc.ServerReflectionStub(channel)
        request = reflection_pb2.ServerReflectionRequest(list_services="")
        (answer,) = list(stub.ServerReflectionInfo(iter([request]), timeout=5))
    names = {s.name for s in answer.list_services_response.service}
    assert {"locowatch.v1.Ingest", "grpc.health.v1.Health"} <= names


def test_a_renewed_certificate_is_served_without_a_restart(
    ingest_factory: IngestFactory, tmp_path: Path
) -> None:
    """Renewing is writing the files: new connections get the new certificate, a half
    written renewal (new certificate, old key) keeps the old one in service, and the
    expiry is a metric."""
    ingest = ingest_factory(tls=True)
    old_root = ingest.root_certificates
    assert old_root is not None
    assert 1.5 < _metric(ingest, "locowatch_ingest_tls_certificate_expiry_days") <= 2.0

    def health_with(root: bytes) -> int:
        channel = grpc.secure_channel(
            ingest.target,
            grpc.ssl_channel_credentials(root),
            options=[("grpc.use_local_subchannel_pool", 1)],  # a new TLS handshake
        )
        with channel:
            stub = health_pb2_grpc.HealthStub(channel)
            return int(stub.Check(health_pb2.HealthCheckRequest(), timeout=3).status)

    assert health_with(old_root) == health_pb2.HealthCheckResponse.SERVING
    # A renewal from the private CA of deploy/cloud/ingest-certificate.sh, copied in by
    # hand in the wrong order: the certificate first, which does not match the key.
    renewed = tmp_path / "renewed"
    issue_certificate(renewed, days=30)
    cert_file, key_file = tmp_path / "ingest.crt", tmp_path / "ingest.key"
    shutil.copy(renewed / "ingest.crt", cert_file)
    time.sleep(1.1)
    assert health_with(old_root) == health_pb2.HealthCheckResponse.SERVING
    shutil.copy(renewed / "ingest.key", key_file)  # ... now it does
    new_root = (renewed / "ca.crt").read_bytes()
    _wait_until(lambda: _serves(health_with, new_root), timeout_s=10)
    with pytest.raises(grpc.RpcError):
        health_with(old_root)
    assert 29 < _metric(ingest, "locowatch_ingest_tls_certificate_expiry_days") <= 30
    # The script renewing in place, as a timer runs it.
    issue_certificate(tmp_path, days=60)  # (a CA of its own there, made on first use)
    _wait_until(lambda: _serves(health_with, (tmp_path / "ca.crt").read_bytes()), timeout_s=10)
    assert not _serves(health_with, new_root)
    assert 59 < _metric(ingest, "locowatch_ingest_tls_certificate_expiry_days") <= 60
    text = ingest.log.read_text()
    assert "TLS files changed but not loaded, serving the previous pair" in text
    assert "TLS certificate reloaded: CN=localhost" in text


def issue_certificate(folder: Path, days: int) -> None:
    result = subprocess.run(
        ["bash", str(REPO / "deploy" / "cloud" / "ingest-certificate.sh"), str(folder),
         "localhost", str(days)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr


def _serves(health_with: Callable[[bytes], int], root: bytes) -> bool:
    try:
        return health_with(root) == health_pb2.HealthCheckResponse.SERVING
    except grpc.RpcError:
        return False


def _metric(ingest: Ingest, name: str) -> float:
    for line in _metrics(ingest).splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    raise AssertionError(f"no {name} in the metrics")


def test_a_dead_fse_process_is_restarted_and_resumes(
    ingest_factory: IngestFactory, twin: Twin, envelopes: list[uplink_pb2.Envelope]
) -> None:
    ingest = ingest_factory()
    batch = numbered(envelopes)
    half = len(batch) // 2
    ingest.gateway(batch_size=1000).send(batch[:half])
    _wait_until(lambda: bool(_fse_ids(ingest.db_url)))
    _wait_until(lambda: _fse_health(ingest) == "SERVING")
    ids_before = _fse_ids(ingest.db_url, latest_only=True)
    _kill_fse_child(ingest)
    _wait_until(lambda: _fse_health(ingest) == "NOT_SERVING")  # while it restarts
    assert ingest.health() == health_pb2.HealthCheckResponse.SERVING  # ingest serves on
    report = ingest.gateway(batch_size=1000).send(batch[half:])  # ingest goes on storing
    assert report.stored == len(batch) - half
    _wait_until(lambda: _fse_health(ingest) == "SERVING")
    start = twin.scenario.spec.start_time.timestamp()
    wait_for_state(ingest.db_url, start + SCENARIO_END_S - 2)
    assert "locowatch_fse_process_restarts_total 1.0" in _metrics(ingest)
    assert ids_before & _fse_ids(ingest.db_url, latest_only=True)
    (gaps,) = rows(
        ingest.db_url,
        "SELECT count(*) FROM (SELECT time - lag(time) OVER (ORDER BY time) AS step "
        "FROM state_snapshots WHERE flow = 'prod') s WHERE step > INTERVAL '1 second'",
    )
    assert gaps == (0,)  # the new process carried on from the last snapshot, no hole


def _fse_health(ingest: Ingest) -> str:
    return health_pb2.HealthCheckResponse.ServingStatus.Name(ingest.health(FSE_HEALTH_NAME))


def _kill_fse_child(ingest: Ingest) -> None:
    """kill -9 the FSE process ingest started (the only one so far)."""
    (child,) = re.findall(r"estimators started in process (\d+)", ingest.log.read_text())
    os.kill(int(child), signal.SIGKILL)


def test_ingest_goes_on_storing_while_the_fse_process_cannot_start(
    ingest_factory: IngestFactory,
    facility_file: Path,
    tmp_path: Path,
    twin: Twin,
    envelopes: list[uplink_pb2.Envelope],
) -> None:
    """A state estimator that crashes on every start (here: its facility file is gone)
    must not stop ingest from storing and acking; once it can start, it replays what
    was stored meanwhile."""
    facility = tmp_path / "facility.yaml"
    shutil.copy(facility_file, facility)
    ingest = ingest_factory(facilities=[facility, facility_file.with_name("other.yaml")])
    batch = numbered(envelopes)
    ingest.gateway(batch_size=1000).send(batch[:1000])
    _wait_until(lambda: bool(_fse_ids(ingest.db_url)))
    hidden = facility.rename(tmp_path / "facility.yaml.away")
    _kill_fse_child(ingest)
    _wait_until(lambda: "locowatch_fse_process_restarts_total 2.0" in _metrics(ingest))
    assert _fse_health(ingest) == "NOT_SERVING"
    assert "locowatch_fse_serving 0.0" in _metrics(ingest)
    # every restart failed, and the rest of the day (far more than the FSE queue holds)
    # is stored and acked all the same
    report = ingest.gateway(batch_size=100).send(batch[1000:])
    assert report.stored == len(batch) - 1000
    assert stored_counts(ingest.db_url) == (len(batch), len(batch))
    (skipped,) = re.findall(
        r"^locowatch_fse_handovers_skipped_total (\S+)$", _metrics(ingest), re.M
    )
    assert float(skipped) > 0
    hidden.rename(facility)
    start = twin.scenario.spec.start_time.timestamp()
    wait_for_state(ingest.db_url, start + SCENARIO_END_S - 2, timeout_s=60.0)
    _wait_until(lambda: _fse_health(ingest) == "SERVING")
    assert "locowatch_fse_serving 1.0" in _metrics(ingest)


def test_gateways_without_a_client_certificate_are_refused_when_required(
    ingest_factory: IngestFactory, envelopes: list[uplink_pb2.Envelope]
) -> None:
    ingest = ingest_factory(client_certs=True)
    assert ingest.gateway().send(numbered(envelopes[:100])).stored == 100
    anonymous = ingest.gateway(client_certificate=None, reconnect_for_s=0, wait_for_ready=False)
    with pytest.raises(grpc.RpcError):
        anonymous.send(numbered(envelopes[100:110]))
    assert stored_counts(ingest.db_url) == (100, 100)


@pytest.mark.calendar
def test_sim_feed_plays_the_gateway(
    ingest_factory: IngestFactory,
    tmp_path,
    locowatch_cli,  # type: ignore[no-untyped-def]
) -> None:
    ingest = ingest_factory()
    token = tmp_path / "gw.token"
    token.write_text(TOKEN + "\n")
    start = recent_start() - timedelta(days=3)  # a day pinned by the user, in the past
    feed = ("sim", "feed", "--target", ingest.target, "--gateway", GATEWAY,
            "--token-file", str(token), "--replay", "--duration", "120", "--flows", "prod",
            "--no-faults")  # fmt: skip
    result = locowatch_cli(*feed, "--start", start.isoformat())
    assert result.returncode == 0, result.stderr
    sent = int(result.stdout.split()[1])
    assert sent > 10_000 and f"stored {sent}" in result.stdout
    assert stored_counts(ingest.db_url) == (sent, sent)
    (first,) = rows(ingest.db_url, "SELECT min(time) FROM position_estimations")[0]
    assert start <= first < start + timedelta(seconds=5)  # type: ignore[operator]

    wrong = locowatch_cli(*feed, "--start", "yesterday")
    assert wrong.returncode == 2 and "expected ISO 8601" in wrong.stderr


def test_a_database_restart_under_load_loses_and_doubles_nothing(
    ingest_factory: IngestFactory, envelopes: list[uplink_pb2.Envelope], locowatch_cli
) -> None:  # type: ignore[no-untyped-def]
    """PostgreSQL itself restarts while a gateway streams: ingest retries, acks only what
    was committed, and the gateway's resends fill the gap exactly."""
    from locowatch.db.location import external_db_url

    if external_db_url() is not None:
        pytest.skip("restarts the managed server; LOCOWATCH_DB names another one")
    ingest = ingest_factory()
    batch = numbered(envelopes[:20_000])
    outcome: dict[str, object] = {}
    gateway = ingest.gateway(batch_size=200, window=4)
    sender = threading.Thread(target=lambda: outcome.update(report=gateway.send(batch)))
    sender.start()
    _wait_until(lambda: stored_counts(ingest.db_url)[0] > 2_000)
    # As a user would, from a process of its own: pg_ctl runs as the database user, which
    # a fork from this process (gRPC's threads running) once crashed (pg_ctl start: -11),
    # and every later test then found no server.
    try:
        assert locowatch_cli("db", "down").returncode == 0
        time.sleep(2.0)  # the database is gone for a while
    finally:
        up = locowatch_cli("db", "up")
    assert up.returncode == 0, up.stderr
    sender.join(timeout=180)
    assert not sender.is_alive(), ingest.log.read_text()[-3000:]
    assert stored_counts(ingest.db_url) == (len(batch), len(batch))
    assert "locowatch_db_retries_total" in _metrics(ingest)
    assert ingest.process is not None and ingest.process.poll() is None  # rode it out
