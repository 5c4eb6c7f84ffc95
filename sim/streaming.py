"""Serve the twin's cameras as real RTSP streams.

Pieces, each a real program: GStreamer's RTSP server (``sim/rtsp_server.py`` under
Debian's Python) publishes ``rtsp://127.0.0.1:PORT/<camera>``; per camera, an ffmpeg
process sends H.264 over RTP to a loopback UDP port the server reads. Frames come
either live from the twin (rendered in real time, faults included: a dropout stops the
feed, which a client sees as a stalled stream) or from a recorded run's video files.
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import statistics
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edge.recordings import raw_video_input
from sim.twin import Twin

log = logging.getLogger(__name__)

SYSTEM_PYTHON = "/usr/bin/python3"
SERVER_SCRIPT = Path(__file__).with_name("rtsp_server.py")
READY_TIMEOUT_S = 15.0
# H.264 over RTP to the RTSP server (sim/rtsp_server.py says why not MPEG-TS).
RTP_OUT = ["-sdp_file", "/dev/null", "-f", "rtp", "-payload_type", "96"]


class StreamingError(RuntimeError):
    """The RTSP server or an encoder could not start."""


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def distinct_free_ports(count: int, kind: int = socket.SOCK_STREAM) -> list[int]:
    """``count`` free loopback ports, all different: each probe stays bound until all are
    picked (one picked and released at a time may come back twice, and two cameras fed on
    one UDP port leave one of them never opening)."""
    probes = [socket.socket(socket.AF_INET, kind) for _ in range(count)]
    try:
        for probe in probes:
            probe.bind(("127.0.0.1", 0))
        return [int(probe.getsockname()[1]) for probe in probes]
    finally:
        for probe in probes:
            probe.close()


def free_ports(count: int) -> int:
    """The first of ``count`` consecutive free TCP ports on loopback (a gateway's plan
    hands its services ports counted up from a base)."""
    for _ in range(100):
        first = free_port()
        if first + count < 65_000 and all(_free(p) for p in range(first, first + count)):
            return first
    raise StreamingError(f"no {count} consecutive free ports on 127.0.0.1")


def _free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@dataclass
class _Feed:
    camera_id: str
    udp_port: int
    encoder: subprocess.Popen[bytes] | None = None
    thread: threading.Thread | None = None
    frames_sent: int = 0


@dataclass
class TwinStreamer:
    """Start with ``start()``, stop with ``stop()`` (or use it as a context manager)."""

    camera_ids: list[str]
    twin: Twin | None = None  # live rendering ...
    recording: Path | None = None  # ... or a recorded run's folder
    fps: float = 2.0
    port: int = 0  # 0: pick a free one
    loop_recording: bool = True
    login: str | None = None  # "user:password" the streams ask for, as IP cameras do
    feeds: dict[str, _Feed] = field(default_factory=dict)
    _server: subprocess.Popen[str] | None = None
    _stop: threading.Event = field(default_factory=threading.Event)
    started_at: float = 0.0

    def __post_init__(self) -> None:
        if (self.twin is None) == (self.recording is None):
            raise ValueError("give either a twin (live) or a recording folder")
        for tool in ("ffmpeg", SYSTEM_PYTHON):
            if shutil.which(tool) is None:
                raise StreamingError(f"{tool} not found: run deploy/system-packages.sh")

    def urls(self) -> dict[str, str]:
        return {c: f"rtsp://127.0.0.1:{self.port}/{c}" for c in self.camera_ids}

    def __enter__(self) -> TwinStreamer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        self.port = self.port or free_port()
        ports = distinct_free_ports(len(self.camera_ids), socket.SOCK_DGRAM)
        self.feeds = {c: _Feed(c, port) for c, port in zip(self.camera_ids, ports, strict=True)}
        self._start_server()
        self.started_at = time.monotonic()
        for feed in self.feeds.values():
            if self.recording is not None:
                feed.encoder = self._replay(feed)
            else:
                feed.encoder = self._encoder(feed)
                feed.thread = threading.Thread(
                    target=self._render_loop,
                    args=(feed,),
                    name=f"twin-feed:{feed.camera_id}",
                    daemon=True,
                )
                feed.thread.start()
        if self.recording is not None:
            self._wait_sending()
        log.info("serving %d twin cameras on rtsp://127.0.0.1:%d/", len(self.feeds), self.port)

    def _wait_sending(self, timeout_s: float = 10.0) -> None:
        """Until every replay has sent its first bytes. Each ffmpeg's clock (``-re``)
        starts when it has opened its file: about a second for 16 of them on two idle
        cores, seconds while a gateway starts beside them, which offset each camera's
        pictures differently (held-out demo runs measured 0.7-3 s between cameras).
        Waiting here keeps the gateway's start out of it; the spread is logged."""
        started: dict[str, float] = {}
        deadline = time.monotonic() + timeout_s
        while len(started) < len(self.feeds) and time.monotonic() < deadline:
            for feed in self.feeds.values():
                if feed.camera_id not in started and _has_written(feed.encoder):
                    started[feed.camera_id] = time.monotonic() - self.started_at
            time.sleep(0.005)
        if started:
            log.info(
                "twin replays sending after %.2f-%.2f s (%d of %d)",
                min(started.values()),
                max(started.values()),
                len(started),
                len(self.feeds),
            )
            # The twin's clock is the replays' clock (a resumed feed joins it there).
            self.started_at += statistics.median(started.values())

    def stop(self) -> None:
        self._stop.set()
        for feed in self.feeds.values():
            if feed.thread is not None:
                feed.thread.join(timeout=5)
            if feed.encoder is not None:
                _terminate(feed.encoder)
        if self._server is not None:
            _terminate(self._server)

    def pause(self, camera_id: str) -> None:
        """Stop feeding one recorded camera: its clients stall, as with a frozen camera
        (the RTSP server stays up)."""
        encoder = self.feeds[camera_id].encoder
        if encoder is not None:
            _terminate(encoder)

    def resume(self, camera_id: str) -> None:
        """Feed a paused recorded camera again: a video played once goes on where the
        clock is (from the key frame before), a looped one starts from the beginning."""
        feed = self.feeds[camera_id]
        if feed.encoder is not None and feed.encoder.poll() is None:
            return
        offset = 0.0 if self.loop_recording else time.monotonic() - self.started_at
        feed.encoder = self._replay(feed, offset)

    def scenario_time(self) -> float:
        return time.monotonic() - self.started_at

    # -- processes --------------------------------------------------------------------------

    def _start_server(self) -> None:
        streams = [f"{f.camera_id}={f.udp_port}" for f in self.feeds.values()]
        env = {**os.environ, "LOCOWATCH_RTSP_LOGIN": self.login} if self.login else None
        self._server = subprocess.Popen(
            [SYSTEM_PYTHON, str(SERVER_SCRIPT), "--port", str(self.port), *streams],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert self._server.stdout is not None
        deadline = time.monotonic() + READY_TIMEOUT_S
        line = ""
        while time.monotonic() < deadline and self._server.poll() is None:
            line = self._server.stdout.readline()
            if line.startswith("rtsp server on"):
                return
        error = self._server.stderr.read() if self._server.stderr else ""
        _terminate(self._server)
        raise StreamingError(f"the RTSP server did not start: {line.strip()} {error.strip()}")

    def _encoder(self, feed: _Feed) -> subprocess.Popen[bytes]:
        assert self.twin is not None
        camera = self.twin.geometry.cameras[feed.camera_id]
        return subprocess.Popen(
            [
                "ffmpeg",
                "-nostdin",
                "-loglevel",
                "error",
                *raw_video_input(camera.width, camera.height, self.fps),
                "-c:v",
                "libx264",
                "-preset",
                "veryfast",
                "-tune",
                "zerolatency",
                "-g",  # a keyframe a second: an RTSP client can start decoding within one
                str(max(1, round(self.fps))),
                "-pix_fmt",
                "yuv420p",
                "-x264-params",
                "repeat-headers=1",
                *RTP_OUT,
                f"rtp://127.0.0.1:{feed.udp_port}?pkt_size=1200",
            ],
            stdin=subprocess.PIPE,
        )

    def _replay(self, feed: _Feed, offset_s: float = 0.0) -> subprocess.Popen[bytes]:
        assert self.recording is not None
        video = self.recording / "video" / f"{feed.camera_id}.mp4"
        if not video.exists():
            raise StreamingError(f"no recorded video {video}")
        loop = ["-stream_loop", "-1"] if self.loop_recording else []
        return subprocess.Popen(
            [
                "ffmpeg",
                "-nostdin",
                "-loglevel",
                "error",
                "-re",
                *loop,
                "-ss",
                f"{offset_s:.3f}",
                "-i",
                str(video),
                "-c",
                "copy",  # the recorded H.264 as it is: SPS/PPS in-band, no B-frames
                *RTP_OUT,
                f"rtp://127.0.0.1:{feed.udp_port}?pkt_size=1200",
            ],
        )

    def _render_loop(self, feed: _Feed) -> None:
        """Render frames at the camera's pace; a dropout simply sends nothing."""
        assert self.twin is not None and feed.encoder is not None and feed.encoder.stdin
        period = 1.0 / self.fps
        duration = self.twin.spec.scenario.duration_s
        next_at = time.monotonic()
        while not self._stop.is_set():
            t = self.scenario_time()
            if t >= duration:
                break
            frame = self.twin.frame(feed.camera_id, t)
            if frame is not None:
                try:
                    feed.encoder.stdin.write(np.ascontiguousarray(frame).tobytes())
                    feed.encoder.stdin.flush()
                except BrokenPipeError:
                    log.error("encoder of %s died", feed.camera_id)
                    return
                feed.frames_sent += 1
            next_at += period
            self._stop.wait(max(0.0, next_at - time.monotonic()))
        feed.encoder.stdin.close()


def _has_written(process: subprocess.Popen[bytes] | None) -> bool:
    """Whether a process wrote anything yet (Linux: ``/proc/PID/io``); True elsewhere."""
    if process is None:
        return False
    try:
        io = Path(f"/proc/{process.pid}/io").read_text()
    except OSError:
        return True
    written = next((line.split()[1] for line in io.splitlines() if line.startswith("wchar")), "1")
    return int(written) > 0


def _terminate(process: subprocess.Popen[bytes] | subprocess.Popen[str]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
