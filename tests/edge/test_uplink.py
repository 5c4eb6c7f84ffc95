"""The edge uplink as a real process, forwarding to a real cloud ingest and TimescaleDB.

Each test runs ``locowatch edge uplink`` on loopback against ``locowatch cloud run``
(``tests/fixtures/ingest.py``) and checks what landed in the database by (gateway, seq).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import psycopg
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from edge.service import channel
from edge.uplink.queue import DurableQueue
from locowatch.facility.config import Gateway
from locowatch.v1 import uplink_pb2, uplink_pb2_grpc
from sim.estimations import twin_estimations
from sim.recording import write_facility
from sim.streaming import free_port
from sim.twin import Twin
from tests.fixtures import processes
from tests.fixtures.ingest import GATEWAY, OTHER_TOKEN, TOKEN, Ingest, IngestFactory

pytestmark = pytest.mark.db

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def envelopes(twin: Twin) -> list[uplink_pb2.Envelope]:
    """A minute of the twin's day as the estimators and capture publish it (prod flow)."""
    return list(twin_estimations(twin, flows=("prod",), end_s=60.0))


@dataclass
class Uplink:
    """A ``python -m edge.uplink`` process and how to talk to it."""

    config: Path
    data_dir: Path
    token_file: Path
    port: int
    metrics_port: int
    log: Path
    process: subprocess.Popen[bytes] | None = None
    published: dict[int, uplink_pb2.Envelope] = field(default_factory=dict)

    def start(self) -> Uplink:
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "locowatch", "edge", "uplink", "--config", str(self.config)],
                stdout=log, stderr=subprocess.STDOUT, cwd=REPO,
            )  # fmt: skip
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"the uplink exited:\n{self.log.read_text()}")
            try:
                with channel(f"127.0.0.1:{self.port}") as ch:
                    check = health_pb2_grpc.HealthStub(ch).Check
                    status = check(health_pb2.HealthCheckRequest(), timeout=1).status
                if status == health_pb2.HealthCheckResponse.SERVING:
                    return self
            except grpc.RpcError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"the uplink did not start:\n{self.log.read_text()}")

    def publish(self, envelopes: list[uplink_pb2.Envelope]) -> uplink_pb2.PublishResponse:
        """Publish, and remember which envelope got which number."""
        with channel(f"127.0.0.1:{self.port}") as ch:
            request = uplink_pb2.PublishRequest(envelopes=envelopes)
            response = uplink_pb2_grpc.UplinkStub(ch).Publish(request, timeout=10)
        first = response.last_seq - len(envelopes) + 1
        for seq, envelope in enumerate(envelopes, first):
            self.published[seq] = envelope
        return response

    def metric(self, name: str) -> float:
        url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as response:
            text = response.read().decode()
        for line in text.splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
        raise AssertionError(f"no metric {name}")

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        processes.kill(self.process)

    def stop(self) -> None:
        processes.stop(self.process)


UplinkFactory = Callable[..., Uplink]


@pytest.fixture
def uplink_factory(twin: Twin, tmp_path: Path) -> Iterator[UplinkFactory]:
    """An uplink (not started) for the test gateway, pointed at ``ingest``."""
    made: list[Uplink] = []

    def make(
        ingest: Ingest | None, token: str = TOKEN, max_queue_mb: float = 64, **uplink: object
    ) -> Uplink:
        port, metrics_port = free_port(), free_port()
        token_file = tmp_path / "gw.token"
        token_file.write_text(token + "\n", encoding="utf-8")
        cloud: dict[str, object] = {
            "endpoint": ingest.target if ingest else f"127.0.0.1:{free_port()}",  # no cloud
            "tls": ingest is not None and ingest.root_certificates is not None,
            "token_file": str(token_file),
        }
        if ingest is not None and ingest.root_certificates is not None:
            cloud["ca_file"] = str(tmp_path / "ingest.crt")  # written by ingest_factory
        data_dir = tmp_path / "gateway"
        gateway = Gateway.model_validate(
            {
                "id": GATEWAY,
                "cloud": cloud,
                "data_dir": str(data_dir),
                # The plan gives the aggregator the base port and the uplink the next one.
                "services": {"base_port": port - 1, "metrics_base_port": metrics_port - 1},
                "uplink": {"max_queue_mb": max_queue_mb, **uplink},
            }
        )
        config = tmp_path / "gateway.yaml"
        write_facility(config, twin.facility.model_copy(update={"gateway": gateway}), "uplink test")
        log = tmp_path / f"uplink-{port}.log"
        made.append(Uplink(config, data_dir, token_file, port, metrics_port, log))
        return made[-1]

    yield make
    for uplink in made:
        uplink.stop()


