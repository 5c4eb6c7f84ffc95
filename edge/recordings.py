"""Recorded camera footage: what ``locowatch record`` writes and ``locowatch replay`` reads.

A recording is a folder::

    manifest.json      the format below; more keys are kept (the twin adds its seed)
    video/<camera>.*   one file per camera, as the camera sent it (or the twin rendered it)

``manifest.json`` names each camera's file and the capture time of its first frame::

    {"format": 1, "facility": "depot-1",
     "cameras": {"cam-01": {"video": "video/cam-01.mkv",
                            "first_frame_time": "2026-12-07T08:00:00.125000+00:00"}}}

A frame's capture time is its camera's first frame time plus the frame's timestamp in the
file (the file's own clock), so a replay stamps every frame as the gateway did live,
however fast it runs, and cameras recorded side by side stay in step.
"""

from __future__ import annotations

import heapq
import json
import logging
import queue
import threading
from collections.abc import Generator, Mapping
from pathlib import Path
from typing import Literal

import cv2
from pydantic import AwareDatetime, BaseModel, ConfigDict, ValidationError

from edge.capture.frames import CapturedFrame, FrameSchedule
from locowatch.errors import UsageError

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
PREFETCH_FRAMES = 4  # decoded frames waiting per camera: decoding overlaps the networks


class RecordedCamera(BaseModel):
    model_config = ConfigDict(extra="forbid")

    video: str  # relative to the recording folder
    first_frame_time: AwareDatetime


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
        _Reader(camera_id, folder / camera.video, camera.first_frame_time.timestamp(), rate)
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

    def __init__(self, camera_id: str, path: Path, first_frame_time: float, fps: float) -> None:
        self.camera_id = camera_id
        self.path = path
        self.first_frame_time = first_frame_time
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
            while not self.stopped.is_set() and capture.grab():
                # the frame's time in the file, from its first frame: the camera's clock
                at = self.first_frame_time + capture.get(cv2.CAP_PROP_POS_MSEC) / 1000
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

    def _put(self, frame: CapturedFrame | None) -> None:
        while not self.stopped.is_set():
            try:
                self.frames.put(frame, timeout=0.1)
                return
            except queue.Full:
                continue
