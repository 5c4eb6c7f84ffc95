"""The twin as a camera: sim:// live sources and real RTSP streams."""

from __future__ import annotations

import os

import cv2
import numpy as np
import pytest

from sim.faults import NO_FAULTS, Fault, FaultPlan
from sim.live import LiveSource, SimUrl
from sim.scenario import ScenarioSpec
from sim.streaming import TwinStreamer
from sim.twin import Twin, TwinSpec


class FakeClock:
    """Wall clock that only moves when someone sleeps: pacing without waiting."""

    def __init__(self, now: float) -> None:
        self.now = now
        self.slept: list[float] = []

    def time(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


@pytest.mark.parametrize(
    ("url", "error"),
    [
        ("rtsp://x/cam-01", "expected sim://"),
        ("sim://depot", "expected sim://"),
        ("sim://depot/cam-01?speed=2", "unknown sim:// parameters: speed"),
    ],
)
def test_bad_sim_urls_are_refused(url: str, error: str) -> None:
    with pytest.raises(ValueError, match=error):
        SimUrl.parse(url)


def test_live_source_paces_frames_on_a_shared_clock() -> None:
    clock = FakeClock(1_800_000_000.0)
    url = "sim://twin-depot/cam-04?seed=11&duration=60&fps=4&faults=0&start=1800000000"
    source = LiveSource(url, clock=clock.time, sleep=clock.sleep)
    assert source.isOpened()
    clock.now += 0.1  # opened a little after a frame was due: the next one is at 0.25
    times = []
    for _ in range(5):
        ok, frame = source.read()
        assert ok and frame is not None and frame.shape == (720, 1280, 3)
        times.append(source.frame_time() - 1_800_000_000.0)
    assert times == pytest.approx([0.25, 0.5, 0.75, 1.0, 1.25])
    assert clock.now - 1_800_000_000.0 == pytest.approx(1.25)  # waited for each, no more
    # the same camera opened elsewhere with the same start shows the same picture
    twin = Twin(TwinSpec(seed=11, scenario=ScenarioSpec(duration_s=60), faults=NO_FAULTS))
    assert np.array_equal(twin.frame("cam-04", 1.25), frame)


def test_live_source_drops_out_and_comes_back() -> None:
    clock = FakeClock(1_800_000_000.0)
    url = "sim://twin-depot/cam-03?seed=12&duration=60&fps=2&faults=0&start=1800000000"
    source = LiveSource(url, clock=clock.time, sleep=clock.sleep)
    source.twin.faults = FaultPlan([Fault("cam-03", "dropout", 1.0, 3.0)])
    assert source.read()[0] and source.read()[0]  # t = 0, 0.5
    assert source.read() == (False, None)  # t = 1.0: the stream died
    assert not source.isOpened()
    clock.now += 1.0  # t = 2.0: reopening fails while the camera is out
    assert not LiveSource(url, clock=clock.time, sleep=clock.sleep).isOpened()
    clock.now += 1.5  # t = 3.5: back
    reopened = LiveSource(url, clock=clock.time, sleep=clock.sleep)
    assert reopened.isOpened() and reopened.read()[0]


@pytest.mark.slow
def test_rtsp_stream_of_a_twin_camera() -> None:
    os.environ["OPENCV_FFMPEG_CAPTURE_OPTIONS"] = "rtsp_transport;tcp"
    twin = Twin(TwinSpec(seed=0, scenario=ScenarioSpec(duration_s=120), faults=NO_FAULTS))
    with TwinStreamer(["cam-04"], twin=twin, fps=2.0) as streamer:
        url = streamer.urls()["cam-04"]
        assert url.startswith("rtsp://127.0.0.1:")
        capture = cv2.VideoCapture(url, cv2.CAP_FFMPEG)
        assert capture.isOpened(), f"could not open {url}"
        frames = [capture.read()[1] for _ in range(3)]
        capture.release()
    assert all(f is not None and f.shape == (720, 1280, 3) for f in frames)
    reference = twin.frame("cam-04", 1.0)
    assert reference is not None
    # what arrives over RTSP is the twin camera's picture (H.264 aside)
    difference = np.abs(frames[-1].astype(np.int16) - reference.astype(np.int16)).mean()
    assert difference < 12, difference
    other = twin.frame("cam-10", 1.0)
    assert other is not None
    assert np.abs(frames[-1].astype(np.int16) - other.astype(np.int16)).mean() > difference + 10