def stored(url: str) -> dict[int, tuple[str, str]]:
    """What landed for the test gateway: seq -> (table, camera), each row counted once."""
    out: dict[int, tuple[str, str]] = {}
    with psycopg.connect(url) as conn:
        for table in ("position_estimations", "attribute_estimations", "camera_health"):
            query = f"SELECT seq, camera_id FROM {table} WHERE gateway_id = %s"
            for seq, camera in conn.execute(query, (GATEWAY,)):  # type: ignore[arg-type]
                assert seq not in out, f"seq {seq} stored twice"
                out[seq] = (table, camera)
    return out


TABLE = {
    "position": "position_estimations",
    "attribute": "attribute_estimations",
    "camera_health": "camera_health",
}


def expected(published: dict[int, uplink_pb2.Envelope]) -> dict[int, tuple[str, str]]:
    """What ``stored`` must read for these published envelopes."""
    out = {}
    for seq, envelope in published.items():
        kind = envelope.WhichOneof("payload")
        assert kind is not None
        out[seq] = (TABLE[kind], getattr(envelope, kind).camera_id)
    return out


def wait_until(condition: Callable[[], object], timeout_s: float = 30.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or condition}")
        time.sleep(0.1)


def chunks(items: list[uplink_pb2.Envelope], size: int) -> list[list[uplink_pb2.Envelope]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


@pytest.mark.slow
def test_envelopes_published_while_ingest_is_down_arrive_once_in_order(
    ingest_factory: IngestFactory,
    uplink_factory: UplinkFactory,
    envelopes: list[uplink_pb2.Envelope],
) -> None:
    ingest = ingest_factory()
    ingest.stop()  # the cloud is away
    uplink = uplink_factory(ingest, batch_envelopes=200, window=2).start()
    batch = envelopes[:3000]
    # Four publishers at once, as estimators and capture do: every envelope gets one number.
    parts = chunks(batch, 50)
    publishers = [
        threading.Thread(target=lambda n=n: [uplink.publish(p) for p in parts[n::4]])
        for n in range(4)
    ]
    for thread in publishers:
        thread.start()
    for thread in publishers:
        thread.join()
    assert sorted(uplink.published) == list(range(1, len(batch) + 1))
    assert uplink.metric("locowatch_uplink_queued_envelopes") == len(batch)
    assert uplink.metric("locowatch_uplink_cloud_connected") == 0
    time.sleep(2.0)  # the uplink keeps retrying meanwhile
    assert "cannot stream to cloud ingest" in uplink.log.read_text()

    ingest.start()  # back, on the same port
    wait_until(lambda: len(stored(ingest.db_url)) == len(batch), what="all envelopes stored")
    # Each number holds the envelope it was given (same table, same camera), once.
    assert stored(ingest.db_url) == expected(uplink.published)
    wait_until(lambda: uplink.metric("locowatch_uplink_queued_envelopes") == 0)
    assert uplink.metric("locowatch_uplink_cloud_connected") == 1
    assert 'outcome="stored"} 3000.0' in _metrics_text(uplink)
    assert "connected to cloud ingest" in uplink.log.read_text()


def _metrics_text(uplink: Uplink) -> str:
    url = f"http://127.0.0.1:{uplink.metrics_port}/metrics"
    with urllib.request.urlopen(url, timeout=5) as response:
        return response.read().decode()


# past the point where the uplink's reconnect waits (0.5 s doubling) reach their cap of
# 15 s (30.5 s of waiting), so the reconnect after it is one of the longest waits
OUTAGE_S = 40.0


@pytest.mark.slow
def test_a_cloud_away_past_the_longest_backoff_gets_everything_once_soon_after_it_is_back(
    ingest_factory: IngestFactory,
    uplink_factory: UplinkFactory,
    envelopes: list[uplink_pb2.Envelope],
) -> None:
    """The estimators keep publishing through a long outage; when ingest returns, the
    uplink reconnects within its longest backoff and delivers the backlog once, in order."""
    ingest = ingest_factory()
    uplink = uplink_factory(ingest, batch_envelopes=200, window=2).start()
    parts = chunks(envelopes, 100)  # a minute of the twin: 5,600 envelopes
    uplink.publish(parts[0])
    wait_until(lambda: len(stored(ingest.db_url)) == 100, what="the first batch stored")
    ingest.stop()  # the cloud goes away
    away_at = time.monotonic()
    for part in parts[1:]:  # published steadily through the outage
        uplink.publish(part)
        time.sleep(OUTAGE_S / len(parts))
    time.sleep(max(0.0, away_at + OUTAGE_S - time.monotonic()))
    assert uplink.metric("locowatch_uplink_cloud_connected") == 0
    taken = len(stored(ingest.db_url))  # what ingest stored before it stopped
    wait_until(  # the gauge is sampled every few seconds
        lambda: uplink.metric("locowatch_uplink_queued_envelopes") == len(envelopes) - taken,
        what="everything else queued on disk",
    )

    ingest.start()  # back, on the same port
    back_at = time.monotonic()
    wait_until(lambda: uplink.metric("locowatch_uplink_cloud_connected") == 1, 30, "reconnect")
    assert time.monotonic() - back_at <= 15.0 + 5.0  # the longest backoff, and a start
    wait_until(lambda: len(stored(ingest.db_url)) == len(envelopes), what="the backlog stored")
    assert stored(ingest.db_url) == expected(uplink.published)
    wait_until(lambda: uplink.metric("locowatch_uplink_queued_envelopes") == 0)


@pytest.mark.slow
def test_kill_minus_nine_after_publish_loses_and_doubles_nothing(
    ingest_factory: IngestFactory,
    uplink_factory: UplinkFactory,
    envelopes: list[uplink_pb2.Envelope],
) -> None:
    ingest = ingest_factory()
    uplink = uplink_factory(ingest, batch_envelopes=100, window=2).start()
    first, second, third = envelopes[:3000], envelopes[3000:4500], envelopes[4500:5500]
    for part in chunks(first, 100):
        uplink.publish(part)
    uplink.kill()  # while it forwards: some acked by ingest, some sent, some not yet
    top = max(uplink.published)
    uplink.start()
    for part in chunks(second, 100):
        uplink.publish(part)
    assert min(uplink.published.keys() - range(1, top + 1)) == top + 1  # numbers go on
    wait_until(lambda: len(stored(ingest.db_url)) == len(first) + len(second), what="stored")
    assert stored(ingest.db_url) == expected(uplink.published)

    # A reinstalled gateway (empty data_dir, same id) still gets its new envelopes stored:
    # the cloud's Welcome says where numbering has to go on.
    before = stored(ingest.db_url)
    uplink.stop()
    ingest.stop()
    shutil.rmtree(uplink.data_dir)
    uplink.start()
    assert uplink.publish(third).last_seq == len(third)  # the empty queue starts at 1 ...
    ingest.start()
    wait_until(lambda: len(stored(ingest.db_url)) == len(before) + len(third), what="stored")
    after = stored(ingest.db_url)
    assert min(after.keys() - before.keys()) > max(before)  # ... and renumbers above the cloud
    assert "renumbered" in uplink.log.read_text()


@pytest.mark.slow
def test_a_full_queue_drops_the_oldest_and_counts_them(
    ingest_factory: IngestFactory,
    uplink_factory: UplinkFactory,
    envelopes: list[uplink_pb2.Envelope],
) -> None:
    ingest = ingest_factory()
    ingest.stop()
    uplink = uplink_factory(ingest, max_queue_mb=0.1).start()
    batch = envelopes[:3000]
    responses = [uplink.publish(part) for part in chunks(batch, 50)]
    dropped = responses[-1].dropped
    size = sum(len(e.SerializeToString()) for e in batch)
    assert size > 2 * 0.1 * 2**20 and 0 < dropped < len(batch)
    assert uplink.metric("locowatch_uplink_dropped_total") == dropped
    assert uplink.metric("locowatch_uplink_queued_bytes") <= 0.1 * 2**20
    log = uplink.log.read_text()
    assert "uplink queue full" in log
    assert log.count("uplink queue full") <= 2  # one line per 10 s, not one per Publish

    ingest.start()
    kept = len(batch) - dropped
    wait_until(lambda: len(stored(ingest.db_url)) == kept, what="the kept envelopes stored")
    # The oldest were dropped; the newest arrived.
    newest = {seq: e for seq, e in uplink.published.items() if seq > dropped}
    assert stored(ingest.db_url) == expected(newest)
    # The count survives a restart.
    uplink.stop()
    uplink.start()
    assert uplink.publish(envelopes[3000:3001]).dropped == dropped


@pytest.mark.slow
def test_a_wrong_token_keeps_the_uplink_waiting_until_it_is_fixed(
    ingest_factory: IngestFactory,
    uplink_factory: UplinkFactory,
    envelopes: list[uplink_pb2.Envelope],
) -> None:
    ingest = ingest_factory()
    uplink = uplink_factory(ingest, token="not-the-gateway-token-at-all").start()
    batch = envelopes[:500]
    uplink.publish(batch)
    wait_until(lambda: "refused gateway" in uplink.log.read_text(), what="the refusal logged")
    time.sleep(1.0)
    assert stored(ingest.db_url) == {}
    assert uplink.alive()
    log = uplink.log.read_text()
    assert "UNAUTHENTICATED" in log and str(uplink.token_file) in log
    # Another gateway's token is refused too (its facility is another depot).
    uplink.token_file.write_text(OTHER_TOKEN + "\n", encoding="utf-8")
    wait_until(lambda: "PERMISSION_DENIED" in uplink.log.read_text(), timeout_s=20)
    assert stored(ingest.db_url) == {}

    uplink.token_file.write_text(TOKEN + "\n", encoding="utf-8")  # the operator fixes it
    wait_until(lambda: len(stored(ingest.db_url)) == len(batch), timeout_s=30)
    assert stored(ingest.db_url) == expected(uplink.published)


def test_tls_to_ingest_and_rejections_counted(
    ingest_factory: IngestFactory,
    uplink_factory: UplinkFactory,
    envelopes: list[uplink_pb2.Envelope],
) -> None:
    ingest = ingest_factory(tls=True)
    uplink = uplink_factory(ingest).start()
    good = envelopes[:300]
    bad = uplink_pb2.Envelope()
    bad.CopyFrom(next(e for e in envelopes if e.WhichOneof("payload") == "position"))
    bad.position.camera_id = "cam-nowhere"
    uplink.publish(good[:100])
    uplink.publish([bad])
    uplink.publish(good[100:])
    wait_until(lambda: len(stored(ingest.db_url)) == len(good))
    wait_until(lambda: uplink.metric("locowatch_uplink_queued_envelopes") == 0)
    del uplink.published[101]  # the bad one: rejected for good, acked and deleted
    assert stored(ingest.db_url) == expected(uplink.published)
    assert 'locowatch_uplink_rejected_total{reason="UNKNOWN_CAMERA"} 1.0' in _metrics_text(uplink)
    log = uplink.log.read_text()
    assert "(TLS)" in log and "ingest rejected 1 of" in log and "seq 101 UNKNOWN_CAMERA" in log


def test_publish_refuses_envelopes_without_a_payload_and_one_queue_has_one_uplink(
    uplink_factory: UplinkFactory,
) -> None:
    uplink = uplink_factory(None).start()
    with pytest.raises(grpc.RpcError) as refused:
        uplink.publish([uplink_pb2.Envelope()])
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "envelopes[0] has no payload" in (refused.value.details() or "")
    # A second copy on the same data_dir refuses to start, with a one-line reason.
    second = subprocess.run(
        [sys.executable, "-m", "locowatch", "edge", "uplink", "--config", str(uplink.config)],
        capture_output=True, text=True, cwd=REPO, timeout=30, check=False,
    )  # fmt: skip
    assert second.returncode == 1
    assert "another uplink process holds the queue" in second.stderr
    assert uplink.alive()


def test_numbers_are_never_given_twice_even_after_everything_was_acked(
    tmp_path: Path, envelopes: list[uplink_pb2.Envelope]
) -> None:
    queue = DurableQueue(tmp_path, max_bytes=2**20)
    assert queue.append(envelopes[:10]) == 10
    assert [e.seq for e in queue.pending(after_seq=4, limit=3)] == [5, 6, 7]
    assert queue.ack(10) == 10 and len(queue) == 0
    queue.close()
    queue = DurableQueue(tmp_path, max_bytes=2**20)  # a restart with an empty queue
    assert queue.append(envelopes[10:12]) == 12
    (first, second) = queue.pending(after_seq=0, limit=10)
    assert (first.seq, second.seq) == (11, 12)
    given = uplink_pb2.Envelope()
    given.CopyFrom(envelopes[10])
    given.seq = 11
    assert first == given  # the envelope it was given, under its number
    queue.close()
