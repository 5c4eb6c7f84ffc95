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
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from locowatch import __version__
from locowatch.facility.config import TrackView
from locowatch.facility.geometry import CameraModel, TrackAxis
from locowatch.facility.rectify import (
    BODY_MAX_M,
    BODY_METRES_PER_PX,
    BODY_MIN_M,
    PLATE_FACE,
    PLATE_FACE_BANDS,
    PLATE_METRES_PER_PX,
    PLATE_SIDE,
    STRIP_HEIGHT,
    STRIP_METRES_PER_PX,
    Curtain,
    EndFace,
    Maps,
    body_span,
    body_window,
    remap,
    strip_window,
)
from locowatch.facility.visibility import Span, subtract_spans
from sim.render import Lighting
from sim.scene import Face, PlatePlacement, Solid, locomotive_solids, plate_decals, plates_of
from sim.twin import Twin, TwinSpec
from sim.variety import series_pool
from sim.workers import per_camera

KINDS = ("position", "model", "plate")
END_MARGIN_M = 0.3  # an end this close to the edge of the covered span counts as cut


@dataclass(frozen=True)
class Body:
    """A locomotive's visible part in one strip, as the position estimator should report it."""

    loco: str
    series: str
    tail_m: float
    head_m: float
    tail: str  # "real" or "cut"
    head: str


def bodies_in_view(
    twin: Twin,
    track: str,
    covered: tuple[float, float],
    t: float,
    hidden: Sequence[Span] = (),
) -> list[Body]:
    """Ground truth clipped to the covered span, less the ``hidden`` stretches (behind
    bodies on nearer tracks), each end marked real or cut: a body is cut where a hidden
    stretch begins, as the estimator must report it."""
    bodies = []
    for lo, hi in subtract_spans([covered], list(hidden)):
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


def hidden_in_view(
    twin: Twin, camera_id: str, view: TrackView, covered: tuple[float, float], t: float
) -> list[Span]:
    """The stretches of ``covered`` that bodies on nearer tracks hide from the camera."""
    _, blind = twin.seen(camera_id, view, twin.scenario.at(t))
    lo, hi = covered
    return [(max(a, lo), min(b, hi)) for a, b, hidden in blind if hidden and b > lo and a < hi]


def occluders_in_view(
    twin: Twin, camera_id: str, track: str, covered: tuple[float, float], t: float
) -> int:
    """People, equipment and the crane hook between the camera and the covered span."""
    renderer = twin.renderer(camera_id)
    axis = twin.layout.axis(track)
    _, camera_side = axis.to_track(renderer.camera.position.reshape(1, 3))
    side = float(np.sign(camera_side[0]))
    props = twin.props
    tags = set()
    for solid in props.static_solids(renderer.axes) + props.solids(twin.facility, renderer.axes, t):
        corners = solid.corners.reshape(-1, 3)
        s, lateral = axis.to_track(corners)
        between = (lateral * side).min() < abs(float(camera_side[0]))
        if s.max() > covered[0] and s.min() < covered[1] and between and renderer.sees(corners):
            tags.add(solid.tag)
    return len(tags)


@dataclass(frozen=True)
class SidePlate:
    """A plate on a body side facing the camera, and where the camera sees it on the curtain."""

    plate: PlatePlacement
    loco: str
    start_m: float
    end_m: float
    bottom_m: float
    top_m: float

    @property
    def centre(self) -> tuple[float, float]:
        return (self.start_m + self.end_m) / 2, (self.bottom_m + self.top_m) / 2


def side_plates_in_view(
    twin: Twin, curtain: Curtain, covered: tuple[float, float], t: float, hidden: Sequence[Span]
) -> list[SidePlate]:
    """Plates on the body sides that face the camera, wholly inside what it sees of the
    track, where the strip shows them (on the curtain: a side nearer the track than the
    curtain shows shifted along it)."""
    seen = subtract_spans([covered], list(hidden))
    found = []
    for loco, plate in _facing_side_plates(twin, curtain, t):
        metres, heights = curtain.seen_at(plate.corners)
        start, end = float(metres.min()), float(metres.max())
        if any(lo <= start and end <= hi for lo, hi in seen):
            bottom, top = float(heights.min()), float(heights.max())
            found.append(SidePlate(plate, loco, start, end, bottom, top))
    return sorted(found, key=lambda side: side.start_m)


