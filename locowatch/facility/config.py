"""The facility config: one YAML file describes a depot, its cameras, flows and gateway.

Both the edge and the cloud load the same file (``locowatch.facility.load_facility``).
Every section is a pydantic model with ``extra="forbid"`` so that a typo is an error, not
a silently ignored key; cross-field rules are named validators whose messages name the
track, station or camera at fault.

Coordinates: the facility frame is metric and right-handed, x and y on the floor, z up,
with the floor at z = 0; each track's rail head is ``rail_height_m`` above it (default 0).
A track is straight: metre 0 is at ``origin`` and metres grow along ``heading_deg``
(counter-clockwise from the facility x axis).
"""

from __future__ import annotations

import itertools
import math
import os
import re
from collections.abc import Mapping
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any, Literal, Self
from urllib.parse import quote, urlsplit, urlunsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    StringConstraints,
    ValidationInfo,
    field_validator,
    model_validator,
)

Identifier = Annotated[
    str,
    StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$"),
    Field(description="Letters, digits, '_', '.', '-'; at most 63 characters."),
]
Metres = Annotated[float, Field(allow_inf_nan=False)]
Point2 = tuple[Metres, Metres]
Point3 = tuple[Metres, Metres, Metres]


def _resolve_against_config(value: Path, info: ValidationInfo) -> Path:
    """Relative paths in a facility file are relative to the file, not the working dir."""
    base = (info.context or {}).get("base_dir")
    return value if value.is_absolute() or base is None else Path(base) / value


ConfigPath = Annotated[Path, AfterValidator(_resolve_against_config)]

SOURCE_SCHEMES = ("rtsp", "rtsps", "http", "https", "file", "sim")


class RuleError(ValueError):
    """A broken cross-field rule, with the location of the offending key.

    Pydantic reports errors of whole-model validators at the model's root; the loader
    uses ``loc`` to point the user at the right line of the YAML file instead.
    """

    def __init__(self, loc: tuple[str | int, ...], message: str) -> None:
        super().__init__(message)
        self.loc = loc


class Section(BaseModel):
    """Base of every config section: unknown keys are errors, values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class FacilityInfo(Section):
    id: Identifier = Field(description="Facility id; gateway tokens are bound to it.")
    name: str = Field(min_length=1, description="Human-readable name shown in the dashboard.")
    timezone: str = Field(
        default="UTC", description="IANA time zone for reports (e.g. 'Europe/Moscow')."
    )

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown IANA time zone {value!r}") from exc
        return value


TrackEnd = Literal["start", "end"]
TRACK_ENDS: tuple[TrackEnd, TrackEnd] = ("start", "end")


class Track(Section):
    id: Identifier
    length_m: float = Field(gt=0, le=5000, description="Usable length of the track in metres.")
    origin: Point2 = Field(description="Facility (x, y) of metre 0 on the track centreline.")
    heading_deg: float = Field(
        ge=-360, le=360, description="Direction of growing metres, degrees CCW from facility x."
    )
    gauge_m: float = Field(default=1.52, gt=0.5, lt=2.0, description="Rail gauge in metres.")
    rail_height_m: float = Field(
        default=0.0,
        ge=-3.0,
        le=3.0,
        description="Height of the rail head above the floor (z = 0 of the facility frame): "
        "bodies stand on the rail, people and equipment on the floor. Raised tracks over a "
        "pit are often 0.2-0.3 m up.",
    )
    doors: list[TrackEnd] = Field(
        default_factory=lambda: list(TRACK_ENDS),
        max_length=2,
        description="Ends of the track locomotives drive in and out through: 'start' (metre "
        "0), 'end' (length_m). Leave a dead end out: nothing leaves there.",
    )

    @field_validator("doors")
    @classmethod
    def _doors_once(cls, value: list[TrackEnd]) -> list[TrackEnd]:
        if len(set(value)) != len(value):
            raise ValueError(f"each end is a door once, got {value}")
        return value


class Station(Section):
    id: Identifier
    track: Identifier = Field(description="Id of the track the station lies on.")
    start_m: float = Field(ge=0, description="Start of the station along its track.")
    end_m: float = Field(gt=0, description="End of the station along its track.")

    @model_validator(mode="after")
    def _start_before_end(self) -> Station:
        if self.start_m >= self.end_m:
            raise ValueError(
                f"station {self.id!r}: start_m ({self.start_m}) must be below end_m ({self.end_m})"
            )
        return self


class Intrinsics(Section):
    """Pinhole camera matrix in pixels, for the configured resolution."""

    fx: float = Field(gt=0, description="Focal length along x, pixels.")
    fy: float = Field(gt=0, description="Focal length along y, pixels.")
    cx: float = Field(description="Principal point x, pixels.")
    cy: float = Field(description="Principal point y, pixels.")


class Resolution(Section):
    width: int = Field(gt=0, le=16384)
    height: int = Field(gt=0, le=16384)


class Pose(Section):
    """World-to-camera transform in OpenCV's convention (what ``cv2.solvePnP`` returns)."""

    rvec: Point3 = Field(description="Rodrigues rotation vector, world -> camera.")
    tvec: Point3 = Field(description="Translation, world -> camera, metres.")


