"""What each network learns from, how its batches and losses are made, and its settings."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional

from locowatch.models import position as pos
from locowatch.models.attributes import PLATE_ALPHABET
from training.data import (
    TRAIN_COLUMNS,
    Samples,
    encode_text,
    plate_large_enough,
    plate_visible,
    plate_windows,
    position_targets,
    series_classes,
    series_target,
    strip_columns,
)
from training.fit import Batch, Loss, MakeBatch, Schedule, jitter
from training.nets import PlateNet, PositionNet, SeriesNet


@dataclass
class Recipe:
    net: nn.Module
    make_batch: MakeBatch
    loss: Loss
    schedule: Schedule
    task: str  # position | classifier | sequence
    labels: tuple[str, ...]
    input_shape: tuple[int | None, ...]
    inputs_to_loss: bool = False  # the loss runs the net itself (more than one output)
    architecture: dict[str, Any] | None = None  # the net's settings, kept in meta.json
    reads: tuple[str, ...] = ()  # a plate reader's windows (meta.json extra.reads)


# position@2 on: wider than position@1 (width 40, channels 12, 16, 24, three scores): the
# varied twin's strips (other tracks, halls, liveries) underfit that one (docs/models.md);
# position@3 on: six scores, the plate and its height added (locowatch.models.position)
POSITION_ARCHITECTURE: dict[str, Any] = {"width": 64, "outputs": 6, "channels": (16, 24, 32)}
POSITION_LOSS_WEIGHTS = (1.0, 4.0, 4.0, 1.0, 4.0, 1.0)  # ends and plate centres are rare
FLIPPED = [pos.OCCUPIED, pos.HEAD, pos.TAIL, pos.HIDDEN, pos.PLATE, pos.PLATE_HEIGHT]


def position_recipe(train: Samples, epochs: int, seed: int, device: str) -> Recipe:
    pairs = [position_targets(row) for row in train.labels]
    targets = np.stack([target for target, _ in pairs])
    masks = np.stack([mask for _, mask in pairs])
    widths = np.array([strip_columns(row) for row in train.labels])

    def make_batch(indices: np.ndarray, rng: np.random.Generator) -> Batch:
        # a window of TRAIN_COLUMNS from each strip, anywhere along the longer ones
        starts = [int(rng.integers(0, max(1, widths[i] - TRAIN_COLUMNS + 1))) for i in indices]
        window = [slice(a, a + TRAIN_COLUMNS) for a in starts]
        x = np.stack([train.inputs[i][..., w] for i, w in zip(indices, window, strict=True)])
        x = jitter(x.astype(np.float32), rng)
        y = np.stack([targets[i][:, w] for i, w in zip(indices, window, strict=True)])
        m = np.stack([masks[i][:, w] for i, w in zip(indices, window, strict=True)])
        flip = rng.random(len(indices)) < 0.5  # the track seen the other way round
        x[flip] = x[flip][..., ::-1]
        y[flip] = y[flip][:, FLIPPED, ::-1]  # a tail seen the other way round is a head
        m[flip] = m[flip][..., ::-1]
        return torch.from_numpy(x.copy()), (torch.from_numpy(y.copy()), torch.from_numpy(m.copy()))

    weights = torch.tensor(POSITION_LOSS_WEIGHTS).view(1, -1, 1)

    def loss(out: torch.Tensor, target: Any) -> torch.Tensor:
        y, m = target
        per = functional.binary_cross_entropy_with_logits(out, y, reduction="none")
        per = per * weights.to(out.device)
        # scores 0-3 count inside the covered span, the plate score where plates were
        # labelled, the plate height next to each plate
        counted = (per[:, :4] * m[:, :1]).sum() + (per[:, 4] * m[:, 1]).sum()
        counted = counted + (per[:, 5] * m[:, 2]).sum()
        return counted / m[:, 0].sum().clamp(min=1)

    return Recipe(
        PositionNet(**POSITION_ARCHITECTURE),
        make_batch,
        loss,
        Schedule(epochs=epochs, batch_size=32, learning_rate=3e-3, seed=seed, device=device),
        "position",
        (),
        (None, 3, 56, None),
        architecture=POSITION_ARCHITECTURE,
    )


def series_recipe(
    train: Samples, epochs: int, seed: int, device: str, keep: tuple[str, ...] = ()
) -> Recipe:
    """``keep``: classes to keep, in their order (those of the artefact a fine-tune starts
    from: a depot's own labels may hold only some of its series); the set's others follow."""
    held_back = {row["series"] for row in train.labels if row.get("series_pool") == "unknown"}
    if held_back:  # the open-set test's series: measuring "unknown" on them needs them unseen
        names = ", ".join(sorted(held_back))
        raise ValueError(f"the training set holds series kept for the open-set test: {names}")
    own = series_classes(train.labels)
    classes = (*keep, *(c for c in own if c not in keep))
    y_all = np.array([classes.index(series_target(row)) for row in train.labels])
    widths = _filled_widths(train.inputs)

    def make_batch(indices: np.ndarray, rng: np.random.Generator) -> Batch:
        x = shape_views(train.inputs[indices].astype(np.float32), widths[indices], rng)
        return torch.from_numpy(jitter(x, rng)), torch.from_numpy(y_all[indices])

    def loss(out: torch.Tensor, target: Any) -> torch.Tensor:
        return functional.cross_entropy(out, target, label_smoothing=0.05)

    return Recipe(
        SeriesNet(len(classes)),
        make_batch,
        loss,
        Schedule(epochs=epochs, batch_size=32, learning_rate=3e-3, seed=seed, device=device),
        "classifier",
        classes,
        (None, 3, 92, 240),
    )


SHUFFLED_COLOURS = 0.8  # share of windows whose colour channels are shuffled
GREY = 0.25  # share of those then made grey
MIRRORED = 0.5
ERASED = 0.3  # share with a block covered, as a person or a cart covers part of a side


def shape_views(x: np.ndarray, widths: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Body windows (n, 3, h, w) as a series shows them anywhere: in any paint, seen from
    either side of the track, partly covered.

    A varied twin paints each locomotive at random, so within one training day the paint
    tells the series apart (every locomotive is one series) and across days it tells
    nothing: trained on unshuffled colours a classifier read 98 % of its own days' windows
    and 36-48 % of new days'. ``widths``: the filled columns of each window (the rest is
    zero padding on the right, kept there when mirrored).
    """
    n = len(x)
    shuffled = rng.random(n) < SHUFFLED_COLOURS
    order = np.argsort(rng.random((n, 3)), axis=1)
    x[shuffled] = x[shuffled][np.arange(int(shuffled.sum()))[:, None], order[shuffled]]
    grey = shuffled & (rng.random(n) < GREY)
    x[grey] = x[grey].mean(axis=1, keepdims=True)
    for i in np.flatnonzero(rng.random(n) < MIRRORED):
        x[i, :, :, : widths[i]] = x[i, :, :, : widths[i]][..., ::-1]
    height, width = x.shape[2:]
    for i in np.flatnonzero(rng.random(n) < ERASED):
        h, w = (
            int(rng.integers(height // 4, height // 2)),
            int(rng.integers(width // 8, width // 3)),
        )
        top, left = int(rng.integers(0, height - h)), int(rng.integers(0, max(widths[i] - w, 1)))
        x[i, :, top : top + h, left : left + w] = rng.uniform(0, 255, (3, 1, 1))
    return x


def _filled_widths(inputs: np.ndarray) -> np.ndarray:
    """Per window (n, c, h, w): columns up to the last one holding any pixel."""
    filled: np.ndarray = np.asarray(inputs.reshape(len(inputs), -1, inputs.shape[-1]).any(axis=1))
    last = filled.shape[1] - np.argmax(filled[:, ::-1], axis=1)
    return np.where(np.asarray(filled.any(axis=1)), last, filled.shape[1])


PLATE_READABLE_PX = 10  # smaller plates are targets of "" (nothing legible), not guesses


def plate_recipe(train: Samples, epochs: int, seed: int, device: str) -> Recipe:
    texts = [_legible_text(row, x) for row, x in zip(train.labels, train.inputs, strict=True)]
    encoded = [encode_text(text) for text in texts]
    boxes = np.stack([_box_target(row) for row in train.labels])  # (N, 4) shares
    net = PlateNet(len(PLATE_ALPHABET) + 1)

    def make_batch(indices: np.ndarray, rng: np.random.Generator) -> Batch:
        x = jitter(train.inputs[indices].astype(np.float32), rng)
        true = boxes[indices]
        noisy = true + rng.normal(0, 0.01, true.shape) * [1, 2, 1, 2]  # the locator's error
        target = (
            [encoded[i] for i in indices],
            torch.from_numpy(true.astype(np.float32)),
            torch.from_numpy(noisy.astype(np.float32)),
        )
        return torch.from_numpy(x), target

    def loss(x: torch.Tensor, target: Any) -> torch.Tensor:
        """CTC of the reader on jittered true boxes, plus the locator's box error."""
        texts, true, noisy = target
        box_error = functional.smooth_l1_loss(net.locate(x), true, beta=0.01) * 10
        logits = net.read(x, noisy)
        log_probs = logits.log_softmax(2).transpose(0, 1)  # (T, N, C)
        flat = torch.tensor([c for t in texts for c in t], dtype=torch.long)
        lengths = torch.tensor([len(t) for t in texts], dtype=torch.long)
        steps = torch.full((logits.shape[0],), logits.shape[1], dtype=torch.long)
        # CTC on the CPU: deterministic, and cheap next to the network
        ctc = functional.ctc_loss(
            log_probs.float().cpu(), flat, steps, lengths, blank=0, zero_infinity=True
        )
        return ctc.to(x.device) + box_error

    return Recipe(
        net,
        make_batch,
        loss,
        Schedule(epochs=epochs, batch_size=32, learning_rate=1e-3, seed=seed, device=device),
        "sequence",
        tuple(PLATE_ALPHABET),
        (None, 1, 110, 220),
        inputs_to_loss=True,
        reads=plate_windows(train.labels),
    )


BOX_MARGIN_PX = 3
FACE_SIZE = (220, 110)
DEFAULT_BOX = (110.0, 61.0, 134.0, 34.0)  # centre x, y, width, height (px): the median plate


def _box_target(row: dict[str, Any]) -> np.ndarray:
    """The plate's box with a small margin, as shares of the face (centre x, y, w, h)."""
    box = row.get("plate_box")
    if box:
        x0, y0, x1, y1 = box["box"]
        m = BOX_MARGIN_PX
        cx, cy, w, h = (x0 + x1) / 2, (y0 + y1) / 2, x1 - x0 + 2 * m, y1 - y0 + 2 * m
    else:
        cx, cy, w, h = DEFAULT_BOX
    width, height = FACE_SIZE
    return np.array([cx / width, cy / height, w / width, h / height])


def _legible_text(row: dict[str, Any], window: np.ndarray) -> str:
    """The text to learn: none where the plate is too small or its letters too narrow, not
    wholly in the window, or hidden behind something (training.data.plate_visible): a
    reader taught to name a plate it cannot see learns to guess."""
    box = row.get("plate_box")
    shows = not box or plate_visible(window, row)
    legible = shows and ("plate_px" not in row or plate_large_enough(row, PLATE_READABLE_PX))
    return str(row["text"]) if legible else ""


RECIPES: dict[str, Callable[[Samples, int, int, str], Recipe]] = {
    "position": position_recipe,
    "model": series_recipe,
    "plate": plate_recipe,
}
