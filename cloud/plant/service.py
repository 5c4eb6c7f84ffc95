"""``locowatch cloud plant``: the state and events of the depot into plant systems.

One process beside ingest (its own health and metrics, so an MQTT or webhook outage stays
here): every ``period_s`` it reads the newest state of each facility and flow, judges the
alert rules and writes what changed, and keeps the retained MQTT state in step; one
thread per sink delivers the outbox in order, waiting longer after each failure (1 s up
to a minute, tenacity). Nothing is sent that is not in the database first.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

from prometheus_client import Counter, Gauge
from psycopg_pool import ConnectionPool
from tenacity import RetryCallState

from cloud.config import CloudConfig, load_facilities
from cloud.plant.alerts import HEALTH_FLOW, AlertBook, Disagreements, FacilityNow, evaluate, utc_now
from cloud.plant.config import PlantSettings
from cloud.plant.mqtt import MqttSink, segment
from cloud.plant.outbox import Outbox, OutboxItem
from cloud.plant.payloads import facility_message, locomotive_message, track_message
from cloud.plant.webhooks import WebhookSink
from cloud.store import CAMERA_REPORTS_SQL, GATEWAY_REPORTS_SQL, LATEST_SNAPSHOT_SQL
from locowatch.backoff import Backoff, next_delay
from locowatch.facility.config import FacilityConfig

if TYPE_CHECKING:
    from cloud.plant.opcua import OpcUaSink

log = logging.getLogger(__name__)

DELIVERED = Counter("locowatch_plant_delivered", "Outbox messages acknowledged, by sink.", ["sink"])
FAILURES = Counter(
    "locowatch_plant_delivery_failures", "Deliveries that stopped short (then retried).", ["sink"]
)
BACKLOG = Gauge("locowatch_plant_backlog", "Outbox messages a sink has still to deliver.", ["sink"])
OPEN_ALERTS = Gauge("locowatch_plant_open_alerts", "Alerts firing now.", ["facility"])


EVER = datetime(1970, 1, 1, tzinfo=UTC)  # a camera's last report, however long ago
DELIVERY_BACKOFF = Backoff(initial_s=1.0, max_s=60.0, jitter_s=1.0)


class Sink(Protocol):
    name: str

    def start(self) -> None: ...
    def stop(self) -> None: ...
    def deliver(self, items: Sequence[OutboxItem]) -> int | None: ...


class DeliveryStalledError(Exception):
    """A sink's receiver did not acknowledge everything pending: wait, then resend."""