class PointPair(Section):
    """A surveyed facility point and where it appears in the camera image."""

    image: Point2 = Field(description="Pixel (u, v) in the distorted camera image.")
    world: Point3 = Field(description="Facility (x, y, z) in metres.")


class TrackView(Section):
    """A stretch of one track that a camera sees."""

    track: Identifier
    start_m: float = Field(ge=0)
    end_m: float = Field(gt=0)

    @model_validator(mode="after")
    def _start_before_end(self) -> TrackView:
        if self.start_m >= self.end_m:
            raise ValueError(
                f"view of track {self.track!r}: start_m ({self.start_m}) must be below "
                f"end_m ({self.end_m})"
            )
        return self


DISTORTION_LENGTHS = (4, 5, 8, 12, 14)


class CameraCredentials(Section):
    """A camera's login, by reference: the password comes from an environment variable or
    a file on the gateway (a systemd credential, a compose or Kubernetes secret), so the
    facility file itself holds no secret and can be copied to the cloud and into a
    repository. Written into the stream URL only when the gateway opens it."""

    username: str | None = Field(default=None, min_length=1, description="The login name.")
    username_env: str | None = Field(
        default=None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$", description="... or its variable."
    )
    password_env: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z_][A-Za-z0-9_]*$",
        description="Environment variable holding the password.",
    )
    password_file: ConfigPath | None = Field(
        default=None, description="... or a file holding it (first line; relative to the config)."
    )

    @model_validator(mode="after")
    def _one_of_each(self) -> Self:
        if self.username is not None and self.username_env is not None:
            raise ValueError("give username or username_env, not both")
        if self.password_env is not None and self.password_file is not None:
            raise ValueError("give password_env or password_file, not both")
        if self.username is None and self.username_env is None:
            raise ValueError("give username or username_env")
        return self

    def resolve(self, environ: Mapping[str, str]) -> tuple[str, str | None]:
        """(username, password) on this machine; a clear error naming what is missing."""
        username = self.username or _from_env(environ, self.username_env or "")
        if self.password_env is not None:
            return username, _from_env(environ, self.password_env)
        if self.password_file is not None:
            try:
                lines = self.password_file.read_text(encoding="utf-8").splitlines()
            except OSError as exc:
                raise ValueError(
                    f"cannot read password_file {self.password_file}: {exc.strerror}"
                ) from exc
            if not lines or not lines[0]:
                raise ValueError(f"password_file {self.password_file} is empty")
            return username, lines[0]
        return username, None


def _from_env(environ: Mapping[str, str], name: str) -> str:
    value = environ.get(name)
    if not value:
        raise ValueError(f"environment variable {name} is not set")
    return value


