"""One camera kept streaming: reopen with backoff, a watchdog, frames at the camera's fps.

A ``CameraWorker`` has a supervisor thread (``capture:cam-07``) and, per stream
*generation*, a reader thread (``capture:cam-07#3``) that opens the source and reads it.
Only the reader touches its capture object, and it releases it itself. The supervisor
never reads, so a read that blocks cannot hang it:

- no frame for ``camera.watchdog_timeout_s`` after the stream opened (or after the last
  frame): the camera is STALLED, the generation is *abandoned* and a new one opens a fresh
  stream. The abandoned reader keeps blocking in its read until the read returns (FFmpeg's
  read timeout, set a little past the watchdog, bounds that), then sees it was abandoned,
  delivers nothing and releases its capture;
- an open that does not return within its timeout plus the watchdog is abandoned the same
  way;
- a read that fails (the camera dropped the connection) ends the generation; the worker
  reopens at once if the stream had run healthily for ``backoff.reset_after_s``, else after
  an exponential backoff with jitter (tenacity).

Frames are grabbed as fast as the source delivers them but retrieved (converted to BGR)
only when due at ``camera.fps``; each kept frame gets the capture time the source stamped
at the read and the next per-camera ``seq``, and replaces whatever frame is waiting in the
one-slot mailbox ``frames`` (latest frame wins). A frame of the wrong size is a decode
error, never delivered.
"""

from __future__ import annotations

import contextlib
import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from tenacity import RetryCallState

from edge.capture import metrics
from edge.capture.frames import (
    CameraState,
    CapturedFrame,
    FrameSchedule,
    HealthSnapshot,
    LatestFrame,
)
from edge.capture.sources import FrameSource, Image, SourceError, SourceOptions, open_source
from locowatch.backoff import Backoff, next_delay
from locowatch.facility.config import Camera
from locowatch.logs import redact

log = logging.getLogger(__name__)

OPEN_TIMEOUT_S = 10.0
READ_TIMEOUT_MARGIN_S = 5.0  # FFmpeg's read timeout = watchdog + this: the watchdog decides
FPS_WINDOW_S = 5.0
DECODE_LOG_EVERY_S = 10.0  # a camera sending only bad frames logs one line per this

Opener = Callable[[str, SourceOptions], FrameSource]


class StreamError(Exception):
    """The stream failed, stalled or would not open; the worker reopens it after a backoff."""


class _SourceFinishedError(Exception):
    """A finite source (a file played once) has no more frames."""


# OpenCV's FFmpeg backend opens one stream at a time per process (a global lock around
# the whole open, 2-3 s for an RTSP camera: handshake, probing, the first keyframe), so
# 16 cameras starting together take half a minute to all stream. Waiting on our own lock
# first makes that wait visible to the watchdog, which then times only the open itself.
OPENING = threading.Lock()


@dataclass(eq=False)
class _Generation:
    """One opening of the stream and its reader thread."""

    number: int
    started_at: float  # monotonic, as all times here
    schedule: FrameSchedule  # which frames to keep (per opening: the source's clock may
    # start anew after a reconnect)
    opening_at: float | None = None  # when its turn to open came (see OPENING)
    opened_at: float | None = None
    first_frame_at: float | None = None
    last_frame_at: float | None = None
    abandoned: bool = False
    counted_abandoned: bool = False
    ended: bool = False
    finished: bool = False
    error: str = ""

    def healthy_for(self) -> float:
        if self.first_frame_at is None or self.last_frame_at is None:
            return 0.0
        return self.last_frame_at - self.first_frame_at


