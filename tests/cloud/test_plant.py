"""Results into plant systems, against a real Mosquitto broker and a real webhook
receiver: the twin's state and events written the way ingest writes them, then the plant
service sending them on through a broker restart and a receiver outage."""

from __future__ import annotations

import asyncio
import getpass
import hashlib
import hmac
import json
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import psycopg
import pytest
import yaml
from asyncua import Client
from paho.mqtt.enums import CallbackAPIVersion

from cloud.config import load_cloud_config
from cloud.fse import FacilityStateEstimator
from cloud.fse.offline import store_offline
from cloud.plant.payloads import event_key
from cloud.plant.service import PlantService
from cloud.schema import migrate
from cloud.store import Store
from dashboard.users import Role, add_user
from locowatch.db.scratch import scratch_database
from sim.estimations import capture_seconds, twin_estimations
from sim.recording import write_facility
from sim.streaming import free_port
from sim.twin import Twin
from tests.cloud.conftest import IngestFactory
from tests.cloud.test_ingest import numbered, wait_for_state

pytestmark = pytest.mark.db
MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
SECRET_ENV = "LW_TEST_WEBHOOK_SECRET"
SECRET = "webhook-s3cret"


# -- a broker, a subscriber, a webhook receiver ----------------------------------------------


@dataclass
class Broker:
    port: int
    folder: Path
    process: subprocess.Popen[bytes] | None = None
    secure: str = ""  # extra listener settings: TLS files, a password file

    def start(self) -> None:
        conf = self.folder / "mosquitto.conf"
        anonymous = "false" if "password_file" in self.secure else "true"
        conf.write_text(
            f"listener {self.port} 127.0.0.1\nallow_anonymous {anonymous}\n{self.secure}"
            f"persistence true\npersistence_location {self.folder}/\n"
            f"user {getpass.getuser()}\n",
            encoding="utf-8",
        )
        log = (self.folder / "mosquitto.log").open("ab")
        self.process = subprocess.Popen([MOSQUITTO, "-c", str(conf)], stdout=log, stderr=log)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.1)
        raise RuntimeError("mosquitto did not start")

    def stop(self) -> None:
        """SIGTERM: the broker saves its persistent sessions, as a service stop does."""
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(10)


@dataclass
class Subscriber:
    """A plant system's client: a persistent session, QoS 1, everything under the prefix."""

    port: int
    client_id: str
    clean: bool = False
    messages: list[tuple[str, bytes, bool]] = field(default_factory=list)

    def __post_init__(self) -> None:
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=self.client_id,
            clean_session=self.clean, protocol=mqtt.MQTTv311,
        )  # fmt: skip
        client.on_connect = lambda c, *_: c.subscribe("lw/#", qos=1)
        client.on_message = lambda _c, _u, m: self.messages.append((m.topic, m.payload, m.retain))
        client.reconnect_delay_set(0.2, 1)
        client.connect("127.0.0.1", self.port)
        client.loop_start()
        self.client = client

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def json(self, prefix: str) -> list[dict[str, Any]]:
        return [
            json.loads(body)
            for topic, body, _ in self.messages
            if topic.startswith(prefix) and body
        ]


@dataclass
class Receiver:
    """A webhook receiver that checks signatures and can be down."""

    down: threading.Event = field(default_factory=threading.Event)
    posts: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    bad_signatures: int = 0

    def serve(self) -> tuple[ThreadingHTTPServer, str]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if receiver.down.is_set():
                    self.send_response(503)
                    self.end_headers()
                    return
                expected = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
                if not hmac.compare_digest(expected, self.headers["X-Locowatch-Signature"]):
                    receiver.bad_signatures += 1
                receiver.posts.append((self.headers["Idempotency-Key"], json.loads(body)))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        return server, f"http://127.0.0.1:{server.server_address[1]}/hooks/locowatch"


