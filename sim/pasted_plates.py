"""Plate windows made by pasting made-up numbers onto bare windows of rendered sets.

A reader learns letters from many numbers seen at many sizes. A rendered twin day shows
~20 locomotives, and even at 1080p only ~30 % of their plates are large enough to read
(docs/twin.md, "Resolution"), so a rendered set holds a few hundred readable windows, most
of them the same few numbers. This writes plate windows in the set format of
docs/datasets.md by the copy-paste recipe of synthetic text data (SynthText, Gupta et al.
2016; "Cut, Paste and Learn", Dwibedi et al. 2017):

1. a bare window of a rendered set (a body side or an end face with no number: the twin's
   own liveries, halls, light, dirt and occluders) is the background;
2. a plate in one of the twin's styles (``sim.variety.draw_plate``: bordered light or dark,
   or numbers painted straight on the body) with a made-up text is warped onto it, lit
   like the surface it lands on, at a slight tilt and shear (rectification is never exact);
3. the whole window is taken down to the size that plate would have in a camera's image
   (``plate_px`` tall, letters ``plate_char_px`` wide: the labels of rendered sets), blurred,
   noised and JPEG-compressed there, and brought back up to 1 cm a pixel, which is what the
   aggregator's remap does to a real frame.

Some windows keep no plate (so the degradation is no cue that a number is present), some
plates stick out of the window, some are partly hidden behind a patch of another window;
their labels say so, as rendered sets' do. Accuracy is never measured on pasted windows:
they are for training, and a reader is judged on rendered held-out sets.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from tqdm import tqdm

from locowatch.datasets import read_image, read_labels
from sim.fleet import Colour
from sim.plates import PlateStyle, plate_texture, random_plate_text
from sim.variety import PLATE_FAMILIES, draw_plate

WINDOW = (220, 110)  # width, height: 1 cm a pixel (docs/datasets.md, plate)


@dataclass(frozen=True)
class PasteRanges:
    """What pasted windows are drawn from; recorded in the set's manifest."""

    plate_px: tuple[float, float] = (9.0, 48.0)  # the plate's height in the camera, log-uniform
    squeeze: tuple[float, float] = (0.35, 1.3)  # letter width over a square-on view's
    blur_px: tuple[float, float] = (0.2, 1.0)  # Gaussian sigma in camera pixels
    noise: tuple[float, float] = (0.0, 6.0)  # sensor noise, grey levels
    jpeg_quality: tuple[int, int] = (35, 92)
    tilt_deg: float = 3.0
    shear: float = 0.08
    bare_share: float = 0.15  # windows left without a plate
    outside_share: float = 0.08  # plates reaching out of the window
    hidden_share: float = 0.08  # plates partly behind a patch of another window


def bare_windows(folders: list[Path]) -> list[dict[str, Any]]:
    """The rows of ``folders``' plate sets with no number in the window (docs/datasets.md);
    never a row that shares its image (the image is another piece's: not known bare)."""
    return [
        row
        for folder in folders
        for row in read_labels(folder, "plate")
        if not row["text"] and not row.get("plate_box")
    ]


