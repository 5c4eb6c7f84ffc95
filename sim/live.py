"""``sim://`` sources: a twin camera that the capture service opens like an IP camera.

URL form::

    sim://<facility>/<camera>?seed=0&duration=600&fps=2&start=<unix seconds>&faults=1

``LiveSource`` behaves like ``cv2.VideoCapture`` on a live stream: ``read()`` blocks until
the camera's next frame is due in wall-clock time, a freeze repeats the picture, a black
fault delivers black frames, and a dropout makes ``read()`` fail (and reopening fail)
until it is over. Every camera opened with the same ``start`` shares one scenario clock,
so their pictures agree with one another and with the ground truth.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from urllib.parse import parse_qs, urlsplit

import numpy as np

from sim.faults import NO_FAULTS, FaultSpec
from sim.scenario import ScenarioSpec
from sim.twin import Twin, TwinSpec

SCHEME = "sim"


@dataclass(frozen=True)
class SimUrl:
    facility: str
    camera_id: str
    seed: int = 0
    duration_s: float = 600.0
    fps: float = 2.0
    start: float | None = None  # unix seconds of scenario time 0; None: when opened
    faults: bool = True

    @classmethod
    def parse(cls, url: str) -> SimUrl:
        parts = urlsplit(url)
        if parts.scheme != SCHEME or not parts.netloc or not parts.path.strip("/"):
            raise ValueError(f"expected sim://<facility>/<camera>[?seed=..], got {url!r}")
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        known = {"seed", "duration", "fps", "start", "faults"}
        unknown = sorted(set(query) - known)
        if unknown:
            raise ValueError(f"unknown sim:// parameters: {', '.join(unknown)}")
        return cls(
            facility=parts.netloc,
            camera_id=parts.path.strip("/"),
            seed=int(query.get("seed", 0)),
            duration_s=float(query.get("duration", 600)),
            fps=float(query.get("fps", 2)),
            start=float(query["start"]) if "start" in query else None,
            faults=query.get("faults", "1") not in ("0", "false", "no"),
        )

    def spec(self, start: float) -> TwinSpec:
        return TwinSpec(
            seed=self.seed,
            scenario=ScenarioSpec(
                duration_s=self.duration_s, start_time=datetime.fromtimestamp(start, UTC)
            ),
            faults=FaultSpec() if self.faults else NO_FAULTS,
        )


@cache
def _shared_twin(spec: TwinSpec) -> Twin:
    """One twin per spec and process: cameras of one capture process share it."""
    return Twin(spec)


class LiveSource:
    """A twin camera with the parts of the ``cv2.VideoCapture`` API capture uses."""

    def __init__(
        self,
        url: str,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.url = SimUrl.parse(url)
        self._clock = clock
        self._sleep = sleep
        start = self.url.start if self.url.start is not None else clock()
        self.twin = _shared_twin(self.url.spec(start))
        if self.url.camera_id not in self.twin.camera_ids:
            raise ValueError(f"{url}: the twin has no camera {self.url.camera_id!r}")
        self.start = start
        self._next_frame = 0
        self._opened = self._fault_kind(self._now()) != "dropout"

    def _now(self) -> float:
        return self._clock() - self.start

    def _fault_kind(self, t: float) -> str | None:
        fault = self.twin.faults.active(self.url.camera_id, t)
        return fault.kind if fault else None

    def isOpened(self) -> bool:  # noqa: N802 (cv2.VideoCapture's name)
        return self._opened

    def read(self) -> tuple[bool, np.ndarray | None]:
        """Wait for the next frame time; (False, None) when the camera dropped out or ended."""
        if not self._opened:
            return False, None
        period = 1.0 / self.url.fps
        now = self._now()
        index = max(self._next_frame, int(np.ceil(now / period - 1e-9)))
        t = index * period
        if t >= self.url.duration_s:
            self._opened = False
            return False, None
        self._sleep(max(0.0, t - now))
        self._next_frame = index + 1
        frame = self.twin.frame(self.url.camera_id, t)
        if frame is None:  # the stream died: the caller has to reopen it
            self._opened = False
            return False, None
        return True, frame

    def frame_time(self) -> float:
        """Unix time of the frame ``read`` returned last."""
        return self.start + (self._next_frame - 1) / self.url.fps

    def release(self) -> None:
        self._opened = False
