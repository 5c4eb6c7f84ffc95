"""The ``plant:`` section of ``cloud.yaml``: where results go, and the alert rules.

    plant:
      flows: [prod]                      # default: every flow of every facility
      mqtt: {host: broker.plant.lan, port: 8883, tls: true, ca_file: tls/plant-ca.crt,
             username: locowatch, password_env: LW_MQTT_PASSWORD, topic_prefix: locowatch}
      webhooks:
        - {name: mes, url: "https://mes.plant.lan/hooks/locowatch", secret_env: LW_MES_SECRET}
      alerts:
        - {name: long-dwell, kind: dwell, max_hours: 48, severity: warning}
        - {name: camera-dark, kind: camera_silent, after_minutes: 10}
        - {name: gateway-silent, kind: gateway_silent, after_minutes: 5, severity: critical}
        - {name: wrong-track, kind: unplanned_track, allowed: {"ТЭП70": [T1, T2]}}
        - {name: flows-disagree, kind: flow_disagreement, flows: [prod, dev], for_minutes: 10}

Secrets by reference only (``*_env``, ``*_file``), like camera logins.
"""

from __future__ import annotations

import os
from typing import Annotated, Literal

from pydantic import Field, model_validator

from locowatch.facility.config import ConfigPath, Identifier, Section

Severity = Literal["info", "warning", "critical"]
MessageKind = Literal["event", "alert"]


class SecretRef(Section):
    """A secret named, not written: an environment variable or a file (first line)."""

    env: str | None = Field(default=None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    file: ConfigPath | None = None

    @model_validator(mode="after")
    def _one(self) -> SecretRef:
        if (self.env is None) == (self.file is None):
            raise ValueError("give env or file")
        return self

    def read(self) -> str:
        if self.env is not None:
            value = os.environ.get(self.env)
            if not value:
                raise ValueError(f"environment variable {self.env} is not set")
            return value
        assert self.file is not None
        try:
            lines = self.file.read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            raise ValueError(f"cannot read {self.file}: {exc.strerror}") from None
        if not lines or not lines[0]:
            raise ValueError(f"{self.file} is empty")
        return lines[0]


class MqttSettings(Section):
    host: str = Field(min_length=1)
    port: int = Field(default=1883, ge=1, le=65535)
    tls: bool = Field(default=False, description="TLS to the broker (port 8883 by custom).")
    ca_file: ConfigPath | None = Field(default=None, description="CA of the broker's certificate.")
    username: str | None = None
    password: SecretRef | None = None
    topic_prefix: str = Field(default="locowatch", pattern=r"^[^#+\s]+$")
    client_id: str = Field(default="locowatch-plant", min_length=1)
    keepalive_s: int = Field(default=30, ge=5, le=3600)


class WebhookSettings(Section):
    name: Identifier
    url: str = Field(pattern=r"^https?://")
    secret: SecretRef = Field(description="HMAC-SHA256 key of the X-Locowatch-Signature header.")
    kinds: tuple[MessageKind, ...] = ("event", "alert")
    timeout_s: float = Field(default=10.0, gt=0, le=120)


class OpcUaSettings(Section):
    endpoint: str = Field(default="opc.tcp://0.0.0.0:4840/locowatch/", pattern=r"^opc\.tcp://")
    security: Literal["none", "sign_and_encrypt"] = Field(
        default="none",
        description="none: plain (a closed plant network only); sign_and_encrypt: "
        "Basic256Sha256 with certificate_file and private_key_file.",
    )
    certificate_file: ConfigPath | None = Field(
        default=None,
        description="DER or PEM; its subjectAltName holds application_uri as a URI.",
    )
    application_uri: str = Field(default="urn:locowatch:plant", min_length=1)
    private_key_file: ConfigPath | None = None
    users_file: ConfigPath | None = Field(
        default=None,
        description="The dashboard's users file: its users whose grants cover every "
        "facility served may log in with their password; absent: anonymous only.",
    )

    @model_validator(mode="after")
    def _certificate(self) -> OpcUaSettings:
        if self.security != "none" and not (self.certificate_file and self.private_key_file):
            raise ValueError("sign_and_encrypt needs certificate_file and private_key_file")
        return self


class DwellRule(Section):
    """A locomotive standing longer than ``max_hours`` (at ``station``, of ``series``)."""

    name: Identifier
    kind: Literal["dwell"]
    severity: Severity = "warning"
    max_hours: float = Field(gt=0)
    station: str | None = None
    series: str | None = None


class SilentRule(Section):
    """A camera (or a gateway) with no report for ``after_minutes``."""

    name: Identifier
    kind: Literal["camera_silent", "gateway_silent"]
    severity: Severity = "warning"
    after_minutes: float = Field(gt=0)


class UnplannedTrackRule(Section):
    """A locomotive of a listed series on a track not listed for it."""

    name: Identifier
    kind: Literal["unplanned_track"]
    severity: Severity = "warning"
    allowed: dict[str, list[str]] = Field(min_length=1, description="series -> its tracks")


class FlowDisagreementRule(Section):
    """Two flows counting differently for ``for_minutes`` (a dev flow gone astray)."""

    name: Identifier
    kind: Literal["flow_disagreement"]
    severity: Severity = "info"
    flows: tuple[Identifier, Identifier]
    for_minutes: float = Field(default=5, gt=0)


AlertRule = Annotated[
    DwellRule | SilentRule | UnplannedTrackRule | FlowDisagreementRule,
    Field(discriminator="kind"),
]


class PlantSettings(Section):
    flows: list[Identifier] | None = Field(
        default=None, description="Flows whose state and events are sent; default: all."
    )
    mqtt: MqttSettings | None = None
    webhooks: list[WebhookSettings] = Field(default_factory=list)
    opcua: OpcUaSettings | None = None
    alerts: list[AlertRule] = Field(default_factory=list)
    period_s: float = Field(default=1.0, gt=0, le=60, description="How often it looks.")
    metrics_port: int | None = Field(default=9466, ge=0, le=65535)

    @model_validator(mode="after")
    def _unique_names(self) -> PlantSettings:
        for what, names in (
            ("webhook", [w.name for w in self.webhooks]),
            ("alert rule", [r.name for r in self.alerts]),
        ):
            if len(names) != len(set(names)):
                raise ValueError(f"{what} names must be unique")
        return self

    @property
    def sinks(self) -> list[str]:
        """The outbox's consumers: each has its own cursor."""
        return (
            (["mqtt"] if self.mqtt else [])
            + [f"webhook:{w.name}" for w in self.webhooks]
            + (["opcua"] if self.opcua else [])
        )