def write_pasted_plates(
    backgrounds: list[Path],
    out: Path,
    count: int,
    seed: int,
    style: PlateStyle = "any",
    ranges: PasteRanges = PasteRanges(),
    progress: bool = True,
) -> int:
    """Write ``count`` pasted windows to ``out`` (a plate set); returns how many."""
    bare = bare_windows(backgrounds)
    if not bare:
        raise ValueError("the background sets hold no bare plate windows (text '' and no box)")
    (out / "plate" / "images").mkdir(parents=True, exist_ok=True)
    rows = []
    for index in tqdm(range(count), desc="paste", unit="window", disable=not progress):
        rng = np.random.default_rng([seed, index])
        row, window = paste_one(bare, rng, style, ranges)
        row["image"] = f"images/pasted_{seed}_{index:06d}.png"
        cv2.imwrite(str(out / "plate" / row["image"]), window)
        rows.append(row)
    with (out / "plate" / "labels.jsonl").open("w", encoding="utf-8") as f:
        f.writelines(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
    _write_manifest(out, backgrounds, count, seed, style, ranges)
    return len(rows)


def paste_one(
    bare: list[dict[str, Any]], rng: np.random.Generator, style: PlateStyle, ranges: PasteRanges
) -> tuple[dict[str, Any], np.ndarray]:
    """One pasted window and its label."""
    source = bare[int(rng.integers(len(bare)))]
    window = _read(source["image"])
    label: dict[str, Any] = {
        key: source[key] for key in ("camera", "track", "hour", "infrared", "place", "band")
        if key in source
    }  # fmt: skip
    label["background"] = source["image"]
    label["loco"] = f"pasted-{int(rng.integers(1 << 30))}"
    plate_px = float(np.exp(rng.uniform(*np.log(ranges.plate_px))))
    squeeze = float(rng.uniform(*ranges.squeeze))
    if rng.random() < ranges.bare_share:
        scale_y = plate_px / 35.0  # a typical plate's height in the window
        window = _through_camera(window, scale_y, scale_y * squeeze, rng, ranges)
        empty = {"plate_px": 0.0, "plate_char_px": 0.0, "plate_shows": 0.0, "plate_box": None}
        return {**label, "text": "", **empty}, window
    text = random_plate_text(rng, style)
    corners, window = _paste_plate(window, text, rng, ranges)
    shows = 1.0
    if rng.random() < ranges.hidden_share:
        shows, window = _hide_part(
            window, corners, _read(bare[int(rng.integers(len(bare)))]["image"]), rng
        )
    height_window = float(np.linalg.norm(corners[3] - corners[0]))
    length_window = float(np.linalg.norm(corners[1] - corners[0]))
    scale_y = plate_px / height_window
    scale_x = scale_y * squeeze
    window = _through_camera(window, scale_y, scale_x, rng, ranges)
    box = _box(corners)
    return {
        **label,
        "text": text,
        "plate_px": round(plate_px, 2),
        "plate_char_px": round(length_window * scale_x / len(text), 2),
        "plate_shows": round(shows, 3),
        "plate_box": box,
    }, window


def _paste_plate(
    window: np.ndarray, text: str, rng: np.random.Generator, ranges: PasteRanges
) -> tuple[np.ndarray, np.ndarray]:
    """Warp a plate of a twin style onto ``window``; returns its corners (TL, TR, BR, BL)."""
    place = draw_plate(rng, PLATE_FAMILIES[0])
    width, height = place.length_m * 100, place.height_m * 100  # window pixels
    outside = rng.random() < ranges.outside_share
    margin_x, margin_y = (width / 2 + 2, height / 2 + 2) if not outside else (width / 4, height / 4)
    centre = np.array(
        [
            rng.uniform(margin_x, max(margin_x, WINDOW[0] - margin_x)),
            rng.uniform(margin_y, max(margin_y, WINDOW[1] - margin_y)),
        ]
    )
    local = _surface_colour(window, centre, width, height)
    # the light on the window: its brightest surfaces are near white when lit (a dark body
    # is dark paint, not dim light, so the plate's own colours are scaled by this alone)
    light = float(np.clip(np.percentile(window, 95) / rng.uniform(200, 250), 0.2, 1.1))
    painted = place.background is None  # numbers straight on the body: lit as it is
    background = _colour(local) if painted else place.background
    ink = _colour(np.array(place.ink) * light) if painted else place.ink
    texture = plate_texture(text, background, ink, not painted)
    if not painted:  # a plate of its own is lit like what it hangs on
        texture = np.clip(texture.astype(np.float32) * light, 0, 255).astype(np.uint8)
    angle = np.deg2rad(rng.uniform(-ranges.tilt_deg, ranges.tilt_deg))
    shear = rng.uniform(-ranges.shear, ranges.shear)
    half = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]], np.float64) * [width / 2, height / 2]
    half[:, 0] += shear * half[:, 1]
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    corners = half @ rotation.T + centre
    th, tw = texture.shape[:2]
    source = np.array([[0, 0], [tw, 0], [tw, th], [0, th]], np.float32)
    matrix = cv2.getPerspectiveTransform(source, corners.astype(np.float32))
    size = WINDOW
    warped = cv2.warpPerspective(texture, matrix, size, flags=cv2.INTER_AREA)
    mask = cv2.warpPerspective(
        np.full((th, tw), 255, np.uint8), matrix, size, flags=cv2.INTER_LINEAR
    )
    alpha = (mask.astype(np.float32) / 255)[:, :, None]
    out = window.astype(np.float32) * (1 - alpha) + warped.astype(np.float32) * alpha
    return corners, out.astype(np.uint8)