class CameraWorker:
    """Keeps one camera streaming into ``frames``; ``start``, ``stop``, ``health``.

    Args:
        camera: the camera's config (source, fps, watchdog_timeout_s, resolution).
        on_frame: called with every kept frame, in the reader thread (keep it short).
        on_state: called with a health snapshot whenever the state changes.
        backoff: delays between reopenings.
        opener: opens the camera's source (tests pass fakes).
        options: open/read timeouts; by default 10 s and the watchdog plus 5 s.
    """

    def __init__(
        self,
        camera: Camera,
        *,
        on_frame: Callable[[CapturedFrame], None] | None = None,
        on_state: Callable[[HealthSnapshot], None] | None = None,
        backoff: Backoff | None = None,
        opener: Opener = open_source,
        options: SourceOptions | None = None,
    ) -> None:
        self.camera = camera
        self.camera_id = camera.id
        self.name = f"capture:{camera.id}"
        self.frames = LatestFrame()
        self.on_frame = on_frame
        self.on_state = on_state
        self.backoff = backoff or Backoff()
        self.opener = opener
        self.options = options or SourceOptions(
            open_timeout_s=OPEN_TIMEOUT_S,
            read_timeout_s=camera.watchdog_timeout_s + READ_TIMEOUT_MARGIN_S,
            fallback_fps=max(camera.fps, 25.0),
        )
        self.watchdog_s = camera.watchdog_timeout_s
        self.open_guard_s = self.options.open_timeout_s + camera.watchdog_timeout_s
        self.error: BaseException | None = None  # what crashed the supervisor, if anything
        self._fps = camera.fps
        self._shape = (camera.resolution.height, camera.resolution.width, 3)
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._generation: _Generation | None = None
        self._generations = 0
        self._started_at = time.monotonic()
        self._state = CameraState.STARTING
        self._message = ""
        self._seq = 0
        self._reconnects = 0
        self._decode_errors = 0
        self._stalls = 0
        self._abandoned_alive = 0
        self._last_frame_time: float | None = None
        self._recent: deque[float] = deque()
        self._last_decode_log = -math.inf
        metrics.set_state(self.camera_id, self._state)

    # -- lifecycle -----------------------------------------------------------------------

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError(f"{self.name} was started already")
        self._started_at = time.monotonic()
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 5.0, reader_s: float = 0.0) -> None:
        """Stop at once; a reader blocked in a read is left to return on its own, or waited
        for up to ``reader_s`` (a process about to exit: a thread still inside the decoder
        when the interpreter goes aborts it)."""
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout_s)
        with self._cond:
            generation = self._generation
            if generation is not None:
                self._cond.wait_for(lambda: generation.ended, reader_s)

    def is_running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def health(self) -> HealthSnapshot:
        with self._cond:
            return self._snapshot()

    # -- supervisor ----------------------------------------------------------------------

    def _run(self) -> None:
        message = ""
        try:
            while not self._stop.is_set():
                retrying = self.backoff.retrying(self._stop, StreamError, self._before_reopen)
                with contextlib.suppress(StreamError):  # raised here only once stopped
                    retrying(self._session)
        except _SourceFinishedError as end:
            message = str(end)
            log.info("%s: %s; the camera stops", self.camera_id, message)
        except BaseException as exc:  # a bug: record it, never take the process down
            self.error = exc
            message = f"capture worker failed: {exc!r}"
            log.exception("%s: capture worker failed", self.camera_id)
        finally:
            with self._cond:
                if self._generation is not None:
                    self._abandon(self._generation)
            self._transition(CameraState.STOPPED, message)

    def _session(self) -> None:
        """Open a generation and watch it; return to reset the backoff, raise to back off."""
        if self._stop.is_set():
            return
        generation = self._open_generation()
        failure, stalled = self._watch(generation)
        if failure is None:
            return  # stopped
        at_once = generation.healthy_for() >= self.backoff.reset_after_s
        if stalled:
            with self._cond:
                self._stalls += 1
            metrics.STALLS.labels(self.camera_id).inc()
            self._transition(CameraState.STALLED, failure)
        else:
            self._transition(CameraState.RECONNECTING, failure)
        if at_once:  # it had streamed fine: reopen now, the backoff starts afresh
            log.warning("%s: %s%s; reopening", self.camera_id, "stalled: " * stalled, failure)
            return
        if stalled:
            log.warning("%s: stalled: %s", self.camera_id, failure)
        raise StreamError(failure)  # tenacity logs the reconnection (_before_reopen)

    def _open_generation(self) -> _Generation:
        with self._cond:
            self._generations += 1
            generation = _Generation(self._generations, time.monotonic(), FrameSchedule(self._fps))
            self._generation = generation
            reconnect = generation.number > 1
            if reconnect:
                self._reconnects += 1
        if reconnect:
            metrics.RECONNECTS.labels(self.camera_id).inc()
        threading.Thread(
            target=self._read,
            args=(generation,),
            name=f"{self.name}#{generation.number}",
            daemon=True,
        ).start()
        return generation

    def _watch(self, generation: _Generation) -> tuple[str | None, bool]:
        """Wait until the generation fails or stalls: (why, stalled); (None, False) on stop."""
        with self._cond:
            while True:
                if self._stop.is_set():
                    self._abandon(generation)
                    return None, False
                if generation.ended:
                    if generation.finished:
                        raise _SourceFinishedError(generation.error)
                    return generation.error or "the stream ended", False
                now = time.monotonic()
                if generation.opening_at is None:  # waiting for its turn to open
                    self._cond.wait(1.0)
                    continue
                if generation.opened_at is None:
                    deadline = generation.opening_at + self.open_guard_s
                else:
                    last = max(generation.opened_at, generation.last_frame_at or 0.0)
                    deadline = last + self.watchdog_s
                if now >= deadline:
                    self._abandon(generation)
                    if generation.opened_at is None:
                        return f"opening did not return within {self.open_guard_s:g} s", False
                    return f"no frame for {self.watchdog_s:g} s", True
                self._cond.wait(deadline - now)

    def _abandon(self, generation: _Generation) -> None:
        """Give up on a generation (lock held); its reader releases the stream when it can."""
        if generation.abandoned:
            return
        generation.abandoned = True
        if not generation.ended:
            generation.counted_abandoned = True
            self._abandoned_alive += 1
            metrics.ABANDONED_READERS.labels(self.camera_id).inc()

    def _before_reopen(self, state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome is not None else None
        self._transition(CameraState.RECONNECTING, str(error))
        attempt = state.attempt_number
        # A camera down for days: the first attempts, then one line in ten.
        log.log(
            logging.WARNING if attempt <= 3 or attempt % 10 == 0 else logging.DEBUG,
            "%s: reconnecting in %.1f s (attempt %d): %s",
            self.camera_id,
            next_delay(state),
            state.attempt_number,
            error,
        )

    # -- reader --------------------------------------------------------------------------

    def _read(self, generation: _Generation) -> None:
        """The reader thread of one generation: open, read until it fails or is abandoned."""
        source: FrameSource | None = None
        error = ""
        try:
            with OPENING:
                # The open guard counts from here: time spent waiting for the other
                # cameras' opens is not this stream's fault.
                with self._cond:
                    if generation.abandoned:
                        return
                    generation.opening_at = time.monotonic()
                    self._cond.notify_all()
                try:
                    url = self.camera.source_url()  # the login, from the gateway's secrets
                except ValueError as exc:
                    raise SourceError(str(exc)) from None
                source = self.opener(url, self.options)
            with self._cond:
                if generation.abandoned:
                    return
                generation.opened_at = time.monotonic()
                self._cond.notify_all()
            log.info(
                "%s: opened %s (stream %d)",
                self.camera_id,
                redact(self.camera.source),
                generation.number,
            )
            error = self._pump(generation, source)
        except SourceError as exc:
            error = str(exc)
        except Exception as exc:  # cv2.error and friends: end this generation, not the worker
            error = f"{type(exc).__name__}: {exc}"
            log.debug("%s: stream %d failed", self.camera_id, generation.number, exc_info=True)
        finally:
            if source is not None:
                try:
                    source.release()
                except Exception:
                    log.debug("%s: release failed", self.camera_id, exc_info=True)
            with self._cond:
                generation.ended = True
                generation.error = error
                if generation.counted_abandoned:
                    self._abandoned_alive -= 1
                    metrics.ABANDONED_READERS.labels(self.camera_id).dec()
                self._cond.notify_all()
            if generation.abandoned:
                log.log(
                    logging.DEBUG if self._stop.is_set() else logging.INFO,
                    "%s: abandoned stream %d returned and was released",
                    self.camera_id,
                    generation.number,
                )

    def _pump(self, generation: _Generation, source: FrameSource) -> str:
        """Grab every frame, keep the due ones; returns why the stream ended ("" if abandoned)."""
        while not generation.abandoned:
            if not source.grab():
                generation.finished = source.finished
                return "end of the file" if source.finished else "the stream stopped (read failed)"
            if generation.abandoned or not generation.schedule.due(source.frame_time):
                continue
            ok, image = source.retrieve()
            if generation.abandoned:
                break
            if not ok or image is None:
                self._decode_error("a frame could not be decoded")
            elif image.shape != self._shape:
                self._decode_error(
                    f"a frame of {_size(image.shape)}, expected {_size(self._shape)}"
                )
            else:
                self._deliver(generation, image, source.frame_time)
        return ""

    def _deliver(self, generation: _Generation, image: Image, frame_time: float) -> None:
        with self._cond:
            if generation.abandoned:
                return
            now = time.monotonic()
            if generation.first_frame_at is None:
                generation.first_frame_at = now
            generation.last_frame_at = now
            seq = self._seq
            self._seq += 1
            self._last_frame_time = frame_time
            self._recent.append(now)
            recovered = self._state is not CameraState.STREAMING
        frame = CapturedFrame(self.camera_id, seq, frame_time, image)
        if self.frames.put(frame):
            metrics.FRAMES_SUPERSEDED.labels(self.camera_id).inc()
        metrics.FRAMES.labels(self.camera_id).inc()
        metrics.LAST_FRAME.labels(self.camera_id).set(frame_time)
        if recovered:
            self._transition(CameraState.STREAMING, "")
            log.info("%s: streaming (stream %d)", self.camera_id, generation.number)
        if self.on_frame is not None:
            self.on_frame(frame)

    def _decode_error(self, message: str) -> None:
        now = time.monotonic()
        with self._cond:
            self._decode_errors += 1
            count = self._decode_errors
            self._message = message
            loud = now - self._last_decode_log >= DECODE_LOG_EVERY_S
            if loud:
                self._last_decode_log = now
        metrics.DECODE_ERRORS.labels(self.camera_id).inc()
        if loud:
            log.warning("%s: decode error (%d so far): %s", self.camera_id, count, message)

    # -- health --------------------------------------------------------------------------

    def _transition(self, state: CameraState, message: str) -> None:
        with self._cond:
            changed = state is not self._state
            self._state, self._message = state, message
            snapshot = self._snapshot()
        if changed:
            metrics.set_state(self.camera_id, state)
            if self.on_state is not None:
                self.on_state(snapshot)

    def _snapshot(self) -> HealthSnapshot:
        """Health now (lock held)."""
        now = time.monotonic()
        while self._recent and self._recent[0] < now - FPS_WINDOW_S:
            self._recent.popleft()
        span = min(FPS_WINDOW_S, max(now - self._started_at, 1e-3))
        return HealthSnapshot(
            camera_id=self.camera_id,
            observed_time=time.time(),
            state=self._state,
            fps=round(len(self._recent) / span, 2),
            last_frame_time=self._last_frame_time,
            reconnects=self._reconnects,
            decode_errors=self._decode_errors,
            stalls=self._stalls,
            abandoned_readers=self._abandoned_alive,
            message=self._message,
        )


def _size(shape: tuple[int, ...]) -> str:
    text = f"{shape[1]}x{shape[0]}" if len(shape) >= 2 else str(shape)
    return text + (f"x{shape[2]}" if len(shape) == 3 and shape[2] != 3 else "")