class Camera(Section):
    id: Identifier
    source: str = Field(
        min_length=1,
        description="rtsp://, rtsps://, http(s)://, file:// URL, a video file path, or sim://. "
        "Without a password: give that in credentials.",
    )
    credentials: CameraCredentials | None = Field(
        default=None, description="The login, by reference (environment variable or file)."
    )
    fps: float = Field(default=2.0, gt=0, le=120, description="Frames per second to process.")
    watchdog_timeout_s: float = Field(
        default=10.0, gt=0, le=600, description="Reopen the stream after this long without a frame."
    )
    resolution: Resolution
    intrinsics: Intrinsics
    distortion: list[float] = Field(
        default_factory=lambda: [0.0] * 5,
        description="OpenCV distortion coefficients (k1, k2, p1, p2[, k3[, k4, k5, k6...]]).",
    )
    pose: Pose | None = Field(default=None, description="Known pose; or give point_pairs.")
    point_pairs: list[PointPair] | None = Field(
        default=None, description="At least 6 surveyed points; the pose is solved from them."
    )
    views: list[TrackView] = Field(min_length=1, description="Track stretches the camera sees.")

    @field_validator("source")
    @classmethod
    def _known_source(cls, value: str) -> str:
        scheme, sep, _ = value.partition("://")
        if sep and scheme.lower() not in SOURCE_SCHEMES:
            raise ValueError(
                f"unsupported source scheme {scheme!r}; use one of {', '.join(SOURCE_SCHEMES)} "
                "or a file path"
            )
        return value

    @model_validator(mode="after")
    def _one_login(self) -> Self:
        if self.credentials is not None and urlsplit(self.source).password is not None:
            raise ValueError("the source URL carries a password and credentials are given too")
        return self

    @property
    def inline_password(self) -> bool:
        """A password written into the source URL (accepted on a gateway, refused where
        facility files are copied to: the cloud)."""
        return "://" in self.source and urlsplit(self.source).password is not None

    def source_url(self, environ: Mapping[str, str] | None = None) -> str:
        """The URL to open: ``source`` with the referenced login written in. Raises
        ValueError naming the variable or file that is missing."""
        if self.credentials is None:
            return self.source
        try:
            username, password = self.credentials.resolve(
                os.environ if environ is None else environ
            )
        except ValueError as exc:
            raise ValueError(f"camera {self.id}: {exc}") from None
        parts = urlsplit(self.source)
        login = quote(username, safe="") + (f":{quote(password, safe='')}" if password else "")
        host = parts.netloc.rpartition("@")[2]
        return urlunsplit(parts._replace(netloc=f"{login}@{host}"))

    @field_validator("distortion")
    @classmethod
    def _distortion_shape(cls, value: list[float]) -> list[float]:
        if len(value) not in DISTORTION_LENGTHS:
            raise ValueError(
                f"expected {', '.join(map(str, DISTORTION_LENGTHS))} coefficients, got {len(value)}"
            )
        if not all(math.isfinite(v) for v in value):
            raise ValueError("coefficients must be finite numbers")
        return value

    @model_validator(mode="after")
    def _pose_or_point_pairs(self) -> Camera:
        if (self.pose is None) == (self.point_pairs is None):
            raise ValueError(f"camera {self.id!r}: give exactly one of 'pose' or 'point_pairs'")
        if self.point_pairs is not None and len(self.point_pairs) < 6:
            raise ValueError(
                f"camera {self.id!r}: point_pairs needs at least 6 points to solve the pose, "
                f"got {len(self.point_pairs)}"
            )
        return self

    @model_validator(mode="after")
    def _principal_point_inside(self) -> Camera:
        r, k = self.resolution, self.intrinsics
        if not (0 <= k.cx <= r.width and 0 <= k.cy <= r.height):
            raise ValueError(
                f"camera {self.id!r}: principal point ({k.cx}, {k.cy}) lies outside the "
                f"{r.width}x{r.height} image"
            )
        return self


Engine = Literal["auto", "tensorrt", "cpu"]


