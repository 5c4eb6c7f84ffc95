"""MQTT: the outbox's events and alerts, and the current state as retained messages.

paho-mqtt (Eclipse's client, the reference implementation; aiomqtt is a wrapper around
it): its network loop runs in its own thread and reconnects with backoff by itself;
``publish`` with QoS 1 and ``wait_for_publish`` tells when the broker acknowledged a
message, which is when the outbox cursor may move. Topics (docs/integration.md):

    PREFIX/status                                    online / offline (retained, last will)
    PREFIX/FACILITY/FLOW/state                       counts (retained)
    PREFIX/FACILITY/FLOW/tracks/TRACK                a track's locomotives (retained)
    PREFIX/FACILITY/FLOW/locomotives/ID              a locomotive (retained; cleared when it leaves)
    PREFIX/FACILITY/FLOW/events/KIND                 arrived, moved, stopped, identified, departed
    PREFIX/FACILITY/FLOW/alerts/RULE                 an alert firing or resolved
    PREFIX/FACILITY/FLOW/alerts/active/RULE/SUBJECT  an open alert (retained; cleared when resolved)
    PREFIX/FACILITY/health/cameras/CAMERA            a camera's last report (retained)
    PREFIX/FACILITY/health/gateways/GATEWAY          a gateway's last batch (retained)
"""

from __future__ import annotations

import json
import logging
import ssl
import threading
from collections.abc import Sequence
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from cloud.plant.config import MqttSettings
from cloud.plant.outbox import OutboxItem

log = logging.getLogger(__name__)

ACK_TIMEOUT_S = 10.0
QOS = 1


class MqttSink:
    """One connection to the broker, kept up by paho's loop thread."""

    name = "mqtt"

    def __init__(self, settings: MqttSettings) -> None:
        self.settings = settings
        self.prefix = settings.topic_prefix.rstrip("/")
        self.connected = threading.Event()
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=settings.client_id, protocol=mqtt.MQTTv311
        )
        if settings.username:
            password = settings.password.read() if settings.password else None
            client.username_pw_set(settings.username, password)
        if settings.tls:
            client.tls_set(
                ca_certs=str(settings.ca_file) if settings.ca_file else None,
                cert_reqs=ssl.CERT_REQUIRED,
            )
        self.status_topic = f"{self.prefix}/status"
        client.will_set(self.status_topic, b"offline", qos=QOS, retain=True)
        client.reconnect_delay_set(1, 30)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        self.client = client
        # topic -> what the broker holds from us (None: something, not known what)
        self._retained: dict[str, bytes | None] = {}
        self._lock = threading.Lock()

    def start(self) -> None:
        self.client.connect_async(self.settings.host, self.settings.port, self.settings.keepalive_s)
        self.client.loop_start()

    def stop(self) -> None:
        if self.connected.is_set():
            self.client.publish(
                self.status_topic, b"offline", qos=QOS, retain=True
            ).wait_for_publish(2)
        self.client.disconnect()
        self.client.loop_stop()

    def _on_connect(
        self, client: mqtt.Client, _userdata: Any, _flags: Any, reason: Any, _props: Any
    ) -> None:
        if reason.is_failure:
            log.warning("MQTT broker %s refused the connection: %s", self.settings.host, reason)
            return
        log.info("MQTT connected to %s:%d", self.settings.host, self.settings.port)
        with self._lock:  # a restarted broker may hold other ones: send the state again
            self._retained = dict.fromkeys(self._retained)
        # Learn the retained locomotives and alerts the broker holds (from before a restart
        # of this service or of the broker), so that those gone are cleared, not left.
        for pattern in ("+/+/locomotives/+", "+/+/alerts/active/#"):
            client.subscribe(f"{self.prefix}/{pattern}", qos=QOS)
        client.publish(self.status_topic, b"online", qos=QOS, retain=True)
        self.connected.set()

    def _on_message(self, _client: mqtt.Client, _userdata: Any, message: Any) -> None:
        if message.retain and message.payload:
            with self._lock:
                self._retained.setdefault(message.topic, None)

    def _on_disconnect(
        self, _client: mqtt.Client, _userdata: Any, _flags: Any, reason: Any, _props: Any
    ) -> None:
        self.connected.clear()
        log.warning("MQTT disconnected from %s: %s (reconnecting)", self.settings.host, reason)

    # -- the outbox ------------------------------------------------------------------------

    def base(self, facility: str, flow: str) -> str:
        """The topics of one facility and flow (``health`` for cameras and gateways)."""
        return f"{self.prefix}/{facility}/{flow}"

    def topic(self, item: OutboxItem) -> str:
        base = self.base(item.facility_id, item.flow)
        if item.kind == "event":
            return f"{base}/events/{item.payload['kind']}"
        return f"{base}/alerts/{item.payload['alert']['rule']}"

    def deliver(self, items: Sequence[OutboxItem]) -> int | None:
        """Publish ``items`` in order; the id of the last one the broker acknowledged."""
        last: int | None = None
        for item in items:
            if not self._publish(self.topic(item), item.body, retain=False):
                break
            if item.kind == "alert":
                self._active_alert(item)
            last = item.id
        return last

    def _active_alert(self, item: OutboxItem) -> None:
        alert = item.payload["alert"]
        topic = (
            f"{self.base(item.facility_id, item.flow)}/alerts/active/"
            f"{alert['rule']}/{segment(alert['subject'])}"
        )
        self.retain(topic, item.body if item.payload["state"] == "firing" else b"")

    # -- retained state --------------------------------------------------------------------

    def retain(self, topic: str, body: bytes) -> bool:
        """Publish ``body`` retained when it differs from what we last sent there (an empty
        body clears the topic)."""
        with self._lock:
            if topic in self._retained and self._retained[topic] == body:
                return True
        if not self._publish(topic, body, retain=True):
            return False
        with self._lock:
            self._retained[topic] = body
        return True

    def retain_json(self, topic: str, message: dict[str, Any]) -> bool:
        return self.retain(
            topic, json.dumps(message, ensure_ascii=False, separators=(",", ":")).encode()
        )

    def retained_under(self, prefix: str) -> list[str]:
        """Topics under ``prefix`` the broker may hold a message of ours on."""
        with self._lock:
            return [t for t, body in self._retained.items() if t.startswith(prefix) and body != b""]

    def _publish(self, topic: str, body: bytes, retain: bool) -> bool:
        if not self.connected.is_set():
            return False
        info = self.client.publish(topic, body, qos=QOS, retain=retain)
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            return False
        try:
            info.wait_for_publish(ACK_TIMEOUT_S)
        except (RuntimeError, ValueError):
            return False
        return info.is_published()


def segment(text: str) -> str:
    """A topic level: MQTT's separators and wildcards out."""
    return text.replace("/", "_").replace("+", "_").replace("#", "_") or "_"
