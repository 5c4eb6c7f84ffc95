"""OPC UA: the depot's state as an address space a DCS or SCADA browses and subscribes to,
and its events and alerts as OPC UA events (asyncua, the maintained pure-Python stack).

Address space (namespace ``urn:locowatch``), under Objects:

    FACILITY                         Name; events: LocomotiveEventType, AlertEventType
      FLOW                           Count, Stale, UpdatedAt
        Tracks/TRACK                 Count, Locomotives (ids, tail first)
        Locomotives/ID               Track, TailM, HeadM, Station, Series, Plate, Since, Stale
      Health/Cameras/CAMERA          LastReport, Silent
      Health/Gateways/GATEWAY        LastBatch

Locomotive objects come and go with the locomotives. The server runs on its own event
loop in a thread; the plant service hands it each look's state and the outbox's
messages (a sink like MQTT: triggered events move its cursor).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from asyncua import Node, Server, ua
from asyncua.crypto.permission_rules import User, UserRole
from asyncua.server.user_managers import UserManager

from cloud.plant.alerts import FacilityNow
from cloud.plant.config import OpcUaSettings
from cloud.plant.outbox import OutboxItem
from locowatch.facility.config import FacilityConfig

log = logging.getLogger(__name__)
NAMESPACE = "urn:locowatch"
CALL_TIMEOUT_S = 30.0
LOCO_VARIABLES = {  # node name -> (snapshot field, OPC UA type)
    "Track": ("track", ua.VariantType.String),
    "TailM": ("tail_m", ua.VariantType.Double),
    "HeadM": ("head_m", ua.VariantType.Double),
    "Station": ("station", ua.VariantType.String),
    "Series": ("series", ua.VariantType.String),
    "Plate": ("plate", ua.VariantType.String),
    "Since": ("since", ua.VariantType.DateTime),
    "Stale": ("stale", ua.VariantType.Boolean),
}
_TEXT = ua.VariantType.String
EVENT_FIELDS = {
    "LocomotiveEventType": [
        (name, _TEXT)
        for name in ("Key", "Flow", "Kind", "LocomotiveId", "Track", "Station", "Series", "Plate")
    ],
    "AlertEventType": [
        (name, _TEXT) for name in ("Key", "Flow", "State", "Rule", "Subject", "AlertSeverity")
    ],
}


class UsersFileManager(UserManager):
    """OPC UA logins from the dashboard's users file (argon2 hashes): users whose grants
    cover every facility this server publishes."""

    def __init__(self, settings: OpcUaSettings, facilities: list[str]) -> None:
        from dashboard.auth import UsersFile

        assert settings.users_file is not None
        self.users = UsersFile(settings.users_file)
        self.facilities = facilities

    def get_user(
        self, iserver: Any, username: str | None = None, password: str | None = None,
        certificate: Any = None,
    ) -> User | None:  # fmt: skip
        from dashboard.users import verify_password

        user = self.users.get(username or "")
        if user is None or not all(user.sees(f) for f in self.facilities):
            verify_password(None, password or "")  # as slow as a real check
            log.warning("OPC UA login refused: %s", username)
            return None
        if not verify_password(user, password or ""):
            log.warning("OPC UA login refused: %s (wrong password)", username)
            return None
        return User(role=UserRole.User, name=username)


class OpcUaSink:
    name = "opcua"

    def __init__(
        self,
        settings: OpcUaSettings,
        facilities: dict[str, FacilityConfig],
        flows: Callable[[FacilityConfig], list[str]],
        silent_after: timedelta,
    ) -> None:
        self.settings = settings
        self.facilities = facilities
        self.flows = flows
        self.silent_after = silent_after
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="opcua", daemon=True)
        self.server: Server | None = None
        self.idx = 0
        self._nodes: dict[str, Node] = {}  # path -> node
        self._values: dict[str, Any] = {}  # path -> value written
        self._event_types: dict[str, Node] = {}

    # -- lifecycle (the plant service's thread) ---------------------------------------------

    def start(self) -> None:
        self._thread.start()
        self._call(self._start())
        log.info("OPC UA server on %s (%s)", self.settings.endpoint, self.settings.security)

    def stop(self) -> None:
        if self.server is not None:
            self._call(self.server.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)

    def update(self, current: FacilityNow) -> None:
        self._call(self._update(current))

    def deliver(self, items: Sequence[OutboxItem]) -> int | None:
        result: int | None = self._call(self._trigger(items))
        return result

    def _call(self, coroutine: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(CALL_TIMEOUT_S)

    # -- the server (its loop) ----------------------------------------------------------------

    async def _start(self) -> None:
        manager = (
            UsersFileManager(self.settings, list(self.facilities))
            if self.settings.users_file
            else None
        )
        server = Server(user_manager=manager)
        await server.init()
        server.set_endpoint(self.settings.endpoint)
        server.set_server_name("locowatch")
        await server.set_application_uri(self.settings.application_uri)
        if self.settings.security == "sign_and_encrypt":
            assert self.settings.certificate_file and self.settings.private_key_file
            certificate, key = self.settings.certificate_file, self.settings.private_key_file
            await server.load_certificate(str(certificate), format=_format(certificate))
            await server.load_private_key(str(key), format=_format(key))
            server.set_security_policy([ua.SecurityPolicyType.Basic256Sha256_SignAndEncrypt])
        else:
            server.set_security_policy([ua.SecurityPolicyType.NoSecurity])
        server.set_identity_tokens(
            [ua.UserNameIdentityToken] if manager else [ua.AnonymousIdentityToken]
        )
        self.idx = await server.register_namespace(NAMESPACE)
        for name, fields in EVENT_FIELDS.items():
            self._event_types[name] = await server.create_custom_event_type(
                self.idx, name, ua.ObjectIds.BaseEventType, fields
            )
        for facility_id, facility in self.facilities.items():
            await self._build(server, facility_id, facility)
        await server.start()
        self.server = server

    async def _build(self, server: Server, fid: str, facility: FacilityConfig) -> None:
        node = await server.nodes.objects.add_object(self.idx, fid)
        await node.set_event_notifier([ua.EventNotifier.SubscribeToEvents])
        self._nodes[fid] = node
        await self._variable(fid, "Name", facility.facility.name, ua.VariantType.String)
        for flow in self.flows(facility):
            self._nodes[f"{fid}/{flow}"] = await node.add_object(self.idx, flow)
            for name, kind in (("Count", ua.VariantType.Int32), ("Stale", ua.VariantType.Int32)):
                await self._variable(f"{fid}/{flow}", name, 0, kind)
            await self._variable(f"{fid}/{flow}", "UpdatedAt", None, ua.VariantType.DateTime)
            await self._folder(f"{fid}/{flow}", "Locomotives")
            await self._folder(f"{fid}/{flow}", "Tracks")
            for track in facility.tracks:
                await self._object(f"{fid}/{flow}/Tracks", track.id)
                path = f"{fid}/{flow}/Tracks/{track.id}"
                await self._variable(path, "Count", 0, ua.VariantType.Int32)
                await self._variable(path, "Locomotives", [], ua.VariantType.String)
        await self._folder(fid, "Health")
        await self._folder(f"{fid}/Health", "Cameras")
        await self._folder(f"{fid}/Health", "Gateways")
        for camera in facility.cameras:
            await self._object(f"{fid}/Health/Cameras", camera.id)
            path = f"{fid}/Health/Cameras/{camera.id}"
            await self._variable(path, "LastReport", None, ua.VariantType.DateTime)
            await self._variable(path, "Silent", True, ua.VariantType.Boolean)

    async def _folder(self, parent: str, name: str) -> None:
        self._nodes[f"{parent}/{name}"] = await self._nodes[parent].add_folder(self.idx, name)

    async def _object(self, parent: str, name: str) -> Node:
        node = await self._nodes[parent].add_object(self.idx, name)
        self._nodes[f"{parent}/{name}"] = node
        return node

    async def _variable(self, parent: str, name: str, value: Any, kind: ua.VariantType) -> None:
        path = f"{parent}/{name}"
        variant = ua.Variant(value, kind, is_array=isinstance(value, list) or None)
        self._nodes[path] = await self._nodes[parent].add_variable(self.idx, name, variant)
        self._values[path] = value

    async def _set(self, path: str, value: Any, kind: ua.VariantType) -> None:
        if self._values.get(path, object()) == value:
            return
        is_array = isinstance(value, list)
        await self._nodes[path].write_value(ua.Variant(value, kind, is_array=is_array or None))
        self._values[path] = value

    async def _update(self, current: FacilityNow) -> None:
        fid = current.facility_id
        for flow, (time, locos) in current.states.items():
            base = f"{fid}/{flow}"
            if base not in self._nodes:
                continue
            await self._set(f"{base}/Count", len(locos), ua.VariantType.Int32)
            await self._set(
                f"{base}/Stale", sum(bool(x.get("stale")) for x in locos), ua.VariantType.Int32
            )
            await self._set(f"{base}/UpdatedAt", _utc(time), ua.VariantType.DateTime)
            await self._locomotives(base, locos)
            for track in self.facilities[fid].tracks:
                on_track = sorted(
                    (x for x in locos if x["track"] == track.id), key=lambda x: x["tail_m"]
                )
                path = f"{base}/Tracks/{track.id}"
                await self._set(f"{path}/Count", len(on_track), ua.VariantType.Int32)
                await self._set(
                    f"{path}/Locomotives", [x["id"] for x in on_track], ua.VariantType.String
                )
        now = datetime.now(UTC)
        for camera, last in current.cameras.items():
            path = f"{fid}/Health/Cameras/{camera}"
            if path in self._nodes:
                await self._set(f"{path}/LastReport", last, ua.VariantType.DateTime)
                silent = last is None or now - last > self.silent_after
                await self._set(f"{path}/Silent", silent, ua.VariantType.Boolean)
        for gateway, last_batch in current.gateways.items():
            path = f"{fid}/Health/Gateways/{gateway}"
            if path not in self._nodes:
                await self._object(f"{fid}/Health/Gateways", gateway)
                await self._variable(path, "LastBatch", last_batch, ua.VariantType.DateTime)
            await self._set(f"{path}/LastBatch", last_batch, ua.VariantType.DateTime)

    async def _locomotives(self, base: str, locos: list[dict[str, Any]]) -> None:
        folder = f"{base}/Locomotives"
        present = set()
        for loco in locos:
            path = f"{folder}/{loco['id']}"
            present.add(path)
            if path not in self._nodes:
                await self._object(folder, loco["id"])
                for name, (field, kind) in LOCO_VARIABLES.items():
                    await self._variable(path, name, _value(loco, field), kind)
                continue
            for name, (field, kind) in LOCO_VARIABLES.items():
                await self._set(f"{path}/{name}", _value(loco, field), kind)
        for path in [
            p
            for p in self._nodes
            if p.startswith(folder + "/") and p.count("/") == folder.count("/") + 1
        ]:
            if path not in present:  # it left the depot: its object goes
                assert self.server is not None
                await self.server.delete_nodes([self._nodes[path]], recursive=True)
                for gone in [p for p in self._nodes if p == path or p.startswith(path + "/")]:
                    self._nodes.pop(gone)
                    self._values.pop(gone, None)

    async def _trigger(self, items: Sequence[OutboxItem]) -> int | None:
        assert self.server is not None
        last = None
        for item in items:
            emitter = self._nodes.get(item.facility_id)
            if emitter is not None:
                await self._event(emitter, item)
            last = item.id
        return last

    async def _event(self, emitter: Node, item: OutboxItem) -> None:
        assert self.server is not None
        message = item.payload
        kind = "LocomotiveEventType" if item.kind == "event" else "AlertEventType"
        generator = await self.server.get_event_generator(self._event_types[kind], emitter.nodeid)
        event = generator.event
        event.Key, event.Flow = item.key, item.flow
        if item.kind == "event":
            loco = message["locomotive"]
            event.Kind, event.LocomotiveId, event.Track = message["kind"], loco["id"], loco["track"]
            event.Station, event.Series, event.Plate = (
                loco["station"],
                loco["series"],
                loco["plate"],
            )
            text = f"{loco['id']} {message['kind']} on {loco['track']}"
            severity = 100
        else:
            alert = message["alert"]
            event.State, event.Rule, event.Subject = (
                message["state"],
                alert["rule"],
                alert["subject"],
            )
            event.AlertSeverity = alert["severity"]
            text = f"{message['state']}: {alert['message']}"
            severity = {"info": 200, "warning": 500, "critical": 800}[alert["severity"]]
        event.Severity = severity
        await generator.trigger(time_attr=_parse(message["time"]), message=text)


def _format(path: Path) -> str:
    """PEM or DER by the content (asyncua guesses by the file name's extension only)."""
    return "pem" if path.read_bytes().lstrip().startswith(b"-----BEGIN") else "der"


def _value(loco: dict[str, Any], field: str) -> Any:
    value = loco.get(field)
    if field == "since" and value is not None:
        return _utc(float(value))
    if field in ("tail_m", "head_m"):
        return round(float(value or 0.0), 2)
    if field == "stale":
        return bool(value)
    return value


def _utc(t: float) -> datetime:
    return datetime.fromtimestamp(t, UTC)


def _parse(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))
