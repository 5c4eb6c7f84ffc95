"""Attribute networks' contract: a window in, a value with confidence and alternatives out.

Two kinds cover the attributes of a locomotive: a *classifier* (the series from a body
window of the curtain) and a *sequence* reader (the number from an end-face window, read
left to right with CTC). Which one an artefact is, and its classes or alphabet, is in its
``meta.json``; nothing here knows about series or plates as such.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from locowatch.facility.rectify import BODY_METRES_PER_PX

BODY_HEIGHT_PX = 92  # body_window: 0.6..5.2 m at 0.05 m a pixel
BODY_WIDTH_PX = round(12.0 / BODY_METRES_PER_PX)  # windows of at most 12 m, padded to this
PLATE_SIZE = (220, 110)  # (width, height) of an end-face window, 1 cm a pixel
PLATE_ALPHABET = "-0123456789АБВГДЕЖЗИЙКЛМНОПРСТУФХЦЧШЩЪЫЬЭЮЯ"  # CTC blank is class 0
UNKNOWN_SERIES = "unknown"  # a series classifier's class for every series it was not taught
# Plate windows the aggregator cuts (Packet.window): an end face under the cab windows, the
# buffer beam, and a body side where the position network marked a plate. A reader reads
# those its artefact lists (meta.json extra.reads; Artefact.reads).
PLATE_WINDOWS = ("end-high", "end-low", "side")
# How large a plate must look in the camera's own image to be read: this tall, with letters
# a quarter of that wide (a plate seen square-on 16 px tall has ~4 px a letter; a cab side
# seen along the track can be 40 px tall and 1-2 px a letter). The twin's truth, training
# sets and model cards judge "a plate one can read" by it (docs/datasets.md).
READABLE_PLATE_PX = 16.0
LETTER_PER_HEIGHT = 0.25


def large_enough_to_read(
    height_px: float, letter_px: float | None, height_bar: float = READABLE_PLATE_PX
) -> bool:
    """Whether a plate ``height_px`` tall with letters ``letter_px`` wide (None: not
    measured, judged by height alone) in the camera's image clears ``height_bar``."""
    if height_px < height_bar:
        return False
    return letter_px is None or letter_px >= height_bar * LETTER_PER_HEIGHT


@dataclass(frozen=True)
class Reading:
    value: str
    confidence: float
    alternatives: tuple[tuple[str, float], ...] = ()


def body_input(window_bgr: np.ndarray) -> np.ndarray:
    """A body window (92, <=240, 3) -> (3, 92, 240) float32, padded on the right with zeros."""
    window = window_bgr[:, :BODY_WIDTH_PX]
    if window.shape[0] != BODY_HEIGHT_PX:
        window = cv2.resize(window, (window.shape[1], BODY_HEIGHT_PX))
    out = np.zeros((3, BODY_HEIGHT_PX, BODY_WIDTH_PX), np.float32)
    out[:, :, : window.shape[1]] = window.transpose(2, 0, 1)
    return out


def plate_input(window_bgr: np.ndarray) -> np.ndarray:
    """An end-face window (110, 220, 3) -> (1, 110, 220) float32 grey."""
    grey = cv2.cvtColor(window_bgr, cv2.COLOR_BGR2GRAY)
    if grey.shape[::-1] != PLATE_SIZE:
        grey = cv2.resize(grey, PLATE_SIZE)
    return grey[None].astype(np.float32)


def softmax(logits: np.ndarray, axis: int = -1) -> np.ndarray:
    shifted = logits - logits.max(axis=axis, keepdims=True)
    e = np.exp(shifted)
    return np.asarray(e / e.sum(axis=axis, keepdims=True))


def decode_class(logits: np.ndarray, classes: tuple[str, ...], top: int = 3) -> Reading:
    """Best class of one (C,) logit vector, with the next best as alternatives."""
    p = softmax(logits.astype(np.float32))
    order = np.argsort(-p)[:top]
    best = int(order[0])
    return Reading(
        classes[best],
        float(p[best]),
        tuple((classes[int(i)], float(p[int(i)])) for i in order[1:]),
    )


def decode_ctc(logits: np.ndarray, alphabet: str | tuple[str, ...]) -> Reading:
    """Greedy CTC decoding of one (T, C) sequence; confidence is the path's probability."""
    p = softmax(logits.astype(np.float32))
    best = p.argmax(axis=1)
    chars, previous = [], 0
    for index in best.tolist():
        if index not in (previous, 0):
            chars.append(alphabet[index - 1])
        previous = index
    confidence = float(np.exp(np.log(p.max(axis=1) + 1e-9).sum()))
    return Reading("".join(chars), confidence)
