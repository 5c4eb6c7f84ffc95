"""Training sets for the position, model (series) and plate estimators, from the twin.

Every sample is a window of a camera frame rectified onto a track's curtain with
``locowatch.facility.rectify`` (the same code the edge uses at run time), with labels from
the ground truth. The format is documented in docs/datasets.md; a real facility writes the
same folders from its own labelled footage and trains with the same command.

    DIR/manifest.json
    DIR/position/labels.jsonl + images/*.png   strips of a camera's whole view of its track
    DIR/model/labels.jsonl + images/*.png      body windows, labelled with the series
    DIR/plate/labels.jsonl + images/*.png      cab-side bands next to a real end, with the text
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from locowatch import __version__
from locowatch.facility.rectify import (
    BODY_METRES_PER_PX,
    PLATE_FACE,
    PLATE_METRES_PER_PX,
    STRIP_HEIGHT,
    STRIP_METRES_PER_PX,
    Curtain,
    EndFace,
    body_window,
    strip_window,
)
from sim.render import Lighting
from sim.scene import locomotive_solids, plates_of
from sim.twin import Twin, TwinSpec
from sim.workers import per_camera

END_MARGIN_M = 0.3  # an end this close to the edge of the covered span counts as cut
BODY_MAX_M = 12.0  # series windows are at most this long (the cab end matters most)
BODY_MIN_M = 5.0


@dataclass(frozen=True)
class Body:
    """A locomotive's visible part in one strip, as the position estimator should report it."""

    loco: str
    series: str
    tail_m: float
    head_m: float
    tail: str  # "real" or "cut"
    head: str


def bodies_in_view(twin: Twin, track: str, covered: tuple[float, float], t: float) -> list[Body]:
    """Ground truth clipped to the covered span, each end marked real or cut."""
    lo, hi = covered
    bodies = []
    for state in twin.scenario.at(t):
        if state.track != track or state.head_m <= lo or state.tail_m >= hi:
            continue
        tail_real = state.tail_m >= lo + END_MARGIN_M
        head_real = state.head_m <= hi - END_MARGIN_M
        bodies.append(
            Body(
                loco=state.loco.loco_id,
                series=state.loco.series.name,
                tail_m=round(max(state.tail_m, lo), 3),
                head_m=round(min(state.head_m, hi), 3),
                tail="real" if tail_real else "cut",
                head="real" if head_real else "cut",
            )
        )
    return sorted(bodies, key=lambda b: b.tail_m)


