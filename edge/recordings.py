"""Recorded camera footage: what ``locowatch record`` writes and ``locowatch replay`` reads.

A recording is a folder::

    manifest.json      the format below; more keys are kept (the twin adds its seed)
    video/<camera>.*   one file per camera, as the camera sent it (or the twin rendered it)
    facility.yaml      the facility file it was recorded with (cameras' passwords left out)

``manifest.json`` names each camera's file and the capture time of its first frame::

    {"format": 1, "facility": "depot-1",
     "cameras": {"cam-01": {"video": "video/cam-01.mkv",
                            "first_frame_time": "2026-12-07T08:00:00.125000+00:00"}}}

A frame's capture time is its camera's first frame time plus the frame's timestamp in the
file (the file's own clock), or, where the camera names a ``frame_times`` file, the time
the gateway stamped that frame with when it recorded it. Either way a replay stamps every
frame as it was stamped live, however fast it runs, and cameras recorded side by side stay
in step. ``locowatch record`` records through the gateway's own capture (reconnects,
watchdog, frames kept at the camera's fps) and re-encodes what it kept as H.264 in
Matroska, which stays readable when a recording is cut short.
"""

from __future__ import annotations

import heapq
import json
import logging
import queue
import shutil
import subprocess
import threading
import time
from collections.abc import Generator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Literal

import cv2
import numpy as np
from pydantic import AwareDatetime, BaseModel, ConfigDict, ValidationError
from tqdm import tqdm

from edge.capture.frames import CapturedFrame, FrameSchedule
from edge.capture.worker import CameraWorker
from locowatch.errors import UsageError
from locowatch.facility.config import Camera, FacilityConfig
from locowatch.facility.loading import dump_facility, strip_secrets

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
FACILITY = "facility.yaml"  # beside the manifest: the calibration and flows it was made with
PREFETCH_FRAMES = 4  # decoded frames waiting per camera: decoding overlaps the networks
TWIN_CRF = 26  # x264 quality of the twin's footage (a camera's stream looks about so)
READER_EXIT_S = 15.0  # a stream's reader gets this long to leave a read once recording ends
RECORD_CRF = 18  # of a depot's recording: visually lossless, for labelling and replay


class RecordedCamera(BaseModel):
    model_config = ConfigDict(extra="forbid")

    video: str  # relative to the recording folder
    first_frame_time: AwareDatetime
    # a text file, one capture time (unix seconds) per frame of the video, as the gateway
    # stamped it (`locowatch record` writes it); without it, the file's own timestamps
    frame_times: str | None = None


class RecordingManifest(BaseModel):
    model_config = ConfigDict(extra="allow")  # the twin adds its seed, window, ...

    format: Literal[1] = 1
    facility: str | None = None
    cameras: dict[str, RecordedCamera]

    def write(self, folder: Path) -> None:
        text = json.dumps(self.model_dump(mode="json"), indent=2, ensure_ascii=False)
        (folder / MANIFEST).write_text(text + "\n", encoding="utf-8")


def load_manifest(folder: Path) -> RecordingManifest:
    path = folder / MANIFEST
    if not path.is_file():
        raise UsageError(f"{folder} is not a recording: it has no {MANIFEST}")
    try:
        manifest = RecordingManifest.model_validate_json(path.read_text(encoding="utf-8"))
    except ValidationError as error:
        raise UsageError(f"{path}: not a recording manifest:\n{error}") from None
    missing = [c for c, cam in manifest.cameras.items() if not (folder / cam.video).is_file()]
    if missing:
        raise UsageError(f"{folder}: no video file for {', '.join(missing)}")
    return manifest


def recorded_frames(
    folder: Path, manifest: RecordingManifest, fps: Mapping[str, float]
) -> Generator[CapturedFrame, None, None]:
    """Every camera's frames in capture-time order, kept at ``fps[camera]`` as capture
    keeps live ones (``FrameSchedule``). Cameras not in ``fps`` are not read."""
    readers = [
        _Reader(camera_id, folder, camera, rate)
        for camera_id, camera in manifest.cameras.items()
        if (rate := fps.get(camera_id)) is not None
    ]
    for reader in readers:
        reader.start()
    try:
        # (time, reader index) orders frames of equal time by camera: the same run every time
        heap = [(f.capture_time, i, f) for i, r in enumerate(readers) if (f := r.next())]
        heapq.heapify(heap)
        while heap:
            _, index, frame = heapq.heappop(heap)
            yield frame
            following = readers[index].next()
            if following is not None:
                heapq.heappush(heap, (following.capture_time, index, following))
    finally:
        for reader in readers:
            reader.stop()