class PlantService:
    def __init__(self, config: CloudConfig, db_url: str) -> None:
        assert config.plant is not None
        self.settings: PlantSettings = config.plant
        self.facilities: dict[str, FacilityConfig] = load_facilities(config)
        self.pool: ConnectionPool[Any] = ConnectionPool(
            db_url, min_size=1, max_size=4, open=False, name="plant", kwargs={"autocommit": True}
        )
        self.outbox = Outbox(self.pool)
        self.alerts = AlertBook(self.pool)
        self.memory = Disagreements()
        self.mqtt = MqttSink(self.settings.mqtt) if self.settings.mqtt else None
        self.opcua = self._opcua()
        self.sinks: list[Sink] = [
            *([self.mqtt] if self.mqtt else []),
            *(WebhookSink(w) for w in self.settings.webhooks),
            *([self.opcua] if self.opcua else []),
        ]
        self.stopping = threading.Event()
        self._threads: list[threading.Thread] = []

    def _opcua(self) -> OpcUaSink | None:
        if self.settings.opcua is None:
            return None
        from cloud.plant.opcua import OpcUaSink  # asyncua loads only where it is used

        silent = next(
            (r.after_minutes for r in self.settings.alerts if r.kind == "camera_silent"), 2.0
        )
        return OpcUaSink(
            self.settings.opcua, self.facilities, self.flows, timedelta(minutes=silent)
        )

    def flows(self, facility: FacilityConfig) -> list[str]:
        names = [f.name for f in facility.flows]
        return [f for f in names if self.settings.flows is None or f in self.settings.flows]

    # -- running ---------------------------------------------------------------------------

    def start(self) -> None:
        self.pool.open(wait=True, timeout=60)
        self.outbox.register([s.name for s in self.sinks])
        for sink in self.sinks:
            sink.start()
            thread = threading.Thread(target=self._deliver_loop, args=(sink,), name=sink.name)
            thread.start()
            self._threads.append(thread)
        log.info(
            "plant service: %d facilities, sinks %s, %d alert rules",
            len(self.facilities), ", ".join(s.name for s in self.sinks) or "none",
            len(self.settings.alerts),
        )  # fmt: skip

    def run(self) -> None:
        """Look every period until ``stop``."""
        while not self.stopping.is_set():
            try:
                self.look()
                self.outbox.prune([s.name for s in self.sinks])
            except Exception:  # the database away: say so, look again
                log.exception("plant service: could not read the state")
            self.stopping.wait(self.settings.period_s)

    def stop(self) -> None:
        self.stopping.set()
        for thread in self._threads:
            thread.join(30)
        for sink in self.sinks:
            sink.stop()
        try:  # what was delivered since the last look leaves the outbox too
            self.outbox.prune([s.name for s in self.sinks])
        except Exception:
            log.exception("plant service: could not prune the outbox")
        self.pool.close()

    # -- looking ---------------------------------------------------------------------------

    def look(self, now: datetime | None = None) -> None:
        now = now or utc_now()
        wanted = {}
        for facility in self.facilities.values():
            current = self._read(facility)
            wanted.update(evaluate(self.settings.alerts, current, now, self.memory))
            if self.mqtt is not None:
                self._retain_state(facility, current)
            if self.opcua is not None:
                self.opcua.update(current)
        fired, resolved = self.alerts.apply(list(self.facilities), wanted, now)
        for facility_id in self.facilities:
            OPEN_ALERTS.labels(facility_id).set(sum(k[0] == facility_id for k in wanted))
        if fired or resolved:
            log.info("alerts: %d fired, %d resolved", fired, resolved)

    def _read(self, facility: FacilityConfig) -> FacilityNow:
        fid = facility.facility.id
        cameras = [c.id for c in facility.cameras]
        with self.pool.connection() as conn:
            states = {}
            for flow in self.flows(facility):
                row = conn.execute(LATEST_SNAPSHOT_SQL, (fid, flow)).fetchone()
                if row is not None:
                    states[flow] = (row[0].timestamp(), list(row[1]))
            rows = conn.execute(
                CAMERA_REPORTS_SQL, {"ids": cameras, "facility": fid, "since": EVER}
            ).fetchall()
            reports = {row[0]: row[1] for row in rows}
            gateways = dict(conn.execute(GATEWAY_REPORTS_SQL, (fid,)).fetchall())
        return FacilityNow(fid, states, reports, gateways)

    def _retain_state(self, facility: FacilityConfig, current: FacilityNow) -> None:
        """Retained topics follow the newest snapshot; a locomotive gone is cleared."""
        mqtt = self.mqtt
        assert mqtt is not None
        fid = current.facility_id
        tracks = [t.id for t in facility.tracks]
        for flow, (_, locos) in current.states.items():
            base = mqtt.base(fid, flow)
            mqtt.retain_json(f"{base}/state", facility_message(fid, flow, locos, tracks))
            for track in tracks:
                on_track = [loco for loco in locos if loco["track"] == track]
                mqtt.retain_json(
                    f"{base}/tracks/{track}", track_message(fid, flow, track, on_track)
                )
            present = set()
            for loco in locos:
                topic = f"{base}/locomotives/{segment(loco['id'])}"
                present.add(topic)
                mqtt.retain_json(topic, locomotive_message(fid, flow, loco))
            for topic in mqtt.retained_under(f"{base}/locomotives/"):
                if topic not in present:
                    mqtt.retain(topic, b"")  # it left: no retained ghost
        base = mqtt.base(fid, HEALTH_FLOW)
        for camera, last in current.cameras.items():
            mqtt.retain_json(f"{base}/cameras/{camera}", {
                "schema": "locowatch.camera/1", "facility": fid, "camera": camera,
                "last_report": last.isoformat() if last else None})  # fmt: skip
        for gateway, last_batch in current.gateways.items():
            mqtt.retain_json(f"{base}/gateways/{gateway}", {
                "schema": "locowatch.gateway/1", "facility": fid, "gateway": gateway,
                "last_batch": last_batch.isoformat()})  # fmt: skip

    # -- delivering ------------------------------------------------------------------------

    def _deliver_loop(self, sink: Sink) -> None:
        def waiting(state: RetryCallState) -> None:
            FAILURES.labels(sink.name).inc()
            log.warning("%s: delivery stalled, retrying in %.0f s", sink.name, next_delay(state))

        retrying = DELIVERY_BACKOFF.retrying(self.stopping, DeliveryStalledError, waiting)
        while not self.stopping.is_set():
            try:
                for attempt in retrying:
                    with attempt:
                        self.deliver(sink)
            except Exception:  # the database away, or the stop while waiting
                if not self.stopping.is_set():
                    log.exception("%s: delivery failed", sink.name)
            self.stopping.wait(self.settings.period_s)

    def deliver(self, sink: Sink) -> None:
        """Everything pending for ``sink``, in order; DeliveryStalledError if some is not acked."""
        while True:
            items = self.outbox.pending(sink.name)
            BACKLOG.labels(sink.name).set(len(items))
            if not items:
                return
            wanted = [i for i in items if i.flow == HEALTH_FLOW or self._sent(i.flow)]
            acked = sink.deliver(wanted) if wanted else None
            unacked = [i for i in wanted if acked is None or i.id > acked]
            done = [i.id for i in items if not unacked or i.id < unacked[0].id]
            if done:
                self.outbox.delivered(sink.name, max(done))
                DELIVERED.labels(sink.name).inc(len([i for i in wanted if i.id <= max(done)]))
            if unacked:
                raise DeliveryStalledError(f"{len(unacked)} of {len(wanted)} not acknowledged")

    def _sent(self, flow: str) -> bool:
        return self.settings.flows is None or flow in self.settings.flows


def serve_plant(config: CloudConfig, db_url: str) -> None:
    """Run until SIGINT/SIGTERM."""
    import signal

    from prometheus_client import start_http_server

    if config.plant is None:
        from locowatch.errors import UsageError

        raise UsageError(
            "cloud.yaml has no 'plant:' section: nothing to send (docs/integration.md)"
        )
    service = PlantService(config, db_url)
    if config.plant.metrics_port is not None:
        start_http_server(config.plant.metrics_port)
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: service.stopping.set())
    service.start()
    try:
        service.run()
    finally:
        service.stop()