def side_plate_label(curtain: Curtain, side: SidePlate) -> dict[str, Any]:
    """A strip label's entry for a side plate (docs/datasets.md)."""
    return {
        "text": side.plate.text,
        "start_m": round(side.start_m, 3),
        "end_m": round(side.end_m, 3),
        "bottom_m": round(side.bottom_m, 3),
        "top_m": round(side.top_m, 3),
        **_plate_size(curtain, side.plate),
    }


def end_plate(
    twin: Twin, axis: TrackAxis, loco: str, t: float, end_m: float, band: str = "high"
) -> PlatePlacement | None:
    """The number plate painted on the end face of ``loco`` at ``end_m`` whose middle is in
    the window ``band`` (PLATE_FACE_BANDS), if any."""
    state = next(s for s in twin.scenario.at(t) if s.loco.loco_id == loco)
    solids = locomotive_solids(state.loco, axis, state.tail_m)
    bottom, top = PLATE_FACE_BANDS[band]
    plates = [
        p
        for p in plates_of(solids, axis)
        if not p.on_side and bottom <= (p.bottom_m + p.top_m) / 2 - axis.rail_z <= top
    ]
    return next((p for p in plates if abs(p.start_m - end_m) < 0.6), None)


KEYS = ((255, 0, 255), (0, 255, 0))  # two flat colours the plate is painted in, in turn


def plate_shows(twin: Twin, camera_id: str, t: float, plate: PlatePlacement) -> float:
    """The share of the plate's pixels that show in the camera's image at ``t``.

    Rendered twice with the plate a flat colour, a different one each time: the pixels
    that change are the plate's own, wherever nothing stands in front of it (a coupled
    body, a person, the crane hook). A plate label without this is a guess at readability.
    """
    renderer = twin.renderer(camera_id)
    light = Lighting.at_hour(12.0)
    solids = twin.solids(renderer, t)  # fresh copies: their decals are safe to paint
    decal = next(
        d
        for d in plate_decals(solids)
        if d.text == plate.text and np.allclose(d.corners, plate.corners)
    )
    frames = []
    for key in KEYS:
        decal.texture, decal.colour = None, key
        frames.append(twin.draw(camera_id, solids, light, finish=False).astype(np.int16))
    changed = np.abs(frames[0] - frames[1]).max(axis=2) > 60
    return round(shown_share(changed, renderer.silhouette([_flat(plate)]) > 127), 3)


