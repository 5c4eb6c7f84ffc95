"""Camera sources behind one small interface, opened by the camera's ``source`` string.

========================  ==============================================================
``rtsp://``, ``rtsps://``  an IP camera: OpenCV's FFmpeg backend, with open and read
``http(s)://``             timeouts, RTSP over TCP
``file://...``, a path     a video file paced at its own frame rate in wall-clock time,
                           looping by default (``file:///x.mp4?loop=0`` plays it once)
``sim://``                 a twin camera (``sim.live.LiveSource``)
========================  ==============================================================

Every source has ``grab()`` (wait for the next frame), ``retrieve()`` (its pixels),
``read()`` (both), ``release()``, and ``frame_time``: the unix time the last grabbed frame
was read, stamped at the read. Capture grabs every frame of a stream but retrieves only
the ones due at the camera's ``fps``: with FFmpeg, ``grab`` still decodes H.264 (inter
frames need their references) but the conversion to BGR and the copy happen only in
``retrieve``.

RTSP over TCP: FFmpeg's options for OpenCV come from the environment variable
``OPENCV_FFMPEG_CAPTURE_OPTIONS`` (``key;value`` pairs joined by ``|``), read at every
open. Unless the operator set it, importing this module sets it to
``rtsp_transport;tcp|analyzeduration;1000000``: TCP because UDP over a busy depot network
loses packets and smears H.264 frames; one second of stream analysis instead of FFmpeg's
five, so an open takes about a second plus the wait for a key frame. An operator's own
value replaces ours whole, so it should name ``rtsp_transport;tcp`` too.
"""

from __future__ import annotations

import math
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol
from urllib.parse import parse_qs, unquote, urlsplit

import cv2
import numpy as np

from locowatch.logs import redact

if TYPE_CHECKING:
    from sim.live import LiveSource

FFMPEG_OPTIONS_ENV = "OPENCV_FFMPEG_CAPTURE_OPTIONS"
DEFAULT_FFMPEG_OPTIONS = "rtsp_transport;tcp|analyzeduration;1000000"
STREAM_SCHEMES = ("rtsp", "rtsps", "http", "https")
# Set once, at import (before any worker thread opens a stream): setenv is not thread-safe.
os.environ.setdefault(FFMPEG_OPTIONS_ENV, DEFAULT_FFMPEG_OPTIONS)

Image = np.ndarray


class SourceError(RuntimeError):
    """A camera source that cannot be opened (unreachable, refused, no such file)."""


@dataclass(frozen=True)
class SourceOptions:
    """How to open a source; the worker derives the timeouts from the camera's watchdog."""

    open_timeout_s: float = 10.0  # RTSP/HTTP connect + stream analysis
    read_timeout_s: float = 15.0  # a single blocked read of an RTSP/HTTP stream
    loop_files: bool = True  # a video file starts over at its end, like a live camera
    fallback_fps: float = 25.0  # pace of a file whose frame rate is unknown


class FrameSource(Protocol):
    """What capture needs of a camera: the parts of ``cv2.VideoCapture`` it uses."""

    @property
    def frame_time(self) -> float:
        """Unix time when the frame grabbed last was read."""
        ...

    @property
    def finished(self) -> bool:
        """True once a finite source (a file played once) has no more frames."""
        ...

    def grab(self) -> bool:
        """Wait for the next frame; False when the stream failed or ended."""
        ...

    def retrieve(self) -> tuple[bool, Image | None]:
        """The pixels of the frame grabbed last (BGR)."""
        ...

    def read(self) -> tuple[bool, Image | None]:
        """``grab`` and ``retrieve``."""
        ...

    def release(self) -> None: ...


def is_file(url: str) -> bool:
    """Whether a camera ``source`` is a video file (``file://`` or a plain path): footage
    that plays from its start, so frames read before the gateway can process them are
    lost, unlike a live camera's."""
    return "://" not in url or urlsplit(url).scheme.lower() == "file"


def open_source(url: str, options: SourceOptions | None = None) -> FrameSource:
    """Open the camera source ``url`` (a camera's ``source``); SourceError when it fails."""
    options = options or SourceOptions()
    scheme = urlsplit(url).scheme.lower() if "://" in url else ""
    if scheme in STREAM_SCHEMES:
        return StreamSource(url, options.open_timeout_s, options.read_timeout_s)
    if scheme == "file":
        path, loop = _file_url(url, options.loop_files)
        return FileSource(path, loop=loop, fallback_fps=options.fallback_fps)
    if scheme == "sim":
        return SimSource(url)
    if scheme:
        raise SourceError(f"unsupported source scheme {scheme!r} in {redact(url)}")
    return FileSource(Path(url), loop=options.loop_files, fallback_fps=options.fallback_fps)


def _file_url(url: str, loop: bool) -> tuple[Path, bool]:
    parts = urlsplit(url)
    if parts.netloc not in ("", "localhost"):
        raise SourceError(f"{url}: only local files (file:///path) can be read")
    query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    if "loop" in query:
        loop = query["loop"].lower() not in ("0", "false", "no")
    return Path(unquote(parts.path)), loop


