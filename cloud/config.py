"""The cloud ingest config (``cloud.yaml``): where to listen, TLS, facilities, gateways.

Gateway tokens are never stored, only their SHA-256 (``locowatch cloud token`` makes a
token and prints the line to add), so the file can live in a repository or a secret
store without leaking credentials. Each token is bound to one gateway and one facility.

    version: 1
    listen: 0.0.0.0:50051
    metrics_port: 9464
    tls: {cert_file: tls/ingest.crt, key_file: tls/ingest.key}   # omit only on loopback
    facilities: [facilities/depot.yaml]
    gateways:
      - {id: gw-depot-1, facility: depot, token_sha256: 9f86d0...}

To rotate a token without a gap, list the new hash beside the old one, restart ingest,
give the gateway its new token file (read at its next connect), then drop the old hash.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import Field, ValidationError, model_validator

from cloud.plant.config import PlantSettings
from locowatch.errors import UsageError
from locowatch.facility.config import ConfigPath, FacilityConfig, Identifier, Section


class TlsSettings(Section):
    cert_file: ConfigPath = Field(description="PEM server certificate (chain).")
    key_file: ConfigPath = Field(description="PEM private key of the certificate.")
    client_ca_file: ConfigPath | None = Field(
        default=None, description="PEM CA that signs gateway client certificates, if used."
    )
    require_client_cert: bool = Field(
        default=False, description="Refuse gateways without a client certificate from that CA."
    )

    @model_validator(mode="after")
    def _ca_for_client_certs(self) -> TlsSettings:
        if self.require_client_cert and self.client_ca_file is None:
            raise ValueError("require_client_cert needs client_ca_file")
        return self


Sha256Hex = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]


class GatewayEntry(Section):
    id: Identifier
    facility: Identifier = Field(description="The facility this gateway may write to.")
    token_sha256: Sha256Hex | list[Sha256Hex] = Field(
        description="SHA-256 hex of the token; while a token is rotated, a list of the new "
        "and the old one (both accepted until the old one is removed).",
    )

    @property
    def token_hashes(self) -> list[str]:
        hashes = self.token_sha256
        return [hashes] if isinstance(hashes, str) else hashes

    @model_validator(mode="after")
    def _some_token(self) -> GatewayEntry:
        if not self.token_hashes:
            raise ValueError("token_sha256 is empty: the gateway could never connect")
        return self


class Limits(Section):
    max_batch_envelopes: int = Field(default=5000, ge=1, le=100_000)
    max_message_mb: float = Field(default=16, gt=0, le=256, description="gRPC message cap.")
    hello_timeout_s: float = Field(default=10, gt=0)


class Retention(Section):
    raw_days: int = Field(default=30, ge=1, description="Raw estimations and camera health.")
    snapshot_days: int = Field(
        default=14, ge=1, description="1 Hz state snapshots: the live view, eval and replays."
    )
    state_days: int = Field(
        default=730, ge=1, description="Events, stays, visits, spans and hourly roll-ups."
    )


class CloudConfig(Section):
    version: Literal[1]
    listen: str = Field(default="127.0.0.1:50051", pattern=r"^[A-Za-z0-9_.\-\[\]:]+:\d{1,5}$")
    metrics_port: int | None = Field(default=9464, ge=0, le=65535, description="0: any free.")
    fse_metrics_port: int | None = Field(
        default=9465, ge=0, le=65535, description="Metrics of the FSE process (snapshots)."
    )
    tls: TlsSettings | None = Field(default=None, description="Absent: plaintext (loopback).")
    facilities: list[ConfigPath] = Field(min_length=1, description="Facility YAML files.")
    gateways: list[GatewayEntry] = Field(default_factory=list)
    limits: Limits = Field(default_factory=Limits)
    retention: Retention = Field(default_factory=Retention)
    db_connections: int = Field(default=4, ge=1, le=64)
    plant: PlantSettings | None = Field(
        default=None, description="MQTT, webhooks and alerts (locowatch cloud plant)."
    )

    @model_validator(mode="after")
    def _unique_gateways(self) -> CloudConfig:
        ids = [g.id for g in self.gateways]
        if len(ids) != len(set(ids)):
            raise ValueError("gateway ids must be unique")
        hashes = [h for g in self.gateways for h in set(g.token_hashes)]
        if len(hashes) != len(set(hashes)):
            raise ValueError("two gateways share a token")
        return self


def token_sha256(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def load_cloud_config(path: str | Path) -> CloudConfig:
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise UsageError(f"{path}: {exc}") from exc
    try:
        return CloudConfig.model_validate(data, context={"base_dir": path.parent})
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or '(top level)'}: {e['msg']}" for e in exc.errors()
        )
        raise UsageError(f"{path}: {problems}") from exc


def load_facilities(config: CloudConfig) -> dict[str, FacilityConfig]:
    """Every facility of the config by id; each gateway's facility must be among them."""
    from locowatch.facility.loading import load_facility_without_secrets

    facilities: dict[str, FacilityConfig] = {}
    for path in config.facilities:
        facility = load_facility_without_secrets(path)
        if facility.facility.id in facilities:
            raise UsageError(f"{path}: facility {facility.facility.id!r} is listed twice")
        facilities[facility.facility.id] = facility
    for gateway in config.gateways:
        if gateway.facility not in facilities:
            raise UsageError(
                f"gateway {gateway.id!r}: facility {gateway.facility!r} is not among the "
                f"configured facilities ({', '.join(sorted(facilities))})"
            )
    return facilities