def shown_share(changed: np.ndarray, area: np.ndarray) -> float:
    """The share of a plate's inner pixels that changed with its colour. Its rim pixels
    are left out: a rasterizer blends them with what is around (OpenGL filters a plate
    showing whole to about 0.9 of its pixels), and a plate is read from its inside."""
    inner = cv2.erode(area.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
    inner = inner if inner.any() else area  # a plate a pixel or two tall: all of it
    return float((changed & inner).sum() / max(int(inner.sum()), 1))


def _plate_size(curtain: Curtain, plate: PlatePlacement | None) -> dict[str, float]:
    """A label's ``plate_px`` and ``plate_char_px`` (PlatePlacement.size_px; none: 0)."""
    height, letter = plate.size_px(curtain.camera) if plate else (0.0, 0.0)
    return {"plate_px": height, "plate_char_px": letter}


def _flat(plate: PlatePlacement) -> Solid:
    return Solid([Face(plate.corners, (0, 0, 0))], "plate")


def plate_box(maps: Maps, camera: CameraModel, plate: PlatePlacement) -> dict[str, Any]:
    """Where the plate lies in a window (remap ``maps`` of an end face or a side): its box in
    window pixels, and whether all of it is inside (an end window's plane is a guess at the
    face: hood ends stand back)."""
    map_x, map_y = maps
    grid = np.stack([map_x.ravel(), map_y.ravel()], axis=1)
    corners = camera.project(plate.corners)
    distance = ((grid[None] - corners[:, None]) ** 2).sum(axis=2)
    nearest = distance.argmin(axis=1)
    rows, cols = np.divmod(nearest, map_x.shape[1])
    inside = bool((distance.min(axis=1) < 4.0).all())  # every corner within 2 image pixels
    box = [int(cols.min()), int(rows.min()), int(cols.max()) + 1, int(rows.max()) + 1]
    return {"box": box, "inside": inside}


def write_dataset(
    spec: TwinSpec,
    out: Path,
    every_s: float,
    camera_ids: list[str] | None = None,
    jobs: int = 2,
    progress: bool = True,
    kinds: tuple[str, ...] = KINDS,
) -> dict[str, int]:
    """Render samples every ``every_s`` seconds for each camera; returns counts per kind.

    With fewer ``kinds`` only frames that yield one of them are rendered (plates alone
    need about a fifth of the frames)."""
    twin = Twin(spec)
    cameras = camera_ids or twin.camera_ids
    for kind in kinds:
        (out / kind / "images").mkdir(parents=True, exist_ok=True)
    times = np.arange(0.0, spec.scenario.duration_s, every_s)
    labels = per_camera(
        _camera_samples, cameras, (spec, times, out, kinds), len(times), jobs, "samples", progress
    )
    counts = {}
    for kind in kinds:
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
        "random_plates": spec.scenario.random_plates,
        "renderer": spec.renderer,
        "camera_family": spec.layout.family,
        "resolution": list(spec.layout.resolutions),
        "variety": spec.variety.describe(),
        "hall": twin.hall.family,
        "series": sorted({loco.series.name for loco in twin.scenario.fleet}),
        "cameras": cameras,
        "counts": counts,
        "windows": {
            "position": {"metres_per_px": STRIP_METRES_PER_PX, "heights_m": list(STRIP_HEIGHT)},
            "model": {"metres_per_px": BODY_METRES_PER_PX, "max_length_m": BODY_MAX_M},
            "plate": {
                "metres_per_px": PLATE_METRES_PER_PX,
                "half_width_bottom_top_m": list(PLATE_FACE),
                "end_bands_m": {band: list(z) for band, z in PLATE_FACE_BANDS.items()},
                "side_half_width_height_m": list(PLATE_SIDE),
            },
        },
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")
    return counts


def _camera_samples(
    camera_id: str,
    spec: TwinSpec,
    times: np.ndarray,
    out: Path,
    kinds: tuple[str, ...],
    ticks: Any,
) -> dict[str, list[dict[str, Any]]]:
    twin = Twin(spec)
    camera = twin.facility.camera_by_id[camera_id]
    views = [_ViewWindows(twin, camera_id, index, view) for index, view in enumerate(camera.views)]
    rows: dict[str, list[dict[str, Any]]] = {"position": [], "model": [], "plate": []}
    for t in times:
        ticks.put(1)
        sights = [(v, v.sight(float(t))) for v in views if v.covered is not None]
        wanted = [(v, sight) for v, sight in sights if _wanted(kinds, sight[1], v.faces)]
        if not wanted:
            continue
        frame = twin.frame(camera_id, float(t))
        if frame is None:
            continue
        light = Lighting.at_hour(twin.scenario.hour_of_day(float(t)))
        for view, (hidden, bodies) in wanted:
            assert view.covered is not None
            stem = f"{camera_id}_{t:08.2f}" + (f"_v{view.index}" if view.index else "")
            common = {
                "camera": camera_id,
                "track": view.view.track,
                "view": view.index,
                "t": round(float(t), 2),
                "hour": round(twin.scenario.hour_of_day(float(t)), 2),
                "infrared": light.infrared,
                "occluders": occluders_in_view(
                    twin, camera_id, view.view.track, view.covered, float(t)
                ),
            }
            sides = (
                side_plates_in_view(twin, view.curtain, view.covered, float(t), hidden)
                if "position" in kinds or "plate" in kinds
                else []
            )
            image = f"images/{stem}.png"
            if "position" in kinds:
                cv2.imwrite(str(out / "position" / image), view.curtain.rectify(frame, view.strip))
            rows["position"].append(
                {
                    "image": image,
                    **common,
                    "start_m": view.strip.start_m,
                    "end_m": view.strip.end_m,
                    "metres_per_px": view.strip.metres_per_px,
                    "covered": list(view.covered),
                    "hidden": [[round(a, 3), round(b, 3)] for a, b in hidden],
                    "bodies": [asdict(b) for b in bodies],
                    "plates": [side_plate_label(view.curtain, side) for side in sides],
                }
            )
            for body, name in zip(bodies, piece_names(bodies), strict=True):
                body_stem = f"{stem}_{name}"
                if "model" in kinds:
                    rows["model"] += _body_sample(out, view.curtain, frame, body, body_stem, common)
                if "plate" in kinds:
                    rows["plate"] += _plate_samples(
                        out, twin, view.curtain, frame, body, float(t), body_stem, common
                    )
                    own = [side for side in sides if on_piece(side, body)]
                    rows["plate"] += _side_samples(
                        out, twin, view.curtain, frame, body, own, float(t), body_stem, common
                    )
    return rows


def piece_names(bodies: list[Body]) -> list[str]:
    """A file name per body: its locomotive, and ``-2``, ``-3``.. for the further pieces of
    one that something nearer cuts into several (each piece has its own windows)."""
    seen: dict[str, int] = {}
    names = []
    for body in bodies:
        seen[body.loco] = seen.get(body.loco, 0) + 1
        names.append(body.loco + (f"-{seen[body.loco]}" if seen[body.loco] > 1 else ""))
    return names


def on_piece(side: SidePlate, body: Body) -> bool:
    """Whether a side plate belongs to this piece of its locomotive: its middle is on it."""
    return side.loco == body.loco and body.tail_m <= side.centre[0] <= body.head_m


class _ViewWindows:
    """One view of a camera: its curtain, strip and covered span, and what it sees."""

    def __init__(self, twin: Twin, camera_id: str, index: int, view: TrackView) -> None:
        self.twin, self.camera_id, self.index, self.view = twin, camera_id, index, view
        axis = twin.layout.axis(view.track)
        self.curtain = Curtain(twin.geometry.cameras[camera_id], axis)
        self.strip = strip_window(view.start_m, view.end_m)
        self.covered = self.curtain.covered_span(self.strip)
        self.faces = EndFace(self.curtain.camera, axis)

    def sight(self, t: float) -> tuple[list[Span], list[Body]]:
        """The hidden stretches of the covered span at ``t``, and the bodies seen."""
        assert self.covered is not None
        hidden = hidden_in_view(self.twin, self.camera_id, self.view, self.covered, t)
        return hidden, bodies_in_view(self.twin, self.view.track, self.covered, t, hidden)


def _wanted(kinds: tuple[str, ...], bodies: list[Body], faces: EndFace) -> bool:
    """Whether a frame with these bodies in view yields a sample of one of ``kinds``."""
    if "position" in kinds:
        return True
    if "model" in kinds and any(b.head_m - b.tail_m >= BODY_MIN_M for b in bodies):
        return True
    return "plate" in kinds and bool(bodies)  # end faces, side plates or a bare side


def _body_sample(
    out: Path, curtain: Curtain, frame: np.ndarray, body: Body, stem: str, common: dict[str, Any]
) -> list[dict[str, Any]]:
    span = body_span(body.tail_m, body.head_m, body.tail == "real", body.head == "real")
    if span is None:
        return []
    start, end = span
    window = body_window(start, end)
    image = f"images/{stem}.png"
    cv2.imwrite(str(out / "model" / image), curtain.rectify(frame, window))
    return [
        {
            "image": image,
            **common,
            "loco": body.loco,
            "series": body.series,
            "series_pool": series_pool(body.series),
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
    t: float,
    stem: str,
    common: dict[str, Any],
) -> list[dict[str, Any]]:
    """End faces of the body that face the camera, labelled with the number painted there."""
    faces = EndFace(curtain.camera, curtain.axis)
    rows = []
    for end, kind, direction in ((body.tail_m, body.tail, -1), (body.head_m, body.head, 1)):
        if kind != "real" or not faces.faces_camera(end, direction):
            continue
        for band in PLATE_FACE_BANDS:
            plate = end_plate(twin, curtain.axis, body.loco, t, end, band)
            image = f"images/{stem}_{'head' if direction > 0 else 'tail'}"
            image += ".png" if band == "high" else f"_{band}.png"
            maps = faces.maps(end, direction, band)[:2]
            where = {"place": "end", "band": band, "end_m": round(end, 3), "direction": direction}
            rows.append(
                _plate_row(out, twin, curtain, frame, maps, image, plate, t, common, body, where)
            )
    return rows


def _facing_side_plates(
    twin: Twin, curtain: Curtain, t: float, loco: str | None = None
) -> Iterator[tuple[str, PlatePlacement]]:
    """(locomotive, plate) of the plates at ``t`` on the body sides facing the camera."""
    for state in twin.scenario.at(t):
        if state.track != curtain.axis.track_id or loco not in (None, state.loco.loco_id):
            continue
        solids = locomotive_solids(state.loco, curtain.axis, state.tail_m)
        for plate in plates_of(solids, curtain.axis):
            if plate.on_side and np.sign(plate.lateral_m) == np.sign(curtain.lateral_m):
                yield state.loco.loco_id, plate


def _side_plate_centres(
    twin: Twin, curtain: Curtain, loco: str, t: float
) -> list[tuple[float, float]]:
    """Where the camera sees the centres of every plate on the side of ``loco`` facing it."""
    centres = []
    for _, plate in _facing_side_plates(twin, curtain, t, loco):
        metres, heights = curtain.seen_at(plate.corners)
        centres.append((float(metres.mean()), float(heights.mean())))
    return centres


SIDE_JITTER_M = (0.6, 0.25)  # along, up: a finder points near a plate, the reader finds it


def _side_samples(
    out: Path,
    twin: Twin,
    curtain: Curtain,
    frame: np.ndarray,
    body: Body,
    sides: list[SidePlate],
    t: float,
    stem: str,
    common: dict[str, Any],
) -> list[dict[str, Any]]:
    """Windows on the body side: one near each of its plates (off centre, as a finder on
    the strip would point), and one on a bare stretch, labelled with no text."""
    rng = np.random.default_rng(zlib.crc32(stem.encode()))  # stem: camera, time, piece
    centres: list[tuple[float, float, SidePlate | None]] = []
    for side in sides:
        (metre, height), (along, up) = side.centre, SIDE_JITTER_M
        centres.append((metre + rng.uniform(-along, along), height + rng.uniform(-up, up), side))
    half, half_height = PLATE_SIDE
    if body.head_m - body.tail_m > 2 * half:
        metre, height = rng.uniform(body.tail_m + half, body.head_m - half), rng.uniform(1.0, 3.6)
        if not any(  # bare: away from every plate on this side, seen whole or not
            abs(a - metre) < half + 0.8 and abs(b - height) < half_height + 0.3
            for a, b in _side_plate_centres(twin, curtain, body.loco, t)
        ):
            centres.append((metre, height, None))
    rows = []
    for index, (metre, height, near) in enumerate(centres):
        maps = curtain.side_maps(metre, height)
        image = f"images/{stem}_side{index}.png"
        plate = near.plate if near else None
        where = {
            "place": "side",
            "centre_m": round(float(metre), 3),
            "height_m": round(float(height), 3),
        }
        rows.append(
            _plate_row(out, twin, curtain, frame, maps, image, plate, t, common, body, where)
        )
    return rows


def _plate_row(
    out: Path,
    twin: Twin,
    curtain: Curtain,
    frame: np.ndarray,
    maps: Maps,
    image: str,
    plate: PlatePlacement | None,
    t: float,
    common: dict[str, Any],
    body: Body,
    where: dict[str, Any],
) -> dict[str, Any]:
    """Write one plate window and its label: the number in it (none: empty text)."""
    cv2.imwrite(str(out / "plate" / image), remap(frame, maps))
    return {
        "image": image,
        **common,
        "loco": body.loco,
        "text": plate.text if plate else "",
        **_plate_size(curtain, plate),
        "plate_shows": plate_shows(twin, common["camera"], t, plate) if plate else 0.0,
        "plate_box": plate_box(maps, curtain.camera, plate) if plate else None,
        **where,
    }
