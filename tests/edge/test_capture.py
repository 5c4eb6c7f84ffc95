"""The capture service: camera workers on fake, file and real RTSP sources; the service
against in-process aggregator and uplink servers.

RTSP cameras are the twin's pictures served by a real RTSP server (``TwinStreamer``, one per
camera, so one can be killed and brought back on its port) and fed by an ffmpeg of these
tests (``ClipStream``), so a feed can be frozen while the server stays up.
"""

from __future__ import annotations

import functools
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent import futures
from pathlib import Path

import cv2
import grpc
import numpy as np
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1.health import HealthServicer
from prometheus_client import REGISTRY

from edge import images
from edge.capture.frames import CameraState, CapturedFrame, HealthSnapshot, LatestFrame
from edge.capture.service import CaptureService
from edge.capture.sources import SourceError, SourceOptions, open_source
from edge.capture.worker import CameraWorker
from edge.plan import gateway_plan
from edge.recordings import raw_video_input
from edge.service import CHANNEL_OPTIONS
from locowatch.backoff import Backoff
from locowatch.facility.config import Camera, FacilityConfig, GatewayServices, Resolution
from locowatch.v1 import edge_pb2_grpc, frames_pb2, uplink_pb2, uplink_pb2_grpc
from sim.faults import NO_FAULTS
from sim.layout import build_layout
from sim.scenario import ScenarioSpec
from sim.streaming import TwinStreamer, free_ports
from sim.twin import Twin, TwinSpec

FAST = Backoff(initial_s=0.1, max_s=0.5, jitter_s=0.05, reset_after_s=0.1)
CLIP_FPS = 5.0
SHORT_FPS = 10.0
SHORT_FRAMES = 6


# -- helpers ------------------------------------------------------------------------------


@functools.cache
def twin_config() -> FacilityConfig:
    return build_layout(0).config


def camera(
    camera_id: str = "cam-01",
    source: str = "fake://",
    fps: float = 10.0,
    watchdog_s: float = 1.0,
    size: tuple[int, int] = (64, 48),
) -> Camera:
    """A twin camera's config with the given source, rate, watchdog and (width, height)."""
    return (
        twin_config()
        .cameras[0]
        .model_copy(
            update={
                "id": camera_id,
                "source": source,
                "fps": fps,
                "watchdog_timeout_s": watchdog_s,
                "resolution": Resolution(width=size[0], height=size[1]),
            }
        )
    )


