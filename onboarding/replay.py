"""Replay a recording through every flow of a facility file: the gateway's processing
(``edge.replay``) and each flow's facility state estimator (``cloud.fse``), as fast as
the machine allows, into a JSONL state stream and, optionally, a database.

The state of a replay is the state the live system would have given on the same footage,
up to the live run's timing (under load, a live estimator loses packets a replay never
loses). A data scientist scores a model version on a recorded day with it, or compares
two flows: ``locowatch eval`` and the reports read what it writes.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import psycopg
from tqdm import tqdm

from cloud.fse.estimator import FacilityStateEstimator, Snapshot, Tick
from cloud.fse.offline import fuse_flows, store_offline
from cloud.records import Rejected
from cloud.store import Store
from cloud.validation import FacilityCatalog, Validator
from dashboard.comparison import Disagreement, disagreement
from edge.capture.frames import CapturedFrame
from edge.recordings import RecordingManifest, load_manifest, recorded_frames
from edge.replay import GatewayReplay, replay
from locowatch.errors import UsageError
from locowatch.facility.config import FacilityConfig
from locowatch.v1 import uplink_pb2
from onboarding.estimations import read_estimations, writing

log = logging.getLogger(__name__)

STEP_S = 0.5  # frames this close in time are processed together (batched), as live
GATEWAY_ID = "replay"


@dataclass
class FlowComparison:
    """How a flow disagrees with the first flow replayed, over the snapshots both have."""

    snapshots: int = 0
    same_count: int = 0  # snapshots where both hold as many locomotives
    pairs: int = 0  # locomotives both hold (paired by overlap)
    end_difference_sum_m: float = 0.0  # over the ends of those pairs
    identity_mismatches: int = 0  # pairs both name, differently (series or plate)

    def add(self, result: Disagreement) -> None:
        self.snapshots += 1
        self.same_count += result.count_difference == 0
        self.pairs += result.paired
        if result.end_error_m is not None:
            self.end_difference_sum_m += result.end_error_m * result.paired
        self.identity_mismatches += result.identity_mismatches

    @property
    def mean_end_difference_m(self) -> float | None:
        return self.end_difference_sum_m / self.pairs if self.pairs else None


@dataclass
class ReplaySummary:
    frames: int = 0
    frames_refused: int = 0
    estimations: int = 0
    rejected: dict[str, int] = field(default_factory=dict)  # by reason, as ingest counts
    snapshots: dict[str, int] = field(default_factory=dict)  # per flow
    # each flow but the first against the first, snapshot by snapshot
    compared: dict[str, FlowComparison] = field(default_factory=dict)
    recorded_s: float = 0.0  # capture time from the first frame to the last
    wall_s: float = 0.0

    @property
    def speed(self) -> float:
        """Recorded seconds per second of replay."""
        return self.recorded_s / self.wall_s if self.wall_s > 0 else 0.0


def replay_recording(
    config: FacilityConfig,
    folder: Path,
    state_path: Path,
    flows: Sequence[str] | None = None,
    db_url: str | None = None,
    progress: bool = True,
    estimations_path: Path | None = None,
) -> ReplaySummary:
    """Replay ``folder`` through ``flows`` (all of the file's by default); the state
    snapshots of every flow go to ``state_path``, one JSON line each, with ``db_url``
    the estimations, snapshots and events into that (migrated) database as well, and
    with ``estimations_path`` every estimation into that file (``fuse_estimations``)."""
    manifest = load_manifest(folder)
    flows = _flows(config, flows)
    config = config.model_copy(update={"flows": [f for f in config.flows if f.name in flows]})
    fps = _cameras(config, manifest)
    summary = ReplaySummary()
    started = time.monotonic()
    gateway = GatewayReplay(config)
    frames = recorded_frames(folder, manifest, fps)
    counted = _progress(frames, progress)
    envelopes = _counted(replay(gateway, counted, STEP_S), summary)
    with contextlib.ExitStack() as stack:
        stack.callback(gateway.close)
        stack.callback(frames.close)
        if estimations_path is not None:
            envelopes = writing(stack.enter_context(estimations_path.open("wb")), envelopes)
        out = stack.enter_context(state_path.open("w", encoding="utf-8"))
        if db_url is None:
            _fuse(config, flows, envelopes, out, summary)
        else:
            _store(config, flows, envelopes, out, summary, db_url, manifest)
    summary.frames, summary.frames_refused = gateway.frames, gateway.frames_refused
    summary.wall_s = time.monotonic() - started
    return summary


def fuse_estimations(
    config: FacilityConfig,
    estimations_path: Path,
    state_path: Path,
    flows: Sequence[str] | None = None,
) -> ReplaySummary:
    """The flows' state estimators over a replay's estimations file, with ``config``'s FSE
    settings: the state snapshots go to ``state_path`` as a replay writes them."""
    flows = _flows(config, flows)
    summary = ReplaySummary()
    started = time.monotonic()
    envelopes = _counted(read_estimations(estimations_path), summary)
    with state_path.open("w", encoding="utf-8") as out:
        _fuse(config, flows, envelopes, out, summary)
    summary.wall_s = time.monotonic() - started
    return summary


def _flows(config: FacilityConfig, flows: Sequence[str] | None) -> list[str]:
    names = [f.name for f in config.flows]
    unknown = sorted(set(flows or ()) - set(names))
    if unknown:
        raise UsageError(f"no flow {', '.join(unknown)} in the facility file; it has {names}")
    return list(flows) if flows else names


def _cameras(config: FacilityConfig, manifest: RecordingManifest) -> dict[str, float]:
    """The recorded cameras the facility file knows, at the fps it sets for each."""
    known = {c.id: c.fps for c in config.cameras}
    strangers = sorted(set(manifest.cameras) - set(known))
    if strangers:
        log.warning("recorded cameras not in the facility file, not replayed: %s", strangers)
    unrecorded = sorted(set(known) - set(manifest.cameras))
    if unrecorded:
        log.warning("cameras not in the recording (their views are not judged): %s", unrecorded)
    fps = {c: rate for c, rate in known.items() if c in manifest.cameras}
    if not fps:
        raise UsageError("the recording has none of the facility file's cameras")
    return fps


def _progress(frames: Iterator[CapturedFrame], show: bool) -> Iterator[CapturedFrame]:
    """Frames through a progress bar in recorded seconds (the videos' lengths are not known
    without reading them: the bar counts time, not frames)."""
    bar = tqdm(desc="replaying", unit=" recorded s", disable=not show)
    first = None
    with bar:
        for frame in frames:
            first = frame.capture_time if first is None else first
            bar.update(max(0.0, frame.capture_time - first - bar.n))
            yield frame


def _counted(
    envelopes: Iterable[uplink_pb2.Envelope], summary: ReplaySummary
) -> Iterator[uplink_pb2.Envelope]:
    first = last = None
    for envelope in envelopes:
        summary.estimations += 1
        which = envelope.WhichOneof("payload")
        if which in ("position", "attribute"):
            at = getattr(envelope, which).capture_time.ToNanoseconds() / 1e9
            first = at if first is None else min(first, at)
            last = at if last is None else max(last, at)
            summary.recorded_s = last - first
        yield envelope


def _fuse(
    config: FacilityConfig,
    flows: Sequence[str],
    envelopes: Iterable[uplink_pb2.Envelope],
    out: IO[str],
    summary: ReplaySummary,
) -> None:
    """Each flow's FSE over the estimations, validated as ingest validates them."""
    fses = {flow: FacilityStateEstimator(config, flow) for flow in flows}
    validator = Validator(FacilityCatalog.from_config(config), GATEWAY_ID)
    write = _StateWriter(out, flows, summary)
    for _, ticks in fuse_flows(fses, envelopes, validator, lambda r: _reject(r, summary)):
        write(ticks)


def _store(
    config: FacilityConfig,
    flows: Sequence[str],
    envelopes: Iterable[uplink_pb2.Envelope],
    out: IO[str],
    summary: ReplaySummary,
    db_url: str,
    manifest: RecordingManifest,
) -> None:
    """As ``_fuse``, and everything written to the database as ingest would write it."""
    since = min(c.first_frame_time for c in manifest.cameras.values())
    _refuse_mixing(db_url, config.facility.id, flows, since.timestamp())
    store = Store(db_url, max_connections=2)
    store.open()
    try:
        store_offline(
            store, config, flows, envelopes, GATEWAY_ID,
            on_ticks=_StateWriter(out, flows, summary),
            on_reject=lambda record: _reject(record, summary),
        )  # fmt: skip
    finally:
        store.close()


def _refuse_mixing(db_url: str, facility_id: str, flows: Sequence[str], since: float) -> None:
    """A replay's state must not land among a live system's: same facility, flows and time."""
    try:
        with psycopg.connect(db_url, connect_timeout=10) as conn:
            row = conn.execute(
                "SELECT min(time) FROM state_snapshots WHERE facility_id = %s "
                "AND flow = ANY(%s) AND time >= to_timestamp(%s)",
                (facility_id, list(flows), since),
            ).fetchone()
    except psycopg.Error as error:
        raise UsageError(f"cannot use the database: {error}") from None
    if row and row[0] is not None:
        raise UsageError(
            f"the database already holds state of facility {facility_id}, flows "
            f"{', '.join(flows)}, from {row[0]:%Y-%m-%d %H:%M:%S} on, within the recording's "
            "time: replay into another database, so that the recorded day mixes with nothing"
        )


def _reject(record: Rejected, summary: ReplaySummary) -> None:
    summary.rejected[record.reason] = summary.rejected.get(record.reason, 0) + 1
    log.warning("estimation rejected (%s): %s", record.reason, record.detail)


class _StateWriter:
    """Writes every flow's snapshots to the stream and compares each flow's with the first
    flow's of the same second as soon as both are there (flows tick on the same seconds)."""

    def __init__(self, out: IO[str], flows: Sequence[str], summary: ReplaySummary) -> None:
        self.out = out
        self.first, *self.others = flows
        self.summary = summary
        summary.compared.update({flow: FlowComparison() for flow in self.others})
        self.waiting: dict[float, dict[str, list[dict[str, Any]]]] = {}

    def __call__(self, ticks: Iterable[Tick]) -> None:
        for tick in ticks:
            line = snapshot_line(tick.snapshot)
            self.out.write(json.dumps(line, ensure_ascii=False) + "\n")
            flow = tick.snapshot.flow
            self.summary.snapshots[flow] = self.summary.snapshots.get(flow, 0) + 1
            if self.others:
                self._compare(tick.snapshot.time, flow, line["locomotives"])

    def _compare(self, at: float, flow: str, locos: list[dict[str, Any]]) -> None:
        moment = self.waiting.setdefault(at, {})
        moment[flow] = locos
        if len(moment) < 1 + len(self.others):
            return
        del self.waiting[at]
        for other in self.others:
            self.summary.compared[other].add(disagreement(moment[self.first], moment[other]))


def snapshot_line(snapshot: Snapshot) -> dict[str, Any]:
    """A snapshot as a line of a state stream (``locowatch eval --state`` reads them)."""
    return {
        "time": snapshot.time,
        "facility": snapshot.facility_id,
        "flow": snapshot.flow,
        "locomotives": [loco.to_json() for loco in snapshot.locomotives],
    }