def _surface_colour(
    window: np.ndarray, centre: np.ndarray, width: float, height: float
) -> np.ndarray:
    """The median colour of the window where the plate goes (what painted numbers sit on)."""
    half = np.array([width / 2, height / 2])
    x0, y0 = np.maximum(0, (centre - half).astype(int))
    x1, y1 = (centre + half).astype(int) + 1
    patch = window[y0:y1, x0:x1].reshape(-1, 3)
    return np.median(patch if len(patch) else window.reshape(-1, 3), axis=0)


def _hide_part(
    window: np.ndarray, corners: np.ndarray, other: np.ndarray, rng: np.random.Generator
) -> tuple[float, np.ndarray]:
    """Cover a stretch of the plate with the same place of another window (a person, a
    coupled body, a hook in front); returns the share of the plate still showing."""
    x0, _, x1, _ = _box(corners)["box"]
    cut = rng.uniform(0.2, 0.7) * (x1 - x0)
    left = rng.random() < 0.5
    a, b = (x0, int(x0 + cut)) if left else (int(x1 - cut), x1)
    out = window.copy()
    out[:, max(0, a) : min(WINDOW[0], b)] = other[:, max(0, a) : min(WINDOW[0], b)]
    plate = np.zeros(window.shape[:2], np.uint8)
    cv2.fillConvexPoly(plate, np.round(corners).astype(np.int32), 1)
    covered = plate[:, max(0, a) : min(WINDOW[0], b)].sum()
    return 1.0 - float(covered) / max(1, int(plate.sum())), out


def _through_camera(
    window: np.ndarray,
    scale_y: float,
    scale_x: float,
    rng: np.random.Generator,
    ranges: PasteRanges,
) -> np.ndarray:
    """``window`` as a camera sees it at ``scale_x``, ``scale_y`` camera pixels per window
    pixel, and brought back to 1 cm a pixel (blur, noise and compression at camera size)."""
    size = (max(4, round(WINDOW[0] * scale_x)), max(4, round(WINDOW[1] * scale_y)))
    small = cv2.resize(window, size, interpolation=cv2.INTER_AREA)
    sigma = rng.uniform(*ranges.blur_px)
    small = cv2.GaussianBlur(small, (0, 0), sigma)
    noisy = small.astype(np.float32) + rng.normal(0, rng.uniform(*ranges.noise), small.shape)
    small = np.clip(noisy, 0, 255).astype(np.uint8)
    quality = int(rng.integers(ranges.jpeg_quality[0], ranges.jpeg_quality[1] + 1))
    ok, encoded = cv2.imencode(".jpg", small, [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    seen = cv2.imdecode(encoded, cv2.IMREAD_COLOR)
    assert seen is not None
    return cv2.resize(seen, WINDOW, interpolation=cv2.INTER_LINEAR)


def _colour(values: np.ndarray) -> Colour:
    b, g, r = (int(v) for v in np.clip(values, 0, 255))
    return b, g, r


def _box(corners: np.ndarray) -> dict[str, Any]:
    """The plate's box in window pixels, and whether all of it is inside (as sim.datasets)."""
    x0, y0 = np.floor(corners.min(axis=0)).astype(int)
    x1, y1 = np.ceil(corners.max(axis=0)).astype(int)
    inside = bool(x0 >= 0 and y0 >= 0 and x1 <= WINDOW[0] and y1 <= WINDOW[1])
    clip = [max(0, x0), max(0, y0), min(WINDOW[0], x1), min(WINDOW[1], y1)]
    return {"box": [int(v) for v in clip], "inside": inside}


def _read(path: str) -> np.ndarray:
    """A plate window at ``WINDOW``'s size."""
    image = read_image(path)
    if image.shape[1::-1] != WINDOW:
        image = cv2.resize(image, WINDOW)
    return image


def _write_manifest(
    out: Path,
    backgrounds: list[Path],
    count: int,
    seed: int,
    style: PlateStyle,
    ranges: PasteRanges,
) -> None:
    """The set's manifest. Its families are its backgrounds' (``training.families`` reads
    them from ``backgrounds``): pasting adds plates, not depots."""
    described = []
    for folder in backgrounds:
        path = folder / "manifest.json"
        manifest = json.loads(path.read_text()) if path.is_file() else {}
        keep = ("seed", "camera_family", "resolution", "hall", "variety", "renderer")
        described.append({"folder": str(folder), **{k: manifest[k] for k in keep if k in manifest}})
    manifest = {
        "source": "pasted",
        "seed": seed,
        "random_plates": style,
        "counts": {"plate": count},
        "backgrounds": described,
        "ranges": asdict(ranges),
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2, ensure_ascii=False))