class EstimatorRef(Section):
    """Which model an estimator of a flow runs, and on what engine."""

    model: str = Field(
        min_length=1,
        description="Model name and version, e.g. 'position@1', resolved in the models folder.",
    )
    engine: Engine = Field(
        default="auto", description="auto: TensorRT when a GPU and TensorRT are present, else CPU."
    )
    max_batch: int = Field(default=16, ge=1, le=256, description="Largest inference batch.")
    batch_deadline_ms: float = Field(
        default=50, ge=0, le=5000, description="Longest wait to fill a batch."
    )
    cpu_threads: int = Field(
        default=1,
        ge=0,
        le=256,
        description="Threads of the CPU engine (0: one per core). Every estimator is its own "
        "process beside capture and the aggregator, so one each keeps them from fighting "
        "over the cores.",
    )
    accept: str | None = Field(
        default=None,
        description="Attribute estimators only: a regular expression a reading must match in "
        "full to be published (a plate's form, say). Any other reading is counted "
        "(locowatch_estimator_readings_refused_total) and logged, and never votes.",
    )

    @field_validator("accept")
    @classmethod
    def _accept_is_a_pattern(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"accept: {value!r} is not a regular expression: {exc}") from exc
        return value


class FseSettings(Section):
    """Facility state estimator settings of a flow (see docs/cloud.md for how each is used)."""

    snapshot_interval_s: float = Field(default=1.0, gt=0, le=60)
    observation_max_age_s: float = Field(
        default=2.0,
        gt=0,
        le=60,
        description="A camera's last estimation counts this long; after it, its view is unknown.",
    )
    join_gap_m: float = Field(
        default=0.5,
        ge=0,
        le=5,
        description="Intervals closer than this (with a cut end between them) are one body.",
    )
    max_occluded_m: float = Field(
        default=3.0,
        ge=0,
        le=20,
        description="A stretch hidden between two cut ends (a person, a crane) up to this long "
        "does not split a body.",
    )
    stale_after_s: float = Field(
        default=10, gt=0, description="Mark a locomotive stale when no camera confirmed it since."
    )
    depart_after_s: float = Field(
        default=20,
        gt=0,
        description="A locomotive seen gone from the middle of a track for this long has left "
        "(one that drives out past a track end leaves at once).",
    )
    min_locomotive_m: float = Field(
        default=12.0,
        ge=1,
        le=60,
        description="The shortest locomotive that enters the depot: a stretch no camera sees "
        "that is shorter cannot hold one, so one seen heading into it at a door has left.",
    )
    min_confidence: float = Field(default=0.5, ge=0, le=1)
    move_threshold_m: float = Field(
        default=1.0, gt=0, description="Moving further than this from where it stood is a move."
    )
    stop_after_s: float = Field(
        default=5.0, gt=0, description="Standing still this long after a move is a stop."
    )
    identify_min_votes: int = Field(
        default=3, ge=1, description="Readings needed before a series or plate is reported."
    )
    identify_min_share: float = Field(
        default=0.6,
        gt=0,
        le=1,
        description="Share of the votes the leading value needs; a known series needs it of "
        "the known series' votes only, and more votes than 'unknown'.",
    )


class Flow(Section):
    name: Identifier
    position: EstimatorRef
    attributes: dict[Identifier, EstimatorRef] = Field(
        default_factory=dict, description="Attribute estimators by name, e.g. model, plate."
    )
    fse: FseSettings = Field(default_factory=FseSettings)

    @model_validator(mode="after")
    def _position_reads_no_text(self) -> Self:
        if self.position.accept is not None:
            raise ValueError(
                f"flow {self.name!r}: 'accept' is for attribute estimators (a reading's form); "
                "the position estimator reports intervals"
            )
        return self


class CloudEndpoint(Section):
    endpoint: str = Field(
        pattern=r"^[A-Za-z0-9_.\-\[\]:]+:\d{1,5}$", description="host:port of cloud ingest."
    )
    tls: bool = Field(default=True, description="Use TLS; only turn off on a trusted loopback.")
    ca_file: ConfigPath | None = Field(
        default=None, description="CA bundle for the ingest certificate; system CAs when absent."
    )
    token_file: ConfigPath = Field(description="File holding this gateway's token (one line).")

    def read_token(self) -> SecretStr:
        """The gateway token, read when needed so that a rotated file takes effect."""
        try:
            token = self.token_file.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ValueError(f"cannot read token_file {self.token_file}: {exc.strerror}") from exc
        if not token:
            raise ValueError(f"token_file {self.token_file} is empty")
        return SecretStr(token)