def wait_until(condition: Callable[[], bool], timeout_s: float = 30.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


# -- the scenario ----------------------------------------------------------------------------


@pytest.fixture
def depot(db_server_url: str, tmp_path: Path) -> Iterator[tuple[str, Twin, Path]]:
    twin = Twin()
    facility = tmp_path / "facility.yaml"
    write_facility(facility, twin.facility, "the twin depot, for the plant systems")
    with scratch_database(db_server_url, "locowatch_plant") as url:
        migrate(url)
        yield url, twin, facility


def fill(url: str, twin: Twin, start_s: float, end_s: float, fse: FacilityStateEstimator) -> None:
    """The twin's estimations through validation, the FSE and COPY, as ingest stores them."""
    store = Store(url, max_connections=2)
    store.open()
    try:
        envelopes = twin_estimations(twin, flows=("prod",), start_s=start_s, end_s=end_s)
        store_offline(store, twin.facility, ("prod",), envelopes, "gw-1", fses={"prod": fse})
    finally:
        store.close()


def test_state_events_and_alerts_reach_mqtt_and_a_webhook_through_outages(
    ingest_factory: IngestFactory,
    twin: Twin,
    facility_file: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The twin's gateway sends to a real ingest (the FSE writes events and the outbox);
    the plant service sends on through a broker restart and a receiver outage."""
    ingest = ingest_factory()
    url = ingest.db_url
    fid = twin.facility.facility.id
    batch = numbered(list(twin_estimations(twin, end_s=300.0)))
    half = next(
        i
        for i, e in enumerate(batch)
        if capture_seconds(e) >= twin.scenario.clock(150.0).timestamp()
    )
    broker = Broker(free_port(), tmp_path / "broker")
    broker.folder.mkdir()
    broker.start()
    receiver = Receiver()
    http, hook_url = receiver.serve()
    monkeypatch.setenv(SECRET_ENV, SECRET)
    ingest.gateway(batch_size=500).send(batch[:half])
    wait_for_state(url, twin.scenario.clock(140.0).timestamp())
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT series FROM locomotive_events WHERE series IS NOT NULL LIMIT 1"
        ).fetchone()
    assert row is not None
    series = row[0]  # a series the depot holds now, planned for a track it has not
    cloud_yaml = tmp_path / "cloud.yaml"
    cloud_yaml.write_text(yaml.safe_dump({
        "version": 1, "facilities": [str(facility_file)],
        "plant": {
            "period_s": 0.2, "metrics_port": None,
            "mqtt": {"host": "127.0.0.1", "port": broker.port, "topic_prefix": "lw"},
            "webhooks": [{"name": "mes", "url": hook_url, "secret": {"env": SECRET_ENV}}],
            "alerts": [
                {"name": "long-dwell", "kind": "dwell", "max_hours": 0.01},
                {"name": "camera-dark", "kind": "camera_silent", "after_minutes": 1},
                {"name": "wrong-track", "kind": "unplanned_track", "allowed": {series: ["T9"]}},
            ],
        },
    }, allow_unicode=True))  # fmt: skip
    subscriber = Subscriber(broker.port, "mes-subscriber")
    service = PlantService(load_cloud_config(cloud_yaml), url)
    service.start()
    running = threading.Thread(target=service.run)
    running.start()
    try:
        wait_until(lambda: service.outbox.backlog("mqtt") == 0, what="the first events sent")
        # The broker goes down and the receiver fails while more happens at the depot.
        broker.stop()
        receiver.down.set()
        ingest.gateway(batch_size=500).send(batch[half:])
        wait_for_state(url, twin.scenario.clock(290.0).timestamp())
        time.sleep(1.5)  # the plant service tries, fails, waits
        assert service.outbox.backlog("mqtt") > 0 and service.outbox.backlog("webhook:mes") > 0
        broker.start()
        receiver.down.clear()
        for sink in ("mqtt", "webhook:mes"):
            wait_until(lambda s=sink: service.outbox.backlog(s) == 0, 90, f"{sink} to catch up")
        # A camera reports again: its alert resolves, and the resolution is sent.
        camera = twin.facility.cameras[0].id
        with psycopg.connect(url) as conn:
            conn.execute(
                "INSERT INTO camera_health (time, facility_id, gateway_id, seq, camera_id, "
                "state, fps, last_frame_time, reconnects, decode_errors, message) "
                "VALUES (now(), %s, 'gw-probe', 0, %s, 'streaming', 2, now(), 0, 0, '')",
                (fid, camera),
            )
        wait_until(lambda: any(m["state"] == "resolved" and m["alert"]["subject"] == camera
                               for m in subscriber.json(f"lw/{fid}/health/alerts/camera-dark")),
                   what="the resolution")  # fmt: skip
        wait_until(lambda: service.outbox.backlog("webhook:mes") == 0, what="the webhook")
    finally:
        service.stopping.set()
        running.join(30)
        service.stop()
        http.shutdown()

    with psycopg.connect(url) as conn:
        events = conn.execute(
            "SELECT loco_id, kind, time FROM locomotive_events WHERE facility_id = %s "
            "AND flow = 'prod' ORDER BY time",
            (fid,),
        ).fetchall()
        snapshot = conn.execute(
            "SELECT locomotives FROM state_snapshots WHERE facility_id = %s AND flow = 'prod' "
            "ORDER BY time DESC LIMIT 1",
            (fid,),
        ).fetchone()
        open_alerts = conn.execute(
            "SELECT rule, subject FROM alerts WHERE resolved_at IS NULL"
        ).fetchall()
        left = conn.execute("SELECT count(*) FROM outbox").fetchone()
    expected = set()
    for loco, kind, t in events:  # one locomotive, kind and instant more than once: #1 ...
        ordinal = 0
        while event_key(fid, "prod", loco, kind, t.timestamp(), ordinal) in expected:
            ordinal += 1
        expected.add(event_key(fid, "prod", loco, kind, t.timestamp(), ordinal))
    assert len(expected) == len(events) > 20

    # MQTT: every event, each key once after a receiver drops resends, in outbox order.
    received = subscriber.json(f"lw/{fid}/prod/events/")
    keys = [m["key"] for m in received]
    assert set(keys) == expected
    times = [m["time"] for m in {m["key"]: m for m in received}.values()]
    assert times == sorted(times)  # events in order, across the broker restart
    assert len(keys) - len(set(keys)) <= 2  # resends (same key) only around the restart

    # Alerts: fired for the standing locomotives, the silent cameras, the wrong track.
    rules = {rule for rule, _ in open_alerts}
    assert {"long-dwell", "camera-dark", "wrong-track"} <= rules
    dwell = subscriber.json(f"lw/{fid}/prod/alerts/long-dwell")
    firing = {m["alert"]["id"] for m in dwell if m["state"] == "firing"}
    resolved = {m["alert"]["id"] for m in dwell if m["state"] == "resolved"}
    assert firing and resolved <= firing  # a locomotive that moved on: its alert resolved
    assert all(m["alert"]["severity"] == "warning" for m in dwell)
    assert ("camera-dark", camera) not in open_alerts

    # The webhook: every event and alert, signed, each key at least once.
    assert receiver.bad_signatures == 0
    hooked = {key for key, _ in receiver.posts}
    assert expected <= hooked
    assert any(body["schema"] == "locowatch.alert/1" for _, body in receiver.posts)
    assert left is not None and left[0] == 0  # delivered everywhere, so deleted

    # Retained state: a plant system connecting now gets the depot as it is.
    subscriber.close()
    late = Subscriber(broker.port, "late-subscriber", clean=True)
    try:
        assert snapshot is not None
        ids = {loco["id"] for loco in snapshot[0]}
        wait_until(lambda: {m["id"] for m in late.json(f"lw/{fid}/prod/locomotives/")} == ids,
                   what="the retained locomotives")  # fmt: skip
        state = late.json(f"lw/{fid}/prod/state")
        assert state and state[-1]["count"] == len(ids)
        assert all(retain for topic, _, retain in late.messages if "/locomotives/" in topic)
        active = {
            m["alert"]["subject"] for m in late.json(f"lw/{fid}/health/alerts/active/camera-dark/")
        }
        assert camera not in active and len(active) == len(twin.facility.cameras) - 1
    finally:
        late.close()
        broker.stop()


def test_a_scada_browses_the_depot_and_subscribes_to_its_events_over_opc_ua(
    depot: tuple[str, Twin, Path], tmp_path: Path
) -> None:
    url, twin, facility_file = depot
    fid = twin.facility.facility.id
    users = tmp_path / "users.yaml"
    add_user(users, "scada", "scada pass 1", Role.viewer, ("*",))
    add_user(users, "other-depot", "other pass 1", Role.viewer, ("north-depot",))
    port = free_port()
    endpoint = f"opc.tcp://127.0.0.1:{port}/locowatch/"
    cloud_yaml = tmp_path / "cloud.yaml"
    cloud_yaml.write_text(yaml.safe_dump({
        "version": 1, "facilities": [str(facility_file)],
        "plant": {"period_s": 0.2, "metrics_port": None,
                  "opcua": {"endpoint": endpoint, "users_file": str(users)}},
    }))  # fmt: skip
    fse = FacilityStateEstimator(twin.facility, "prod")
    fill(url, twin, 0.0, 120.0, fse)
    service = PlantService(load_cloud_config(cloud_yaml), url)
    service.start()
    running = threading.Thread(target=service.run)
    running.start()
    received: list[Any] = []

    class Handler:
        def event_notification(self, event: Any) -> None:
            received.append(event)

    async def scada() -> tuple[int, set[str], list[str], int]:
        client = Client(endpoint)
        client.set_user("scada")
        client.set_password("scada pass 1")
        async with client:
            idx = await client.get_namespace_index("urn:locowatch")
            facility = await client.nodes.objects.get_child([f"{idx}:{fid}"])
            prod = await facility.get_child([f"{idx}:prod"])
            count = await (await prod.get_child([f"{idx}:Count"])).read_value()
            folder = await prod.get_child([f"{idx}:Locomotives"])
            ids = {(await n.read_browse_name()).Name for n in await folder.get_children()}
            track = await prod.get_child([f"{idx}:Tracks", f"{idx}:T1", f"{idx}:Locomotives"])
            on_t1 = await track.read_value()
            event_type = await client.nodes.base_event_type.get_child(
                [f"{idx}:LocomotiveEventType"]
            )
            subscription = await client.create_subscription(100, Handler())
            await subscription.subscribe_events(facility, event_type)
            await asyncio.to_thread(fill, url, twin, 120.0, 200.0, fse)  # the depot goes on
            deadline = time.monotonic() + 30
            while not received and time.monotonic() < deadline:
                await asyncio.sleep(0.2)
            cameras = await facility.get_child([f"{idx}:Health", f"{idx}:Cameras"])
            silent = await (await cameras.get_child([f"{idx}:{twin.facility.cameras[0].id}",
                                                     f"{idx}:Silent"])).read_value()  # fmt: skip
            return count, ids, on_t1, int(silent)

    async def refused(user: str | None, password: str | None) -> bool:
        client = Client(endpoint)
        if user:
            client.set_user(user)
            client.set_password(password or "")
        try:
            async with client:
                return False
        except Exception:
            return True

    try:
        time.sleep(1.0)  # a look or two
        count, ids, on_t1, silent = asyncio.run(scada())
        assert asyncio.run(refused(None, None))  # no anonymous login
        assert asyncio.run(refused("scada", "wrong password"))
        assert asyncio.run(refused("other-depot", "other pass 1"))  # not granted this depot
    finally:
        service.stopping.set()
        running.join(30)
        service.stop()
    with psycopg.connect(url) as conn:
        events = conn.execute(
            "SELECT count(*) FROM locomotive_events WHERE time > %s", (twin.scenario.clock(120.0),)
        ).fetchone()
    assert count > 0 and len(ids) == count
    assert set(on_t1) <= ids  # a track lists its locomotives
    assert silent == 1  # the twin's cameras reported hours ago
    assert events is not None and events[0] > 0
    keys = {e.Key for e in received}
    assert keys and all(k.startswith(f"{fid}/prod/") for k in keys)
    assert {e.Kind for e in received} <= {"arrived", "moved", "stopped", "identified", "departed"}


def test_mqtt_over_tls_with_a_password_from_a_secret_file(tmp_path: Path) -> None:
    """The broker a plant runs: TLS from its own CA, no anonymous clients."""
    from cloud.plant.config import MqttSettings, SecretRef
    from cloud.plant.mqtt import MqttSink
    from tests.fixtures.ingest import self_signed

    folder = tmp_path / "broker"
    folder.mkdir()
    cert, key = self_signed(folder, days=2)  # CN and SAN localhost
    passwords = folder / "passwd"
    subprocess.run(["mosquitto_passwd", "-c", "-b", str(passwords), "locowatch", "mqtt-s3cret"],
                   check=True, capture_output=True)  # fmt: skip
    broker = Broker(
        free_port(), folder,
        secure=f"certfile {cert}\nkeyfile {key}\npassword_file {passwords}\n",
    )  # fmt: skip
    broker.start()
    secret = tmp_path / "mqtt-password"
    secret.write_text("mqtt-s3cret\n")
    sink = MqttSink(MqttSettings(
        host="localhost", port=broker.port, tls=True, ca_file=cert, username="locowatch",
        password=SecretRef(file=secret), topic_prefix="lw",
    ))  # fmt: skip
    wrong = secret.with_name("wrong")
    wrong.write_text("guess\n")
    refused = MqttSink(MqttSettings(
        host="localhost", port=broker.port, tls=True, ca_file=cert, username="locowatch",
        password=SecretRef(file=wrong), topic_prefix="lw", client_id="intruder",
    ))  # fmt: skip
    sink.start()
    refused.start()
    try:
        assert sink.connected.wait(10)
        assert sink.retain_json("lw/depot/prod/state", {"count": 3})
        reader = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="reader")
        reader.username_pw_set("locowatch", "mqtt-s3cret")
        reader.tls_set(ca_certs=str(cert))
        got: list[bytes] = []
        reader.on_message = lambda _c, _u, m: got.append(m.payload)
        reader.connect("localhost", broker.port)
        reader.subscribe("lw/depot/prod/state", qos=1)
        reader.loop_start()
        wait_until(lambda: bool(got), what="the retained state over TLS")
        reader.loop_stop()
        reader.disconnect()
        assert json.loads(got[0]) == {"count": 3}
        assert not refused.connected.is_set()  # a wrong password gets nothing
    finally:
        refused.stop()
        sink.stop()
        broker.stop()


def test_opc_ua_signs_and_encrypts_and_refuses_plain_clients(
    depot: tuple[str, Twin, Path], tmp_path: Path
) -> None:
    url, twin, facility_file = depot
    certs = {}
    for who in ("server", "client"):  # a plant's PKI: URI in the subjectAltName
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
             "-subj", f"/CN=locowatch-{who}",
             "-addext", f"subjectAltName=URI:urn:locowatch:{who},DNS:localhost",
             "-addext", "keyUsage=digitalSignature,nonRepudiation,keyEncipherment,dataEncipherment",
             "-addext", "extendedKeyUsage=serverAuth,clientAuth",
             "-keyout", str(tmp_path / f"{who}-key.pem"),
             "-out", str(tmp_path / f"{who}-certificate.pem")],
            check=True, capture_output=True,
        )  # fmt: skip
        certs[who] = (tmp_path / f"{who}-certificate.pem", tmp_path / f"{who}-key.pem")
    users = tmp_path / "users.yaml"
    add_user(users, "scada", "scada pass 1", Role.admin, ())
    endpoint = f"opc.tcp://127.0.0.1:{free_port()}/locowatch/"
    cloud_yaml = tmp_path / "cloud.yaml"
    cloud_yaml.write_text(yaml.safe_dump({
        "version": 1, "facilities": [str(facility_file)],
        "plant": {"metrics_port": None, "opcua": {
            "endpoint": endpoint, "security": "sign_and_encrypt",
            "application_uri": "urn:locowatch:server",
            "certificate_file": str(certs["server"][0]),
            "private_key_file": str(certs["server"][1]), "users_file": str(users)}},
    }))  # fmt: skip
    service = PlantService(load_cloud_config(cloud_yaml), url)
    service.start()

    async def secure() -> str:
        client = Client(endpoint)
        client.application_uri = "urn:locowatch:client"
        await client.set_security_string(
            f"Basic256Sha256,SignAndEncrypt,{certs['client'][0]},{certs['client'][1]}"
        )
        client.set_user("scada")
        client.set_password("scada pass 1")
        async with client:
            idx = await client.get_namespace_index("urn:locowatch")
            name = await client.nodes.objects.get_child(
                [f"{idx}:{twin.facility.facility.id}", f"{idx}:Name"]
            )
            return str(await name.read_value())

    async def plain() -> bool:
        try:
            async with Client(endpoint):
                return False
        except Exception:
            return True

    try:
        assert asyncio.run(secure()) == twin.facility.facility.name
        assert asyncio.run(plain())
    finally:
        service.stop()