def wait_until(what: str, check: Callable[[], bool], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")


class StateLog:
    """A worker's ``on_state``: every state change with its monotonic time."""

    def __init__(self) -> None:
        self.changes: list[tuple[float, HealthSnapshot]] = []

    def __call__(self, snapshot: HealthSnapshot) -> None:
        self.changes.append((time.monotonic(), snapshot))

    def states(self) -> list[CameraState]:
        return [s.state for _, s in self.changes]

    def first(self, state: CameraState, after: float = 0.0) -> float | None:
        return next((t for t, s in self.changes if s.state is state and t >= after), None)


class FrameLog:
    """A worker's ``on_frame``: every delivered frame with its monotonic arrival time."""

    def __init__(self) -> None:
        self.frames: list[tuple[float, CapturedFrame]] = []

    def __call__(self, frame: CapturedFrame) -> None:
        self.frames.append((time.monotonic(), frame))

    def times(self, after: float = -1.0) -> list[float]:
        return [f.capture_time for _, f in self.frames if f.capture_time > after]


class TickingSource:
    """A fake live stream: a frame every 1/fps s, its pixels all ``value``.

    ``block_after`` grabs, ``grab`` blocks until ``unblock`` is set (a frozen stream whose
    read never returns); ``bad_every`` n-th retrieve gives a wrong-size frame, and the one
    after it an undecodable one.
    """

    finished = False

    def __init__(
        self,
        fps: float,
        value: int = 1,
        size: tuple[int, int] = (64, 48),
        block_after: int | None = None,
        unblock: threading.Event | None = None,
        bad_every: int = 0,
    ) -> None:
        self.period = 1.0 / fps
        self.value = value
        self.size = size
        self.block_after = block_after
        self.unblock = unblock or threading.Event()
        self.bad_every = bad_every
        self.grabs = self.retrieves = 0
        self.frame_time = 0.0
        self.released = threading.Event()
        self._next = time.monotonic()

    def grab(self) -> bool:
        if self.block_after is not None and self.grabs >= self.block_after:
            self.unblock.wait()
        self._next = max(self._next + self.period, time.monotonic() - self.period)
        if self.released.wait(max(0.0, self._next - time.monotonic())):
            return False
        self.grabs += 1
        self.frame_time = time.time()
        return True

    def retrieve(self) -> tuple[bool, np.ndarray | None]:
        self.retrieves += 1
        width, height = self.size
        if self.bad_every and self.retrieves % self.bad_every == 0:
            width, height = width // 2, height // 2
        elif self.bad_every and self.retrieves % self.bad_every == 1 and self.retrieves > 1:
            return False, None
        return True, np.full((height, width, 3), self.value, np.uint8)

    def read(self) -> tuple[bool, np.ndarray | None]:
        return self.retrieve() if self.grab() else (False, None)

    def release(self) -> None:
        self.released.set()


class ScriptedOpener:
    """Opens the scripted streams in turn: a source, or an exception to raise instead."""

    def __init__(self, *streams: TickingSource | Exception) -> None:
        self.streams = list(streams)
        self.opened_at: list[float] = []

    def __call__(self, url: str, options: SourceOptions) -> TickingSource:
        self.opened_at.append(time.monotonic())
        if not self.streams:
            raise SourceError("no more scripted streams")
        stream = self.streams.pop(0)
        if isinstance(stream, Exception):
            raise stream
        return stream


@pytest.fixture
def workers() -> Iterator[list[CameraWorker]]:
    """Workers to stop after the test, whatever happens."""
    started: list[CameraWorker] = []
    yield started
    for worker in started:
        worker.stop(timeout_s=2.0)


# -- the twin's pictures as video --------------------------------------------------------


def encode_video(path: Path, frames: list[np.ndarray], fps: float) -> Path:
    """H.264 without B-frames, a key frame every second with its SPS/PPS: what an IP
    camera sends."""
    height, width = frames[0].shape[:2]
    subprocess.run(
        [
            "ffmpeg", "-nostdin", "-y", "-loglevel", "error",
            *raw_video_input(width, height, fps),
            "-c:v", "libx264", "-preset", "veryfast", "-tune", "zerolatency",
            "-g", str(int(fps)), "-bf", "0", "-x264-params", "repeat-headers=1",
            "-pix_fmt", "yuv420p", str(path),
        ],
        input=b"".join(np.ascontiguousarray(f).tobytes() for f in frames),
        check=True,
    )  # fmt: skip
    return path


@pytest.fixture(scope="session")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Twin camera cam-04 rendered once: ``rtsp`` a 4 s loop at 5 fps in a folder laid out
    for TwinStreamer, ``short`` 6 frames at 10 fps."""
    twin = Twin(TwinSpec(seed=0, scenario=ScenarioSpec(duration_s=60), faults=NO_FAULTS))
    frames = [twin.frame("cam-04", 10.0 + i / CLIP_FPS) for i in range(int(4 * CLIP_FPS))]
    pictures = [f for f in frames if f is not None]
    folder = tmp_path_factory.mktemp("capture-clips")
    (folder / "video").mkdir()
    return {
        "rtsp": encode_video(folder / "clip.mp4", pictures, CLIP_FPS),
        "short": encode_video(folder / "short.mp4", pictures[:SHORT_FRAMES], SHORT_FPS),
    }


class ClipStream:
    """One camera on its own real RTSP server, fed in a loop by an ffmpeg of ours.

    ``freeze`` stops the feed (the server stays up: clients' reads block), ``resume``
    feeds again, ``kill`` stops the server too (connection refused), ``start`` again
    brings it back on the same port.
    """

    def __init__(self, clip: Path, camera_id: str) -> None:
        self.clip = clip
        self.camera_id = camera_id
        self.port = 0
        self.streamer: TwinStreamer | None = None
        folder = clip.parent
        (folder / "video" / f"{camera_id}.mp4").unlink(missing_ok=True)
        (folder / "video" / f"{camera_id}.mp4").symlink_to(clip)

    @property
    def url(self) -> str:
        return f"rtsp://127.0.0.1:{self.port}/{self.camera_id}"

    def start(self) -> None:
        self.streamer = TwinStreamer([self.camera_id], recording=self.clip.parent, port=self.port)
        self.streamer.start()
        self.port = self.streamer.port

    def resume(self) -> None:
        assert self.streamer is not None
        self.streamer.resume(self.camera_id)

    def freeze(self) -> None:
        assert self.streamer is not None
        self.streamer.pause(self.camera_id)

    def kill(self) -> None:
        if self.streamer is not None:
            self.streamer.stop()


@pytest.fixture
def rtsp_cameras(clips: dict[str, Path]) -> Iterator[Callable[[str], ClipStream]]:
    started: list[ClipStream] = []

    def start(camera_id: str) -> ClipStream:
        stream = ClipStream(clips["rtsp"], camera_id)
        stream.start()
        started.append(stream)
        return stream

    yield start
    for stream in started:
        stream.kill()


# -- sources ------------------------------------------------------------------------------


def test_a_file_source_paces_frames_at_the_files_fps_and_loops(clips: dict[str, Path]) -> None:
    source = open_source(str(clips["short"]))
    try:
        reads = [source.read() for _ in range(2 * SHORT_FRAMES + 2)]
    finally:
        source.release()
    assert all(ok and image is not None and image.shape == (720, 1280, 3) for ok, image in reads)
    # the same frame again once the file started over
    first, again = reads[0][1], reads[SHORT_FRAMES][1]
    assert first is not None and again is not None
    assert np.abs(first.astype(np.int16) - again.astype(np.int16)).mean() < 1.0

    once = open_source(f"file://{clips['short']}?loop=0")
    try:
        stamps = []
        for _ in range(SHORT_FRAMES):
            assert once.grab()
            stamps.append(once.frame_time)
        assert not once.grab() and once.finished
    finally:
        once.release()
    intervals = np.diff(stamps)
    assert statistics.mean(intervals) == pytest.approx(1 / SHORT_FPS, abs=0.01), intervals
    assert all(abs(i - 1 / SHORT_FPS) < 0.04 for i in intervals), intervals


@pytest.mark.parametrize(
    ("url", "error"),
    [
        ("ftp://camera/stream", "unsupported source scheme 'ftp'"),  # not a camera protocol
        ("/no/such/video.mp4", "no video file"),
        ("file://camera-host/video.mp4", "only local files"),
        # a refused RTSP connection fails at once, and the password stays out of the message
        ("rtsp://admin:secret@127.0.0.1:1/stream", "cannot open rtsp://admin:\\*\\*\\*@"),
    ],
)
def test_sources_that_cannot_open_say_why(url: str, error: str) -> None:
    with pytest.raises(SourceError, match=error):
        open_source(url, SourceOptions(open_timeout_s=2.0, read_timeout_s=2.0))


# -- the worker on fake sources ------------------------------------------------------------


def test_the_worker_decodes_only_the_frames_due_at_its_fps(workers: list[CameraWorker]) -> None:
    source = TickingSource(fps=25)
    frames = FrameLog()
    worker = CameraWorker(camera(fps=5), opener=ScriptedOpener(source), on_frame=frames)
    workers.append(worker)
    worker.start()
    wait_until("10 frames", lambda: len(frames.frames) >= 10, 5)
    worker.stop()
    kept = [f for _, f in frames.frames]
    assert [f.seq for f in kept] == list(range(len(kept)))
    assert statistics.mean(np.diff([f.capture_time for f in kept])) == pytest.approx(0.2, abs=0.02)
    assert source.retrieves == len(kept)  # only the kept frames were retrieved ...
    assert source.grabs >= 4 * len(kept)  # ... of all the grabbed ones
    assert worker.health().state is CameraState.STOPPED


def test_latest_frame_wins_for_a_slow_consumer(workers: list[CameraWorker]) -> None:
    worker = CameraWorker(camera(fps=20), opener=ScriptedOpener(TickingSource(fps=20)))
    workers.append(worker)
    worker.start()
    first = worker.frames.take(timeout=5)
    assert first is not None
    time.sleep(0.6)  # a slow consumer: about 12 frames arrive meanwhile
    newest = worker.frames.peek()
    second = worker.frames.take(timeout=1)
    assert newest is not None and second is not None
    assert second.seq >= newest.seq >= first.seq + 8  # the newest, not the next in line
    assert worker.frames.take(timeout=0) is None  # and nothing queued behind it
    assert worker.frames.superseded >= second.seq - first.seq - 2


def test_the_mailbox_holds_one_frame() -> None:
    mailbox = LatestFrame()
    image = np.zeros((2, 2, 3), np.uint8)
    assert mailbox.take(timeout=0) is None
    assert not mailbox.put(CapturedFrame("cam", 0, 1.0, image))
    assert mailbox.put(CapturedFrame("cam", 1, 2.0, image))  # replaced an untaken frame
    taken = mailbox.take(timeout=0)
    assert taken is not None and taken.seq == 1 and mailbox.superseded == 1
    assert mailbox.take(timeout=0.05) is None


def test_a_blocked_read_is_abandoned_by_the_watchdog(workers: list[CameraWorker]) -> None:
    unblock = threading.Event()
    frozen = TickingSource(fps=20, value=1, block_after=5, unblock=unblock)
    fresh = TickingSource(fps=20, value=2)
    states, frames = StateLog(), FrameLog()
    worker = CameraWorker(
        camera(fps=20, watchdog_s=0.5),
        opener=ScriptedOpener(frozen, fresh),
        on_state=states,
        on_frame=frames,
        backoff=FAST,
    )
    workers.append(worker)
    try:
        worker.start()
        wait_until("frames from the reopened stream", lambda: fresh.retrieves >= 5, 5)
        health = worker.health()
        assert states.states() == [
            CameraState.STREAMING,
            CameraState.STALLED,
            CameraState.STREAMING,
        ]
        assert (health.reconnects, health.stalls, health.abandoned_readers) == (1, 1, 1)
        last_frozen = max(t for t, f in frames.frames if f.image[0, 0, 0] == 1)
        stalled = states.first(CameraState.STALLED)
        assert stalled is not None and 0.45 <= stalled - last_frozen <= 0.8
        started = time.monotonic()
        worker.stop()  # the blocked reader does not hold it up
        assert time.monotonic() - started < 1.0 and not worker.is_running()
    finally:
        unblock.set()
    # the abandoned read returns at last: its frame is dropped and its stream released
    assert frozen.released.wait(2)
    wait_until("no abandoned reader left", lambda: worker.health().abandoned_readers == 0, 2)
    assert [f.image[0, 0, 0] for _, f in frames.frames] == [1] * 5 + [2] * (len(frames.frames) - 5)
    assert worker.health().state is CameraState.STOPPED


def test_wrong_size_and_undecodable_frames_are_decode_errors(
    workers: list[CameraWorker],
) -> None:
    frames = FrameLog()
    worker = CameraWorker(
        camera(fps=20), opener=ScriptedOpener(TickingSource(fps=20, bad_every=4)), on_frame=frames
    )
    workers.append(worker)
    worker.start()
    wait_until("decode errors", lambda: worker.health().decode_errors >= 4, 5)
    health = worker.health()
    assert health.state is CameraState.STREAMING and health.reconnects == 0
    assert "expected 64x48" in health.message or "could not be decoded" in health.message
    assert all(f.image.shape == (48, 64, 3) for _, f in frames.frames)
    counted = REGISTRY.get_sample_value(
        "locowatch_capture_decode_errors_total", {"camera": "cam-01"}
    )
    assert counted is not None and counted >= health.decode_errors


def test_failed_opens_back_off_exponentially_with_jitter(workers: list[CameraWorker]) -> None:
    refused = SourceError("cannot open rtsp://127.0.0.1:1/x")
    opener = ScriptedOpener(refused, refused, refused, refused, TickingSource(fps=10))
    states = StateLog()
    backoff = Backoff(initial_s=0.1, max_s=0.4, jitter_s=0.05, reset_after_s=5.0)
    worker = CameraWorker(camera(), opener=opener, on_state=states, backoff=backoff)
    workers.append(worker)
    worker.start()
    wait_until("streaming", lambda: worker.health().state is CameraState.STREAMING, 5)
    gaps = np.diff(opener.opened_at)
    for gap, delay in zip(gaps, [0.1, 0.2, 0.4, 0.4], strict=True):
        assert delay - 0.01 <= gap <= delay + 0.05 + 0.05, gaps
    assert states.states() == [CameraState.RECONNECTING, CameraState.STREAMING]
    health = worker.health()
    assert health.reconnects == 4 and health.message == ""


def test_a_file_camera_streams_at_its_fps(
    clips: dict[str, Path], workers: list[CameraWorker]
) -> None:
    frames = FrameLog()
    file_camera = camera(source=f"file://{clips['short']}", fps=5, size=(1280, 720))
    worker = CameraWorker(file_camera, on_frame=frames)
    workers.append(worker)
    worker.start()
    wait_until("8 frames", lambda: len(frames.frames) >= 8, 10)
    times = [f.capture_time for _, f in frames.frames]
    assert statistics.mean(np.diff(times)) == pytest.approx(0.2, abs=0.02)
    assert worker.health().fps > 0


def test_a_sim_camera_streams_on_the_twins_clock(workers: list[CameraWorker]) -> None:
    start = float(int(time.time()))
    url = f"sim://twin-depot/cam-04?seed=0&duration=600&fps=4&faults=0&start={start:.0f}"
    frames = FrameLog()
    worker = CameraWorker(camera(source=url, fps=2, size=(1280, 720)), on_frame=frames)
    workers.append(worker)
    worker.start()
    wait_until("6 frames", lambda: len(frames.frames) >= 6, 30)
    times = [f.capture_time - start for _, f in frames.frames]
    # stamped with the twin's frame times (a 4 fps camera), every second one kept (2 fps);
    # a frame the renderer could not make in time on a busy machine shifts the cadence
    # by one 0.25 s step (0.75 s, then 0.25 s), never off the twin's grid
    assert all(t * 4 == pytest.approx(round(t * 4), abs=1e-6) for t in times), times
    assert all(gap >= 0.25 - 1e-6 for gap in np.diff(times)), times
    assert np.mean(np.diff(times)) == pytest.approx(0.5, abs=0.1), times


# -- the worker on real RTSP streams ------------------------------------------------------


@pytest.mark.slow
def test_a_killed_rtsp_camera_comes_back_while_the_others_keep_streaming(
    rtsp_cameras: Callable[[str], ClipStream], workers: list[CameraWorker]
) -> None:
    streams = {c: rtsp_cameras(c) for c in ("cam-a", "cam-b", "cam-c")}
    logs = {c: FrameLog() for c in streams}
    backoff = Backoff(initial_s=0.3, max_s=1.5, jitter_s=0.2, reset_after_s=2.0)
    for camera_id, stream in streams.items():
        config = camera(camera_id, stream.url, fps=2.5, watchdog_s=3.0, size=(1280, 720))
        workers.append(CameraWorker(config, on_frame=logs[camera_id], backoff=backoff))
    for worker in workers:
        worker.start()
    wait_until(
        "every camera streaming", lambda: all(len(lg.frames) >= 3 for lg in logs.values()), 20
    )

    killed_at = time.time()
    streams["cam-b"].kill()  # server and encoder gone: connection refused
    victim = workers[1]
    wait_until("cam-b reconnecting", lambda: victim.health().state is CameraState.RECONNECTING, 10)
    time.sleep(2.0)
    streams["cam-b"].start()  # back on the same port
    back_at = time.time()
    wait_until("cam-b frames again", lambda: bool(logs["cam-b"].times(after=back_at)), 20)
    time.sleep(1.0)
    ended_at = time.time()

    assert victim.health().reconnects >= 1
    assert victim.health().state is CameraState.STREAMING
    for camera_id in ("cam-a", "cam-c"):
        times = [killed_at - 0.5, *logs[camera_id].times(after=killed_at - 0.5), ended_at]
        worst = max(np.diff(times))
        assert worst < 1.5, f"{camera_id} had a {worst:.2f} s gap while cam-b was down"
        assert workers[0].health().reconnects == 0 and workers[2].health().reconnects == 0


@pytest.mark.slow
def test_frozen_rtsp_streams_stall_at_their_own_watchdog_timeouts_and_recover(
    rtsp_cameras: Callable[[str], ClipStream], workers: list[CameraWorker]
) -> None:
    timeouts = {"cam-quick": 1.5, "cam-slow": 4.0}
    streams = {c: rtsp_cameras(c) for c in timeouts}
    states = {c: StateLog() for c in timeouts}
    logs = {c: FrameLog() for c in timeouts}
    for camera_id, stream in streams.items():
        config = camera(
            camera_id, stream.url, fps=5, watchdog_s=timeouts[camera_id], size=(1280, 720)
        )
        worker = CameraWorker(config, on_state=states[camera_id], on_frame=logs[camera_id])
        workers.append(worker)
        worker.start()
    wait_until("both streaming", lambda: all(len(lg.frames) >= 3 for lg in logs.values()), 20)

    for stream in streams.values():
        stream.freeze()  # the encoder stops; the RTSP server stays up, so reads block
    frozen_at = time.monotonic()
    wait_until(
        "both stalled",
        lambda: all(s.first(CameraState.STALLED) is not None for s in states.values()),
        10,
    )
    stalled_at = {}
    for camera_id, timeout in timeouts.items():
        stalled = states[camera_id].first(CameraState.STALLED)
        assert stalled is not None
        last_frame = max(t for t, _ in logs[camera_id].frames if t <= stalled)
        waited = stalled - last_frame  # each camera's own timeout, from its last frame
        assert timeout - 0.1 <= waited <= timeout + 1.0, (camera_id, waited)
        stalled_at[camera_id] = stalled
    assert frozen_at < stalled_at["cam-quick"] < stalled_at["cam-slow"]

    for stream in streams.values():
        stream.resume()
    resumed_at = time.monotonic()
    for camera_id, worker in zip(timeouts, workers, strict=True):
        log = states[camera_id]
        wait_until(
            f"{camera_id} streaming again",
            lambda: log.first(CameraState.STREAMING, after=resumed_at) is not None,  # noqa: B023
            20,
        )
        health = worker.health()
        assert health.reconnects >= 1 and health.stalls >= 1
        history = states[camera_id].states()
        assert history[0] is CameraState.STREAMING and CameraState.STALLED in history
        assert history[-1] is CameraState.STREAMING


# -- the service ------------------------------------------------------------------------


class FakeAggregator(edge_pb2_grpc.AggregatorServicer):
    """Records what PushFrames receives (the pixels of the first frame per camera only)."""

    def __init__(self) -> None:
        self.frames: list[tuple[str, int, float, int]] = []  # camera, seq, capture time, encoding
        self.images: dict[str, np.ndarray] = {}

    def PushFrames(
        self, request_iterator: Iterator[frames_pb2.Frame], context: grpc.ServicerContext
    ) -> frames_pb2.PushFramesResponse:
        received = 0
        for frame in request_iterator:
            received += 1
            if frame.camera_id not in self.images:
                self.images[frame.camera_id] = images.decode(frame.image)
            stamp = frame.capture_time.ToNanoseconds() / 1e9
            self.frames.append((frame.camera_id, frame.frame_seq, stamp, frame.image.encoding))
        return frames_pb2.PushFramesResponse(frames_received=received)

    def seqs(self, camera_id: str) -> list[int]:
        return [seq for c, seq, _, _ in self.frames if c == camera_id]


class FakeUplink(uplink_pb2_grpc.UplinkServicer):
    def __init__(self) -> None:
        self.requests: list[list[uplink_pb2.Envelope]] = []

    def Publish(
        self, request: uplink_pb2.PublishRequest, context: grpc.ServicerContext
    ) -> uplink_pb2.PublishResponse:
        self.requests.append(list(request.envelopes))
        return uplink_pb2.PublishResponse(last_seq=sum(len(r) for r in self.requests))

    def states(self, camera_id: str) -> list[int]:
        return [
            e.camera_health.state
            for r in self.requests
            for e in r
            if e.camera_health.camera_id == camera_id
        ]


def serve(register: Callable[..., None], servicer: object, port: int) -> grpc.Server:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8), options=CHANNEL_OPTIONS)
    register(servicer, server)
    assert server.add_insecure_port(f"127.0.0.1:{port}") == port
    server.start()
    return server


def service_config(clip: Path, encoding: str) -> FacilityConfig:
    """Two twin cameras playing the short clip, the gateway's services on free ports."""
    config = twin_config()
    cameras = [
        c.model_copy(update={"source": f"file://{clip}", "fps": 5.0}) for c in config.cameras[:2]
    ]
    assert config.gateway is not None
    services = GatewayServices(base_port=free_ports(3), metrics_base_port=None)
    gateway = config.gateway.model_copy(update={"services": services, "frame_encoding": encoding})
    return config.model_copy(update={"cameras": cameras, "gateway": gateway})


def health_status(address: str) -> int:
    with grpc.insecure_channel(address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        return int(stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=2).status)


PEERS = Backoff(initial_s=0.2, max_s=1.0, jitter_s=0.1, reset_after_s=2.0)


@pytest.mark.slow
@pytest.mark.parametrize("encoding", ["raw", "jpeg"])
def test_the_service_pushes_frames_and_publishes_health(
    clips: dict[str, Path], encoding: str
) -> None:
    config = service_config(clips["short"], encoding)
    plan = gateway_plan(config)
    aggregator, uplink = FakeAggregator(), FakeUplink()
    servers = [
        serve(edge_pb2_grpc.add_AggregatorServicer_to_server, aggregator, plan.aggregator.port),
        serve(uplink_pb2_grpc.add_UplinkServicer_to_server, uplink, plan.uplink.port),
    ]
    service = CaptureService(
        config, plan, health_interval_s=0.5, peer_backoff=PEERS, files_wait_s=0
    )
    cameras = [c.id for c in config.cameras]
    try:
        service.start()
        assert (
            health_status(plan.service("capture").address) == health_pb2.HealthCheckResponse.SERVING
        )
        wait_until(
            "frames of both cameras", lambda: all(len(aggregator.seqs(c)) >= 5 for c in cameras), 15
        )
        wait_until(
            "health of both cameras",
            lambda: all(
                uplink.states(c).count(CameraState.STREAMING.to_proto()) >= 2 for c in cameras
            ),
            10,
        )
    finally:
        service.stop()
        for server in servers:
            server.stop(0)
    wanted = images.RAW_BGR8 if encoding == "raw" else images.JPEG
    assert {e for _, _, _, e in aggregator.frames} == {wanted}
    for camera_id in cameras:
        seqs = aggregator.seqs(camera_id)
        assert seqs == sorted(set(seqs))  # increasing, none twice
        assert aggregator.images[camera_id].shape == (720, 1280, 3)
        assert uplink.states(camera_id)[-1] == CameraState.STOPPED.to_proto()  # said on the way out
    health = next(e.camera_health for r in uplink.requests for e in r if e.camera_health.fps > 0)
    assert health.last_frame_time.seconds > 0


@pytest.mark.slow
def test_the_service_rides_out_aggregator_and_uplink_outages(clips: dict[str, Path]) -> None:
    config = service_config(clips["short"], "raw")
    plan = gateway_plan(config)
    cameras = [c.id for c in config.cameras]
    aggregator, uplink = FakeAggregator(), FakeUplink()
    service = CaptureService(
        config, plan, health_interval_s=0.3, peer_backoff=PEERS, files_wait_s=0
    )
    servers: list[grpc.Server] = []
    try:
        service.start()  # neither the aggregator nor the uplink is up
        wait_until(
            "cameras streaming",
            lambda: all(w.health().state is CameraState.STREAMING for w in service.workers),
            10,
        )
        time.sleep(1.0)  # a few health rounds and state changes pile up... or rather do not
        servers.append(
            serve(uplink_pb2_grpc.add_UplinkServicer_to_server, uplink, plan.uplink.port)
        )
        wait_until("health published", lambda: bool(uplink.requests), 10)
        first = uplink.requests[0]
        assert sorted(e.camera_health.camera_id for e in first) == sorted(
            cameras
        )  # the latest only
        assert {e.camera_health.state for e in first} == {CameraState.STREAMING.to_proto()}

        servers.append(
            serve(edge_pb2_grpc.add_AggregatorServicer_to_server, aggregator, plan.aggregator.port)
        )
        wait_until("frames", lambda: all(len(aggregator.seqs(c)) >= 3 for c in cameras), 15)
        servers.pop().stop(0)  # the aggregator goes away ...
        down_at = time.time()
        seq_before = max(aggregator.seqs(cameras[0]))
        time.sleep(1.5)
        again = FakeAggregator()
        servers.append(
            serve(edge_pb2_grpc.add_AggregatorServicer_to_server, again, plan.aggregator.port)
        )  # ... and comes back on its port
        wait_until("frames again", lambda: all(len(again.seqs(c)) >= 3 for c in cameras), 15)
    finally:
        service.stop()
        for server in servers:
            server.stop(0)
    # frames taken meanwhile were superseded, not queued: the new stream starts with a fresh one
    first_again = min((t, seq) for c, seq, t, _ in again.frames if c == cameras[0])
    assert first_again[1] > seq_before + 3 and first_again[0] > down_at
    superseded = REGISTRY.get_sample_value(
        "locowatch_capture_frames_superseded_total", {"camera": cameras[0]}
    )
    assert superseded is not None and superseded > 0


def test_edge_capture_names_what_is_wrong_in_a_bad_config(tmp_path: Path) -> None:
    config = tmp_path / "facility.yaml"
    config.write_text("version: 1\nfacility: {id: depot}\n", encoding="utf-8")
    result = subprocess.run(
        [sys.executable, "-m", "locowatch", "edge", "capture", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.startswith("error:")
    assert "facility.yaml:2: facility.name: Field required" in result.stderr


def test_jpeg_frames_keep_the_picture(clips: dict[str, Path]) -> None:
    source = open_source(str(clips["short"]))
    try:
        ok, image = source.read()
    finally:
        source.release()
    assert ok and image is not None
    frame = CapturedFrame("cam-04", 7, 1_800_000_000.25, image)
    message = frame.to_proto(images.JPEG)
    assert message.capture_time.ToNanoseconds() == 1_800_000_000_250_000_000
    decoded = images.decode(message.image)
    assert np.abs(decoded.astype(np.int16) - image.astype(np.int16)).mean() < 4
    assert cv2.imdecode(np.frombuffer(message.image.data, np.uint8), cv2.IMREAD_COLOR) is not None


@pytest.mark.slow
def test_file_cameras_start_once_the_aggregator_and_estimators_serve(
    clips: dict[str, Path],
) -> None:
    """A recorded file plays from its start: read while an estimator still opens its engine,
    its first frames would be lost. Live cameras start at once; file cameras wait."""
    config = service_config(clips["short"], "raw")
    plan = gateway_plan(config)
    aggregator, uplink = FakeAggregator(), FakeUplink()
    readiness = HealthServicer()
    readiness.set("", health_pb2.HealthCheckResponse.NOT_SERVING)  # an engine still opening
    servers = [
        serve(uplink_pb2_grpc.add_UplinkServicer_to_server, uplink, plan.uplink.port),
        serve(edge_pb2_grpc.add_AggregatorServicer_to_server, aggregator, plan.aggregator.port),
    ]
    health_pb2_grpc.add_HealthServicer_to_server(readiness, servers[1])
    servers += [
        serve(health_pb2_grpc.add_HealthServicer_to_server, readiness, s.port)
        for s in plan.estimators
    ]
    service = CaptureService(config, plan, health_interval_s=0.5, peer_backoff=PEERS)
    cameras = [c.id for c in config.cameras]
    try:
        service.start()
        time.sleep(3.0)
        assert not aggregator.frames, "file cameras read before the gateway could process"
        readiness.set("", health_pb2.HealthCheckResponse.SERVING)
        wait_until("frames of both cameras", lambda: all(aggregator.seqs(c) for c in cameras), 15)
    finally:
        service.stop()
        for server in servers:
            server.stop(0)
    assert all(aggregator.seqs(c)[0] == 0 for c in cameras)  # from the footage's start
