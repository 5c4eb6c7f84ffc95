"""Datasets of docs/datasets.md as arrays, with the targets each network learns."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from tqdm import tqdm

from locowatch.datasets import read_image, read_labels
from locowatch.models import position as pos
from locowatch.models.attributes import (
    PLATE_ALPHABET,
    PLATE_WINDOWS,
    UNKNOWN_SERIES,
    body_input,
    large_enough_to_read,
    plate_input,
)

log = logging.getLogger(__name__)

# Strips are padded to one width for batching: 51.2 m, the widest view the TensorRT
# profile takes (wall and roof cameras' views reach ~45 m, along cameras' ~25 m). Training
# crops windows of TRAIN_COLUMNS from the longer ones (training.recipes); measuring reads
# them whole.
STRIP_PAD = 512
TRAIN_COLUMNS = 192  # 19.2 m: every column still sees +-6 m; a third cheaper on a CPU


@dataclass
class Samples:
    """Inputs (N, ...) uint8-valued float arrays or uint8, labels as written, per-sample tags."""

    inputs: np.ndarray
    labels: list[dict[str, Any]]

    def __len__(self) -> int:
        return len(self.labels)


def load(folders: list[Path], kind: str, progress: bool = True) -> Samples:
    """Read every image of ``kind`` from the folders into one uint8 array."""
    labels = [row for folder in folders for row in read_labels(folder, kind)]
    convert = {"position": _strip, "model": body_input, "plate": plate_input}[kind]
    first = convert(read_image(labels[0]["image"])) if labels else np.zeros((0,), np.uint8)
    inputs = np.zeros((len(labels), *first.shape), np.uint8)
    for i, row in enumerate(tqdm(labels, desc=f"read {kind}", unit="img", disable=not progress)):
        inputs[i] = convert(read_image(row["image"]))
    return Samples(inputs, labels)


def strip_columns(row: dict[str, Any]) -> int:
    """How many columns of a padded strip are the strip's own."""
    return min(STRIP_PAD, round((row["end_m"] - row["start_m"]) / pos.STRIP_METRES_PER_PX))


def _strip(image: np.ndarray) -> np.ndarray:
    out = np.zeros((3, image.shape[0], STRIP_PAD), np.float32)
    chw = pos.strip_input(image)[:, :, :STRIP_PAD]
    out[:, :, : chw.shape[2]] = chw
    return out