class _Reader:
    """Decodes one camera's file on a thread of its own, a few frames ahead."""

    def __init__(self, camera_id: str, folder: Path, camera: RecordedCamera, fps: float) -> None:
        self.camera_id = camera_id
        self.path = folder / camera.video
        self.first_frame_time = camera.first_frame_time.timestamp()
        self.stamps = _frame_times(folder / camera.frame_times) if camera.frame_times else None
        self.schedule = FrameSchedule(fps)
        self.frames: queue.Queue[CapturedFrame | None] = queue.Queue(PREFETCH_FRAMES)
        self.stopped = threading.Event()
        # a daemon: a replay abandoned half way (its generator never closed) cannot hang the exit
        self.thread = threading.Thread(target=self._decode, name=f"replay-{camera_id}", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def next(self) -> CapturedFrame | None:
        return self.frames.get()

    def stop(self) -> None:
        self.stopped.set()  # a put waiting for room gives up within 0.1 s
        self.thread.join()

    def _decode(self) -> None:
        capture = cv2.VideoCapture(str(self.path), cv2.CAP_FFMPEG)
        seq = undecodable = 0
        try:
            if not capture.isOpened():
                log.error("%s: cannot read %s: no frames from it", self.camera_id, self.path)
                return
            index = -1
            while not self.stopped.is_set() and capture.grab():
                index += 1
                at = self._time(index, capture)
                if at is None:
                    break
                if not self.schedule.due(at):
                    continue
                ok, image = capture.retrieve()
                if not ok or image is None:
                    undecodable += 1
                    continue
                self._put(CapturedFrame(self.camera_id, seq, at, image))
                seq += 1
        finally:
            capture.release()
            if undecodable:
                log.warning("%s: %d frames could not be decoded", self.camera_id, undecodable)
            log.info("%s: %d frames read from %s", self.camera_id, seq, self.path.name)
            self._put(None)

    def _time(self, index: int, capture: cv2.VideoCapture) -> float | None:
        if self.stamps is None:  # the frame's time in the file, from its first frame
            return self.first_frame_time + float(capture.get(cv2.CAP_PROP_POS_MSEC)) / 1000
        if index < len(self.stamps):
            return self.stamps[index]
        log.error(
            "%s: the video has more frames than its %d frame times: the rest is not replayed",
            self.camera_id, len(self.stamps),
        )  # fmt: skip
        return None

    def _put(self, frame: CapturedFrame | None) -> None:
        while not self.stopped.is_set():
            try:
                self.frames.put(frame, timeout=0.1)
                return
            except queue.Full:
                continue


def _frame_times(path: Path) -> list[float]:
    try:
        return [float(line) for line in path.read_text(encoding="utf-8").split()]
    except (OSError, ValueError) as error:
        raise UsageError(f"{path}: not a list of frame times: {error}") from None


# -- writing ---------------------------------------------------------------------------------


def raw_video_input(width: int, height: int, fps: float) -> list[str]:
    """ffmpeg arguments that read raw BGR frames of this size and rate from stdin."""
    return [
        "-f",
        "rawvideo",
        "-pix_fmt",
        "bgr24",
        "-s",
        f"{width}x{height}",
        "-r",
        f"{fps:g}",
        "-i",
        "-",
    ]


class VideoWriter:
    """H.264 through Debian's ffmpeg (libx264), fed raw BGR frames on a pipe."""

    def __init__(
        self, path: Path, width: int, height: int, fps: float, crf: int = TWIN_CRF
    ) -> None:
        if shutil.which("ffmpeg") is None:
            raise RuntimeError("ffmpeg not found: run deploy/system-packages.sh (make test does)")
        self.path = path
        self.process = subprocess.Popen(
            [
                "ffmpeg",
                "-nostdin",
                "-y",
                "-loglevel",
                "error",
                *raw_video_input(width, height, fps),
                "-c:v",
                "libx264",
                "-preset",
                "veryfast",
                "-crf",
                str(crf),
                "-g",  # a keyframe a second, as IP cameras send: a client starts decoding soon
                str(max(1, round(fps))),
                "-bf",  # no B-frames, as IP cameras: each frame decodes on arrival, not
                "0",  # frames later (at 2 fps, x264's default 3 held a stream 1.5 s back)
                "-x264-params",  # SPS/PPS in every key frame, so a replay over RTP carries
                "repeat-headers=1",  # them in-band as a camera does, not only in the SDP
                "-pix_fmt",
                "yuv420p",
                # MP4: the index up front, for streaming; Matroska needs none (and an
                # interrupted .mkv stays readable, an interrupted .mp4 does not)
                *(["-movflags", "+faststart"] if path.suffix == ".mp4" else []),
                str(path),
            ],
            stdin=subprocess.PIPE,
        )
        assert self.process.stdin is not None
        self._stdin: IO[bytes] = self.process.stdin

    def write(self, frame: np.ndarray) -> None:
        self._stdin.write(np.ascontiguousarray(frame).tobytes())

    def close(self) -> None:
        self._stdin.close()
        if self.process.wait() != 0:
            raise RuntimeError(f"ffmpeg failed writing {self.path}")


# -- recording a depot's cameras ---------------------------------------------------------------


def write_facility_beside(folder: Path, config: FacilityConfig) -> Path:
    """The facility file a recording was made with, beside it, so that it replays with the
    calibration it was recorded under; camera passwords are left out (recordings travel)."""
    path = folder / FACILITY
    header = f"Facility {config.facility.id} as recorded (camera passwords left out)."
    path.write_text(dump_facility(strip_secrets(config), header), encoding="utf-8")
    return path


@dataclass
class RecordedSummary:
    manifest: RecordingManifest
    frames: dict[str, int]  # per camera, frames written
    superseded: dict[str, int]  # per camera, frames the encoder was too slow to take
    silent: list[str]  # cameras that delivered no frame: not in the manifest


def record_cameras(
    cameras: Sequence[Camera],
    folder: Path,
    duration_s: float,
    facility_id: str | None = None,
    progress: bool = True,
) -> RecordedSummary:
    """Record ``cameras`` for ``duration_s`` through the gateway's capture into ``folder``.

    Each camera streams as it does live (reconnects, watchdog, frames kept at its fps) and
    every frame capture keeps is written with the time capture stamped it. A camera that
    never delivers is left out of the manifest and said so.
    """
    (folder / "video").mkdir(parents=True, exist_ok=True)
    recorders = [_CameraRecorder(camera, folder) for camera in cameras]
    for recorder in recorders:
        recorder.start()
    try:
        for _ in tqdm(range(round(duration_s)), desc="recording", unit=" s", disable=not progress):
            time.sleep(1.0)
    finally:
        for recorder in recorders:
            recorder.stop()
    entries = {r.camera.id: entry for r in recorders if (entry := r.entry()) is not None}
    manifest = RecordingManifest(facility=facility_id, cameras=entries)
    manifest.write(folder)
    silent = [r.camera.id for r in recorders if r.camera.id not in entries]
    for camera_id in silent:
        log.warning("%s delivered no frame in %.0f s: not recorded", camera_id, duration_s)
    return RecordedSummary(
        manifest,
        {r.camera.id: len(r.times) for r in recorders},
        {r.camera.id: r.worker.frames.superseded for r in recorders},
        silent,
    )


class _CameraRecorder:
    """One camera's capture worker and the encoder its kept frames go to."""

    def __init__(self, camera: Camera, folder: Path) -> None:
        self.camera = camera
        self.folder = folder
        self.worker = CameraWorker(camera)
        self.video = f"video/{camera.id}.mkv"
        self.times_file = f"video/{camera.id}.times"
        self.times: list[float] = []  # the capture time of each frame written
        self.writer: VideoWriter | None = None
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._write, name=f"record-{camera.id}")

    def start(self) -> None:
        self.worker.start()
        self.thread.start()

    def stop(self) -> None:
        self.worker.stop(reader_s=READER_EXIT_S)
        self.stopped.set()
        self.thread.join()
        if self.writer is not None:
            self.writer.close()
        lines = "".join(f"{t:.6f}\n" for t in self.times)
        (self.folder / self.times_file).write_text(lines, encoding="utf-8")

    def entry(self) -> RecordedCamera | None:
        if not self.times:
            return None
        first = datetime.fromtimestamp(self.times[0], UTC)
        return RecordedCamera(video=self.video, first_frame_time=first, frame_times=self.times_file)

    def _write(self) -> None:
        resolution = self.camera.resolution
        while not self.stopped.is_set():
            frame = self.worker.frames.take(timeout=0.2)
            if frame is None:
                continue
            if self.writer is None:
                self.writer = VideoWriter(
                    self.folder / self.video,
                    resolution.width,
                    resolution.height,
                    self.camera.fps,
                    crf=RECORD_CRF,
                )
            self.writer.write(frame.image)  # capture refuses frames of another size
            self.times.append(frame.capture_time)