class _Source:
    frame_time = 0.0
    finished = False

    def grab(self) -> bool:  # pragma: no cover - every source overrides it
        raise NotImplementedError

    def retrieve(self) -> tuple[bool, Image | None]:  # pragma: no cover
        raise NotImplementedError

    def read(self) -> tuple[bool, Image | None]:
        if not self.grab():
            return False, None
        return self.retrieve()


class StreamSource(_Source):
    """An RTSP or HTTP stream through OpenCV's FFmpeg backend.

    The open and read timeouts are FFmpeg's interrupt callback: a connect that hangs or a
    read that gets no data gives up after them. The worker's watchdog does not rely on it.
    """

    def __init__(self, url: str, open_timeout_s: float, read_timeout_s: float) -> None:
        self.url = url
        params = [
            cv2.CAP_PROP_OPEN_TIMEOUT_MSEC,
            max(1, round(open_timeout_s * 1000)),
            cv2.CAP_PROP_READ_TIMEOUT_MSEC,
            max(1, round(read_timeout_s * 1000)),
            # One decoding thread per camera: FFmpeg's frame threads each hold a frame back
            # (0.5 s a thread at 2 fps), and a gateway's cameras already share its cores.
            cv2.CAP_PROP_N_THREADS,
            1,
        ]
        self._capture = cv2.VideoCapture(url, cv2.CAP_FFMPEG, params)
        if not self._capture.isOpened():
            self._capture.release()
            raise SourceError(f"cannot open {redact(url)}")

    def grab(self) -> bool:
        ok = bool(self._capture.grab())
        self.frame_time = time.time()
        return ok

    def retrieve(self) -> tuple[bool, Image | None]:
        ok, image = self._capture.retrieve()
        return (True, image) if ok and image is not None else (False, None)

    def release(self) -> None:
        self._capture.release()


class FileSource(_Source):
    """A video file that behaves like a live camera: frames at the file's own rate.

    ``grab`` waits until the next frame is due on the wall clock. A reader that falls more
    than a second behind (a slow machine) skips ahead instead of bursting. At the end the
    file starts over, or with ``loop=False`` the source is ``finished``.
    """

    MAX_LAG_S = 1.0

    def __init__(self, path: Path, loop: bool = True, fallback_fps: float = 25.0) -> None:
        if not path.is_file():
            raise SourceError(f"no video file {path}")
        self.path = path
        self.loop = loop
        self._capture = self._open()
        fps = float(self._capture.get(cv2.CAP_PROP_FPS))
        self.fps = fps if math.isfinite(fps) and 0 < fps <= 1000 else fallback_fps
        self.period = 1.0 / self.fps
        self._next_due: float | None = None  # monotonic
        self._released = threading.Event()

    def _open(self) -> cv2.VideoCapture:
        capture = cv2.VideoCapture(str(self.path), cv2.CAP_FFMPEG)
        if not capture.isOpened():
            capture.release()
            raise SourceError(f"cannot read video file {self.path}")
        return capture

    def grab(self) -> bool:
        now = time.monotonic()
        due = self._next_due
        if due is None or now - due > self.MAX_LAG_S:  # the first frame, or far behind
            due = now
        if self._released.wait(max(0.0, due - now)):
            return False
        ok = bool(self._capture.grab())
        if not ok and self.loop:  # the end of the file: start over
            self._capture.release()
            self._capture = self._open()
            ok = bool(self._capture.grab())
        if not ok:
            self.finished = True
            return False
        self.frame_time = time.time()
        self._next_due = due + self.period
        return True

    def retrieve(self) -> tuple[bool, Image | None]:
        ok, image = self._capture.retrieve()
        return (True, image) if ok and image is not None else (False, None)

    def release(self) -> None:
        self._released.set()
        self._capture.release()


_SIM_OPEN = threading.Lock()  # the first sim camera builds the twin; the others reuse it


class SimSource(_Source):
    """A twin camera (``sim://facility/camera?...``): frames rendered on the wall clock.

    The capture time is the twin's frame time, so frames line up with the ground truth.
    """

    def __init__(self, url: str) -> None:
        from sim.live import LiveSource

        self.url = url
        try:
            with _SIM_OPEN:
                self._live: LiveSource = LiveSource(url)
        except ValueError as exc:
            raise SourceError(str(exc)) from exc
        if not self._live.isOpened():
            raise SourceError(f"{url}: the twin camera is dropped out")
        # Build the camera's renderer (seconds) now, as part of opening, not of a read.
        self._live.twin.renderer(self._live.url.camera_id)
        self._frame: Image | None = None

    def grab(self) -> bool:
        ok, self._frame = self._live.read()
        if ok:
            self.frame_time = self._live.frame_time()
        return ok

    def retrieve(self) -> tuple[bool, Image | None]:
        return (self._frame is not None, self._frame)

    def release(self) -> None:
        self._live.release()
