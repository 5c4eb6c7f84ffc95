"""Record a twin run to disk: videos, calibration, ground truth and faults.

Layout of the output folder::

    facility.yaml          the installer's file: cameras calibrated from noisy point pairs
    facility.truth.yaml    the same with the true poses (for debugging, never for scoring)
    ground_truth.jsonl     one line per frame time: every locomotive, where, which cameras
    faults.jsonl           one line per camera fault (freeze, black, dropout)
    manifest.json          a recording's manifest (edge.recordings): each camera's video and
                           first frame time; the twin adds seed, window, fps
    video/<camera>.mp4     H.264, one per camera, constant frame rate from the window start

so ``locowatch replay`` plays the twin's footage as it plays a depot's recording.

A dropout cannot be represented in a constant-rate file: there the camera's frames are
black, and faults.jsonl says it was a dropout. Live and RTSP sources drop for real.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from dataclasses import asdict
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np

from edge.recordings import RecordedCamera, RecordingManifest, VideoWriter
from locowatch import __version__
from locowatch.facility.config import FacilityConfig
from locowatch.facility.loading import dump_facility
from sim.twin import Twin, TwinSpec
from sim.workers import per_camera

log = logging.getLogger(__name__)


def frame_times(duration_s: float, fps: float, start_s: float = 0.0) -> np.ndarray:
    """Scenario times of the frames from ``start_s`` until ``duration_s``."""
    return start_s + np.arange(0.0, duration_s - start_s, 1.0 / fps)


def write_facility(path: Path, config: FacilityConfig, header: str) -> None:
    path.write_text(dump_facility(config, header), encoding="utf-8")


def record(
    spec: TwinSpec,
    out: Path,
    fps: float,
    camera_ids: list[str] | None = None,
    jobs: int = 2,
    progress: bool = True,
    window: tuple[float, float] | None = None,
) -> Path:
    """Render every camera over the run (or the scenario seconds ``window``) into ``out``.

    The videos start at the window's start; ``manifest.json`` says where that is.
    """
    twin = Twin(spec)
    cameras = camera_ids or twin.camera_ids
    unknown = sorted(set(cameras) - set(twin.camera_ids))
    if unknown:
        raise ValueError(f"unknown cameras: {', '.join(unknown)}")
    start, end = window or (0.0, spec.scenario.duration_s)
    if not 0 <= start < end <= spec.scenario.duration_s:
        raise ValueError(
            f"window {start}..{end} s lies outside the run (0..{spec.scenario.duration_s} s)"
        )
    out.mkdir(parents=True, exist_ok=True)
    (out / "video").mkdir(exist_ok=True)
    times = frame_times(end, fps, start)
    _write_metadata(twin, out, fps, cameras, times)
    per_camera(
        _render_camera, cameras, (spec, fps, out, times), len(times), jobs, "rendering", progress
    )
    return out


def _render_camera(
    camera_id: str, spec: TwinSpec, fps: float, out: Path, times: np.ndarray, ticks: Any
) -> None:
    twin = Twin(spec)
    camera = twin.geometry.cameras[camera_id]
    writer = VideoWriter(out / "video" / f"{camera_id}.mp4", camera.width, camera.height, fps)
    black = np.zeros((camera.height, camera.width, 3), np.uint8)
    try:
        for t in times:
            frame = twin.frame(camera_id, float(t))
            writer.write(black if frame is None else frame)
            ticks.put(1)
    finally:
        writer.close()


def _write_metadata(
    twin: Twin, out: Path, fps: float, cameras: list[str], times: np.ndarray
) -> None:
    spec = twin.spec
    installer = twin.layout.installer_config(np.random.default_rng([spec.seed, 3]))
    write_facility(
        out / "facility.yaml",
        installer,
        "Twin depot as an installer would write it: cameras solved from point pairs.",
    )
    write_facility(
        out / "facility.truth.yaml",
        twin.facility,
        "Twin depot with the TRUE camera poses (debugging only; score with facility.yaml).",
    )
    _write_jsonl(
        out / "ground_truth.jsonl",
        (twin.truth(float(t)) for t in times),
    )
    _write_jsonl(out / "faults.jsonl", (asdict(f) for f in twin.faults.faults))
    first_frame = spec.scenario.start_time + timedelta(seconds=float(times[0]))
    manifest = RecordingManifest(
        facility=twin.facility.facility.id,
        cameras={
            camera: RecordedCamera(video=f"video/{camera}.mp4", first_frame_time=first_frame)
            for camera in cameras
        },
        # what the twin adds: which run and window the footage shows
        software_version=__version__,
        seed=spec.seed,
        duration_s=spec.scenario.duration_s,
        video_start_s=float(times[0]),  # scenario time of each video's first frame
        fps=fps,
        start_time=spec.scenario.start_time.isoformat(),
    )
    manifest.write(out)


def _write_jsonl(path: Path, records: Iterable[dict[str, Any]]) -> None:
    with path.open("w", encoding="utf-8") as handle:
        for record in records:
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
