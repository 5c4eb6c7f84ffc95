"""Twin rendering speed on one core, against decoding the same footage from H.264.

Renders FRAMES frames of each of CAMERAS cameras at 1280x720 (single-threaded OpenCV,
one process), records them to H.264 with ffmpeg, then decodes those files with OpenCV:
the baseline is what a capture worker pays per frame for recorded footage. Prints the
table and the demo's cost (cores to render 16 cameras at 2 fps live), and writes
bench/results/render.json.

    .venv/bin/python bench/bench_render.py [--frames 40] [--cameras 4]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from sim.faults import NO_FAULTS
from sim.recording import VideoWriter
from sim.scenario import ScenarioSpec
from sim.twin import Twin, TwinSpec

RESULTS = Path(__file__).resolve().parent / "results"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=40)
    parser.add_argument("--cameras", type=int, default=4)
    args = parser.parse_args()
    cv2.setNumThreads(1)
    os.environ.setdefault("OMP_NUM_THREADS", "1")

    twin = Twin(TwinSpec(seed=0, scenario=ScenarioSpec(duration_s=600), faults=NO_FAULTS))
    cameras = twin.camera_ids[: args.cameras]
    start = time.perf_counter()
    for camera in cameras:
        twin.renderer(camera)
    setup_s = (time.perf_counter() - start) / len(cameras)

    times = 150.0 + np.arange(args.frames) * 0.5  # mid-morning, locomotives moving
    rendered: dict[str, list[np.ndarray]] = {}
    start = time.perf_counter()
    for camera in cameras:
        rendered[camera] = [
            frame for t in times if (frame := twin.frame(camera, float(t))) is not None
        ]
    render_s = time.perf_counter() - start
    count = sum(len(v) for v in rendered.values())

    with tempfile.TemporaryDirectory() as tmp:
        paths = []
        for camera, frames in rendered.items():
            path = Path(tmp) / f"{camera}.mp4"
            writer = VideoWriter(path, 1280, 720, 2.0)
            for frame in frames:
                writer.write(frame)
            writer.close()
            paths.append(path)
        start = time.perf_counter()
        decoded = 0
        for path in paths:
            capture = cv2.VideoCapture(str(path))
            while capture.read()[0]:
                decoded += 1
        decode_s = time.perf_counter() - start

    render_fps = count / render_s
    decode_fps = decoded / decode_s
    result = {
        "frames": count,
        "cameras": len(cameras),
        "resolution": "1280x720",
        "render_fps_one_core": round(render_fps, 2),
        "render_ms_per_frame": round(1000 / render_fps, 1),
        "decode_fps_one_core": round(decode_fps, 2),
        "render_vs_decode": round(decode_fps / render_fps, 2),
        "camera_setup_s": round(setup_s, 2),
        "demo_cores_16_cameras_2fps_live": round(32 / render_fps, 2),
        "demo_cores_16_cameras_2fps_recorded": round(32 / decode_fps, 2),
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "render.json").write_text(json.dumps(result, indent=2) + "\n")
    width = max(map(len, result)) + 2
    for key, value in result.items():
        print(f"{key:<{width}}{value}")


if __name__ == "__main__":
    main()