class GatewayServices(Section):
    """Where the gateway's services listen: one gRPC port and one metrics port each.

    Ports are handed out in a fixed order from the two bases (aggregator, uplink, capture,
    then the estimators in the order the flows name them), so every process of a gateway
    finds the others from the facility file alone; ``locowatch edge plan`` prints them.
    """

    host: str = Field(default="127.0.0.1", description="Address the services bind and dial.")
    base_port: int = Field(default=50060, ge=1024, le=65000, description="First gRPC port.")
    metrics_base_port: int | None = Field(
        default=9460, ge=1024, le=65000, description="First Prometheus port; null turns it off."
    )
    locate_flow: Identifier | None = Field(
        default=None,
        description="Flow whose position estimator tells the aggregator where bodies are, so "
        "it cuts the series and plate crops there (every flow gets the same crops); default: "
        "the first flow.",
    )


class ChangeGating(Section):
    """Re-run a camera's packets only when its view changed (locomotives stand for hours)."""

    enabled: bool = True
    threshold: float = Field(
        default=4.0,
        gt=0,
        le=255,
        description="Grey-level change (0..255) of the most changed 0.4 m column of a strip "
        "(downscaled 4x) that counts as a change; below it the estimators repeat their last "
        "estimation.",
    )
    refresh_s: float = Field(
        default=30.0, gt=0, le=3600, description="Re-run a view at least this often anyway."
    )
    crop_refresh_s: float = Field(
        default=10.0,
        gt=0,
        le=3600,
        description="Read series and plates of a view whose bodies did not move at least this "
        "often (they are read at once when a body moves, comes or goes).",
    )


class UplinkSettings(Section):
    max_queue_mb: float = Field(
        default=1024,
        gt=0,
        description="Disk bound of the durable queue; past it the oldest "
        "envelopes are dropped and counted.",
    )
    batch_envelopes: int = Field(default=500, ge=1, le=10_000, description="Envelopes per batch.")
    window: int = Field(default=4, ge=1, le=64, description="Unacked batches in flight.")


class Gateway(Section):
    id: Identifier = Field(description="Gateway id, unique across all facilities.")
    cloud: CloudEndpoint
    data_dir: ConfigPath = Field(
        default=Path("var/gateway"),
        validate_default=True,
        description="Uplink queue and engine cache live here; relative to the config file.",
    )
    services: GatewayServices = Field(default_factory=GatewayServices)
    gating: ChangeGating = Field(default_factory=ChangeGating)
    uplink: UplinkSettings = Field(default_factory=UplinkSettings)
    frame_encoding: Literal["raw", "jpeg"] = Field(
        default="raw",
        description="Frames from capture to aggregator: raw pixels (cheapest on one host) or "
        "JPEG (when the aggregator runs on another machine).",
    )