def position_targets(row: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """(6, STRIP_PAD) targets (occupied, tail, head, hidden, plate, plate height) and
    (3, STRIP_PAD) masks of the columns that count: for the first four scores, for the
    plate score, and for the plate height.

    A label without ``hidden`` (a set written before it, or a camera that sees only its own
    track) has nothing hidden. A label without ``plates`` (a set written before it) says
    nothing about plates: the plate score does not learn from it."""
    start = row["start_m"]
    columns = np.arange(STRIP_PAD)
    centres = start + (columns + 0.5) * pos.STRIP_METRES_PER_PX
    target = np.zeros((6, STRIP_PAD), np.float32)
    for a, b in row.get("hidden", []):
        target[pos.HIDDEN] += (centres >= a) & (centres <= b)
    target[pos.HIDDEN] = np.minimum(target[pos.HIDDEN], 1)
    lo, hi = row["covered"]
    mask = np.zeros((3, STRIP_PAD), np.float32)
    mask[0] = (centres > lo) & (centres < hi)
    for body in row["bodies"]:
        target[pos.OCCUPIED] += (centres >= body["tail_m"]) & (centres <= body["head_m"])
        for channel, metre, kind in (
            (pos.TAIL, body["tail_m"], body["tail"]),
            (pos.HEAD, body["head_m"], body["head"]),
        ):
            if kind == "real":
                c = pos.end_column(metre, start)
                bump = np.exp(-0.5 * ((columns - c) / pos.END_SIGMA_COLUMNS) ** 2)
                target[channel] = np.maximum(target[channel], bump)
    target[pos.OCCUPIED] = np.minimum(target[pos.OCCUPIED], 1)
    if "plates" in row:
        mask[1] = mask[0]
        for plate in row["plates"]:
            c = pos.end_column((plate["start_m"] + plate["end_m"]) / 2, start)
            bump = np.exp(-0.5 * ((columns - c) / pos.PLATE_SIGMA_COLUMNS) ** 2)
            target[pos.PLATE] = np.maximum(target[pos.PLATE], bump)
            near = np.abs(columns - c) <= 3  # where a mark may fall, the height is taught
            height = (plate["bottom_m"] + plate["top_m"]) / 2 / pos.STRIP_HEIGHT[1]
            target[pos.PLATE_HEIGHT, near] = height
            mask[2, near] = mask[0, near]
    return target, mask


def series_target(row: dict[str, Any]) -> str:
    """What a series classifier should answer for a body window: its series, or "unknown"
    for a series outside the known ones (the twin's ``other`` and ``unknown`` pools; a
    facility labels a series it does not train on as ``unknown`` too)."""
    known = row.get("series_pool", "known") == "known" and row["series"] != UNKNOWN_SERIES
    return str(row["series"]) if known else UNKNOWN_SERIES


def series_classes(labels: list[dict[str, Any]]) -> tuple[str, ...]:
    return tuple(sorted({series_target(row) for row in labels}))


PLATE_TEXTURE_MIN = 3.0  # grey levels: the text's strokes score 6..30, a bare surface 0..2
PLATE_SHOWS_MIN = 0.95  # share of the plate showing: one hidden character makes it unreadable


def plate_texture(window: np.ndarray, box: list[int] | tuple[int, ...]) -> float:
    """How much stroke detail a plate box holds: the weakest quarter of its width.

    The labels place the plate where it would be, not where it shows: a coupled body or a
    person in front can hide it wholly or in part (about a tenth of held-out plates at least
    16 px high, a fifth of some training seeds). Text covers ~90 % of a plate's width, so
    each quarter of a visible plate holds strokes; the high-pass mean of the weakest
    quarter is near 0 where any part is hidden. ``window`` is (1, H, W) or (H, W) grey.
    """
    grey = np.asarray(window, np.float32).reshape(window.shape[-2:])
    detail = np.abs(grey - cv2.GaussianBlur(grey, (0, 0), 2.0))
    x0, y0, x1, y1 = (max(int(v), 0) for v in box)
    patch = detail[y0:y1, x0:x1]
    if patch.shape[0] == 0 or patch.shape[1] < 4:
        return 0.0
    return float(min(part.mean() for part in np.array_split(patch, 4, axis=1)))


def plate_large_enough(row: dict[str, Any], height_px: float) -> bool:
    """Whether a labelled plate is large enough in the camera's own image to be read
    (``locowatch.models.attributes.large_enough_to_read``): labels without the letter
    width (older sets) are judged by height alone."""
    return large_enough_to_read(row.get("plate_px", 0.0), row.get("plate_char_px"), height_px)


def plate_visible(window: np.ndarray, row: dict[str, Any]) -> bool:
    """Whether the labelled plate shows in the window: inside it and not hidden.

    The twin labels how much of each plate shows in the camera's image (``plate_shows``,
    from its own renderer); labels without it (older sets, a facility's own footage) fall
    back on the plate's texture, which misses plates hidden in part."""
    box = row.get("plate_box")
    if not box or not box["inside"]:
        return False
    if "plate_shows" in row:
        return bool(row["plate_shows"] >= PLATE_SHOWS_MIN)
    return plate_texture(window, box["box"]) >= PLATE_TEXTURE_MIN


def encode_text(text: str) -> list[int]:
    """CTC target: alphabet index + 1 (0 is the blank)."""
    unknown = set(text) - set(PLATE_ALPHABET)
    if unknown:
        raise ValueError(f"plate text {text!r} has letters outside the alphabet: {unknown}")
    return [PLATE_ALPHABET.index(c) + 1 for c in text]


def plate_window(row: dict[str, Any]) -> str:
    """Which plate window a label is of (sets before side windows hold end-high ones)."""
    if row.get("place") == "side":
        return "side"
    return f"end-{row.get('band', 'high')}"


def plate_windows(labels: list[dict[str, Any]]) -> tuple[str, ...]:
    """The windows a reader trained on ``labels`` has seen, in PLATE_WINDOWS order."""
    seen = {plate_window(row) for row in labels}
    return tuple(w for w in PLATE_WINDOWS if w in seen)