def write_dataset(
    spec: TwinSpec,
    out: Path,
    every_s: float,
    camera_ids: list[str] | None = None,
    jobs: int = 2,
    progress: bool = True,
) -> dict[str, int]:
    """Render samples every ``every_s`` seconds for each camera; returns counts per kind."""
    twin = Twin(spec)
    cameras = camera_ids or twin.camera_ids
    for kind in ("position", "model", "plate"):
        (out / kind / "images").mkdir(parents=True, exist_ok=True)
    times = np.arange(0.0, spec.scenario.duration_s, every_s)
    labels = per_camera(
        _camera_samples, cameras, (spec, times, out), len(times), jobs, "samples", progress
    )
    counts = {}
    for kind in ("position", "model", "plate"):
        rows = [row for per_camera in labels for row in per_camera[kind]]
        with (out / kind / "labels.jsonl").open("w", encoding="utf-8") as handle:
            for row in rows:
                handle.write(json.dumps(row, ensure_ascii=False) + "\n")
        counts[kind] = len(rows)
    manifest = {
        "software_version": __version__,
        "seed": spec.seed,
        "duration_s": spec.scenario.duration_s,
        "every_s": every_s,
        "cameras": cameras,
        "counts": counts,
        "windows": {
            "position": {"metres_per_px": STRIP_METRES_PER_PX, "heights_m": list(STRIP_HEIGHT)},
            "model": {"metres_per_px": BODY_METRES_PER_PX, "max_length_m": BODY_MAX_M},
            "plate": {
                "metres_per_px": PLATE_METRES_PER_PX,
                "half_width_bottom_top_m": list(PLATE_FACE),
            },
        },
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")
    return counts


def _camera_samples(
    camera_id: str, spec: TwinSpec, times: np.ndarray, out: Path, ticks: Any
) -> dict[str, list[dict[str, Any]]]:
    twin = Twin(spec)
    camera = twin.facility.camera_by_id[camera_id]
    view = camera.views[0]
    axis = twin.layout.axis(view.track)
    curtain = Curtain(twin.geometry.cameras[camera_id], axis)
    strip = strip_window(view.start_m, view.end_m)
    covered = curtain.covered_span(strip)
    rows: dict[str, list[dict[str, Any]]] = {"position": [], "model": [], "plate": []}
    for t in times:
        frame = twin.frame(camera_id, float(t))
        ticks.put(1)
        if frame is None or covered is None:
            continue
        light = Lighting.at_hour(twin.scenario.hour_of_day(float(t)))
        stem = f"{camera_id}_{t:08.2f}"
        common = {
            "camera": camera_id,
            "track": view.track,
            "t": round(float(t), 2),
            "hour": round(twin.scenario.hour_of_day(float(t)), 2),
            "infrared": light.infrared,
        }
        bodies = bodies_in_view(twin, view.track, covered, float(t))
        image = f"images/{stem}.png"
        cv2.imwrite(str(out / "position" / image), curtain.rectify(frame, strip))
        rows["position"].append(
            {
                "image": image,
                **common,
                "start_m": strip.start_m,
                "end_m": strip.end_m,
                "metres_per_px": strip.metres_per_px,
                "covered": list(covered),
                "bodies": [asdict(b) for b in bodies],
            }
        )
        for body in bodies:
            rows["model"] += _body_sample(out, curtain, frame, body, stem, common)
            rows["plate"] += _plate_samples(
                out, twin, curtain, frame, body, covered, float(t), stem, common
            )
    return rows


def _body_sample(
    out: Path, curtain: Curtain, frame: np.ndarray, body: Body, stem: str, common: dict[str, Any]
) -> list[dict[str, Any]]:
    length = body.head_m - body.tail_m
    if length < BODY_MIN_M:
        return []
    if body.head == "real":  # the cab end says most about the series
        start, end = max(body.tail_m, body.head_m - BODY_MAX_M), body.head_m
    elif body.tail == "real":
        start, end = body.tail_m, min(body.head_m, body.tail_m + BODY_MAX_M)
    else:
        middle = (body.tail_m + body.head_m) / 2
        start, end = (
            max(body.tail_m, middle - BODY_MAX_M / 2),
            min(body.head_m, middle + BODY_MAX_M / 2),
        )
    window = body_window(start, end)
    image = f"images/{stem}_{body.loco}.png"
    cv2.imwrite(str(out / "model" / image), curtain.rectify(frame, window))
    return [
        {
            "image": image,
            **common,
            "loco": body.loco,
            "series": body.series,
            "start_m": round(start, 3),
            "end_m": round(end, 3),
        }
    ]


def _plate_samples(
    out: Path,
    twin: Twin,
    curtain: Curtain,
    frame: np.ndarray,
    body: Body,
    covered: tuple[float, float],
    t: float,
    stem: str,
    common: dict[str, Any],
) -> list[dict[str, Any]]:
    """End faces of the body that face the camera, labelled with the number painted there."""
    state = next(s for s in twin.scenario.at(t) if s.loco.loco_id == body.loco)
    faces = EndFace(curtain.camera, curtain.axis)
    plates = [
        p
        for p in plates_of(locomotive_solids(state.loco, curtain.axis, state.tail_m), curtain.axis)
        if p.end_m - p.start_m < 0.05
    ]  # end plates
    rows = []
    for end, kind, direction in ((body.tail_m, body.tail, -1), (body.head_m, body.head, 1)):
        if kind != "real" or not faces.faces_camera(end, direction):
            continue
        on_face = [p for p in plates if abs(p.start_m - end) < 0.6]
        image = f"images/{stem}_{body.loco}_{'head' if direction > 0 else 'tail'}.png"
        cv2.imwrite(str(out / "plate" / image), faces.rectify(frame, end, direction))
        rows.append(
            {
                "image": image,
                **common,
                "loco": body.loco,
                "text": on_face[0].text if on_face else "",
                "end_m": round(end, 3),
                "direction": direction,
            }
        )
    return rows