class FacilityConfig(Section):
    """The whole facility file."""

    version: Literal[1] = Field(description="Config format version.")
    facility: FacilityInfo
    tracks: list[Track] = Field(min_length=1)
    stations: list[Station] = Field(default_factory=list)
    cameras: list[Camera] = Field(default_factory=list)
    flows: list[Flow] = Field(min_length=1)
    gateway: Gateway | None = Field(default=None, description="Only needed on an edge gateway.")

    @model_validator(mode="after")
    def _unique_ids(self) -> FacilityConfig:
        for section, key, ids in (
            ("tracks", "id", [t.id for t in self.tracks]),
            ("stations", "id", [s.id for s in self.stations]),
            ("cameras", "id", [c.id for c in self.cameras]),
            ("flows", "name", [f.name for f in self.flows]),
        ):
            seen: set[str] = set()
            for index, name in enumerate(ids):
                if name in seen:
                    raise RuleError((section, index, key), f"duplicate {key} {name!r}")
                seen.add(name)
        return self

    @model_validator(mode="after")
    def _stations_on_tracks(self) -> FacilityConfig:
        tracks = self.track_by_id
        for index, station in enumerate(self.stations):
            track = tracks.get(station.track)
            if track is None:
                raise RuleError(
                    ("stations", index, "track"),
                    f"station {station.id!r}: unknown track {station.track!r}",
                )
            if station.end_m > track.length_m:
                raise RuleError(
                    ("stations", index, "end_m"),
                    f"station {station.id!r}: end_m {station.end_m} is past the end of track "
                    f"{track.id!r} ({track.length_m} m)",
                )
        ordered = sorted(
            enumerate(self.stations), key=lambda item: (item[1].track, item[1].start_m)
        )
        for (_, first), (index, second) in itertools.pairwise(ordered):
            if first.track == second.track and second.start_m < first.end_m:
                raise RuleError(
                    ("stations", index, "start_m"),
                    f"stations {first.id!r} and {second.id!r} overlap on track {first.track!r}",
                )
        return self

    @model_validator(mode="after")
    def _camera_views_on_tracks(self) -> FacilityConfig:
        tracks = self.track_by_id
        for cam_index, camera in enumerate(self.cameras):
            for view_index, view in enumerate(camera.views):
                loc: tuple[str | int, ...] = ("cameras", cam_index, "views", view_index)
                track = tracks.get(view.track)
                if track is None:
                    raise RuleError(
                        (*loc, "track"), f"camera {camera.id!r}: views unknown track {view.track!r}"
                    )
                if view.end_m > track.length_m:
                    raise RuleError(
                        (*loc, "end_m"),
                        f"camera {camera.id!r}: view end_m {view.end_m} is past the end of "
                        f"track {track.id!r} ({track.length_m} m)",
                    )
        return self

    @model_validator(mode="after")
    def _locate_flow_known(self) -> FacilityConfig:
        flow = self.gateway.services.locate_flow if self.gateway else None
        if flow is not None and flow not in self.flow_by_name:
            raise RuleError(("gateway", "services", "locate_flow"), f"unknown flow {flow!r}")
        return self

    @property
    def locate_flow(self) -> str:
        """The flow whose positions place the attribute crops (see ``GatewayServices``)."""
        chosen = self.gateway.services.locate_flow if self.gateway else None
        return chosen or self.flows[0].name

    @property
    def track_by_id(self) -> dict[str, Track]:
        return {t.id: t for t in self.tracks}

    @property
    def camera_by_id(self) -> dict[str, Camera]:
        return {c.id: c for c in self.cameras}

    @property
    def flow_by_name(self) -> dict[str, Flow]:
        return {f.name: f for f in self.flows}

    def station_of(self, track_id: str, tail_m: float, head_m: float) -> str | None:
        """The station holding most of a body from ``tail_m`` to ``head_m``, if any.

        A locomotive stands at a station when at least half of its length lies inside it;
        otherwise (between stations, sticking out of the track) it is at none.
        """
        length = head_m - tail_m
        best, best_overlap = None, 0.0
        for station in self.stations_by_track.get(track_id, ()):
            overlap = min(head_m, station.end_m) - max(tail_m, station.start_m)
            if overlap > best_overlap:
                best, best_overlap = station.id, overlap
        return best if length > 0 and best_overlap >= 0.5 * length else None

    def stations_on(self, track_id: str) -> list[Station]:
        """Stations of one track, in order of growing metres."""
        return list(self.stations_by_track.get(track_id, ()))

    @cached_property
    def stations_by_track(self) -> dict[str, tuple[Station, ...]]:
        """Each track's stations in order of growing metres (the FSE asks many times a
        second; the config is immutable, so this is worked out once)."""
        return {
            t.id: tuple(sorted((s for s in self.stations if s.track == t.id), key=_start))
            for t in self.tracks
        }

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> Self:
        """A copy; with ``update``, what was worked out from the old fields is forgotten."""
        copied = super().model_copy(update=update, deep=deep)
        copied.__dict__.pop("stations_by_track", None)
        return copied


def _start(station: Station) -> float:
    return station.start_m
