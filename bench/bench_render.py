"""Twin rendering speed on one core, against decoding the same footage from H.264.

Renders FRAMES frames of each of CAMERAS cameras at 1280x720 (single-threaded OpenCV,
one process), records them to H.264 with ffmpeg, then decodes those files with OpenCV:
the baseline is what a capture worker pays per frame for recorded footage. Prints the
table and the demo's cost (cores to render 16 cameras at 2 fps live), and writes
bench/results/render.json.

    .venv/bin/python bench/bench_render.py [--frames 40] [--cameras 4]

``--compare-gl`` instead weighs the canvas step (solids drawn on the pinhole canvas, then
the lens map; no light, noise or JPEG, which both share) of the hand-written painter's
renderer against OpenGL on Mesa's software rasterizer (``sim.gl_render``), on the same
scenes, one core each (``LP_NUM_THREADS=1``), as locomotives get more small parts (boxes
along their sides standing in for louvres, handrails and wheels): milliseconds per frame
side by side, and how alike the two canvases are (share of pixels within 30 levels); a
last row draws the varied twin (``--variety all``: the detailed locomotives of
``sim/locomotive.py`` and its hall) at the same instants. Writes
bench/results/render_gl.json.

    LP_NUM_THREADS=1 .venv/bin/python bench/bench_render.py --compare-gl [--frames 6]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from functools import partial
from pathlib import Path

import cv2
import numpy as np

from edge.recordings import VideoWriter
from sim.faults import NO_FAULTS
from sim.render import CameraRenderer, Lighting
from sim.scenario import ScenarioSpec
from sim.scene import Solid, track_box
from sim.twin import Twin, TwinSpec
from sim.variety import VarietySpec

RESULTS = Path(__file__).resolve().parent / "results"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=40)
    parser.add_argument("--cameras", type=int, default=4)
    parser.add_argument("--compare-gl", action="store_true", help="hand-written vs OpenGL canvas")
    args = parser.parse_args()
    cv2.setNumThreads(1)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    if args.compare_gl:
        compare_gl(args.frames, args.cameras)
        return

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


PARTS_PER_LOCOMOTIVE = (0, 50, 200)
VARIED = "varied"  # the varied twin's own detailed locomotives, not boxes added to the classic


def compare_gl(frames: int, cameras: int) -> None:
    from sim.gl_render import GlCanvas, render_gl

    spec = TwinSpec(seed=0, scenario=ScenarioSpec(duration_s=600), faults=NO_FAULTS)
    twin = Twin(spec)
    varied = Twin(replace(spec, variety=VarietySpec.parse("all")))
    times = 150.0 + np.arange(frames) * 0.5
    rows = []
    for camera in twin.camera_ids[:cameras]:
        for parts in (*PARTS_PER_LOCOMOTIVE, VARIED):
            source = varied if parts == VARIED else twin
            renderer = source.renderer(camera)
            canvas = GlCanvas(renderer)
            scenes = [
                (
                    source.solids(renderer, float(t))
                    if isinstance(parts, str)
                    else _detailed(twin, renderer, float(t), parts),
                    _light(twin, float(t)),
                )
                for t in times
            ]
            hand, hand_s = _timed(partial(renderer.render, finish=False), scenes)
            gl, gl_s = _timed(partial(render_gl, renderer, canvas, finish=False), scenes)
            alike = np.mean([_alike(a, b) for a, b in zip(hand, gl, strict=True)])
            rows.append(
                {
                    "camera": camera,
                    "parts_per_locomotive": parts,
                    "solids": len(scenes[0][0]),
                    "hand_ms": round(1000 * hand_s / len(scenes), 1),
                    "gl_ms": round(1000 * gl_s / len(scenes), 1),
                    "pixels_alike": round(float(alike), 3),
                }
            )
            print(rows[-1], flush=True)
            canvas.release()
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "render_gl.json").write_text(json.dumps(rows, indent=2) + "\n")
    print("| parts per locomotive | solids (mean) | hand-written, ms/frame | OpenGL, ms/frame |")
    print("| --- | --- | --- | --- |")
    for parts in (*PARTS_PER_LOCOMOTIVE, VARIED):
        of = [r for r in rows if r["parts_per_locomotive"] == parts]
        mean = {k: np.mean([r[k] for r in of]) for k in ("solids", "hand_ms", "gl_ms")}
        print(f"| {parts} | {mean['solids']:.0f} | {mean['hand_ms']:.0f} | {mean['gl_ms']:.0f} |")


def _detailed(twin: Twin, renderer: CameraRenderer, t: float, parts: int) -> list[Solid]:
    """The twin's solids plus ``parts`` small boxes along each locomotive's camera side."""
    solids = twin.solids(renderer, t)
    for state in twin.scenario.at(t):
        axis, half = renderer.axes[state.track], state.loco.series.width_m / 2
        for i in range(parts):
            s = state.tail_m + 1.0 + (state.head_m - state.tail_m - 2.0) * i / parts
            part = track_box(axis, (s, s + 0.08), (-half - 0.05, -half), (2.0, 3.2), (90, 90, 90))
            if renderer.sees(part.corners.reshape(-1, 3)):
                solids.append(part)
    return solids


def _light(twin: Twin, t: float) -> Lighting:
    return Lighting.at_hour(twin.scenario.hour_of_day(t))


def _timed(
    draw: Callable[..., np.ndarray], scenes: list[tuple[list[Solid], Lighting]]
) -> tuple[list[np.ndarray], float]:
    start = time.perf_counter()
    frames = [draw(solids, light) for solids, light in scenes]
    return frames, time.perf_counter() - start


def _alike(a: np.ndarray, b: np.ndarray) -> float:
    return float((np.abs(a.astype(np.int16) - b.astype(np.int16)).max(axis=2) <= 30).mean())


if __name__ == "__main__":
    main()
