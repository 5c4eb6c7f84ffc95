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
from training.data import Samples, encode_text, position_targets, series_classes
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


def position_recipe(train: Samples, epochs: int, seed: int, device: str) -> Recipe:
    pairs = [position_targets(row) for row in train.labels]
    targets = np.stack([target for target, _ in pairs])
    masks = np.stack([mask for _, mask in pairs])

    def make_batch(indices: np.ndarray, rng: np.random.Generator) -> Batch:
        x = jitter(train.inputs[indices].astype(np.float32), rng)
        y, m = targets[indices].copy(), masks[indices].copy()
        flip = rng.random(len(indices)) < 0.5  # the track seen the other way round
        x[flip] = x[flip][..., ::-1]
        y[flip] = y[flip][:, [pos.OCCUPIED, pos.HEAD, pos.TAIL], ::-1]
        m[flip] = m[flip][:, ::-1]
        return torch.from_numpy(x.copy()), (torch.from_numpy(y.copy()), torch.from_numpy(m.copy()))

    def loss(out: torch.Tensor, target: Any) -> torch.Tensor:
        y, m = target
        weights = torch.tensor([1.0, 4.0, 4.0], device=out.device).view(
            1, 3, 1
        )  # ends are rare columns
        per = functional.binary_cross_entropy_with_logits(out, y, reduction="none") * weights
        return (per * m[:, None]).sum() / m.sum().clamp(min=1)

    return Recipe(
        PositionNet(),
        make_batch,
        loss,
        Schedule(epochs=epochs, batch_size=32, learning_rate=3e-3, seed=seed, device=device),
        "position",
        (),
        (None, 3, 56, None),
    )


def series_recipe(train: Samples, epochs: int, seed: int, device: str) -> Recipe:
    classes = series_classes(train.labels)
    y_all = np.array([classes.index(row["series"]) for row in train.labels])

    def make_batch(indices: np.ndarray, rng: np.random.Generator) -> Batch:
        x = jitter(train.inputs[indices].astype(np.float32), rng)
        return torch.from_numpy(x), torch.from_numpy(y_all[indices])

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


PLATE_READABLE_PX = 10  # smaller plates are targets of "" (nothing legible), not guesses


def plate_recipe(train: Samples, epochs: int, seed: int, device: str) -> Recipe:
    encoded = [encode_text(_legible_text(row)) for row in train.labels]

    def make_batch(indices: np.ndarray, rng: np.random.Generator) -> Batch:
        x = train.inputs[indices].astype(np.float32)
        shifts = rng.integers(-5, 6, (len(indices), 2))
        for i, (dy, dx) in enumerate(shifts):  # the plate is never in the same place twice
            x[i] = np.roll(x[i], (int(dy), int(dx)), axis=(1, 2))
        return torch.from_numpy(jitter(x, rng)), [encoded[i] for i in indices]

    def loss(logits: torch.Tensor, texts: Any) -> torch.Tensor:
        log_probs = logits.log_softmax(2).transpose(0, 1)  # (T, N, C)
        flat = torch.tensor([c for t in texts for c in t], dtype=torch.long)
        lengths = torch.tensor([len(t) for t in texts], dtype=torch.long)
        steps = torch.full((logits.shape[0],), logits.shape[1], dtype=torch.long)
        # CTC on the CPU: deterministic, and cheap next to the network
        ctc = functional.ctc_loss(
            log_probs.float().cpu(), flat, steps, lengths, blank=0, zero_infinity=True
        )
        return ctc.to(logits.device)

    return Recipe(
        PlateNet(len(PLATE_ALPHABET) + 1),
        make_batch,
        loss,
        Schedule(epochs=epochs, batch_size=32, learning_rate=1e-3, seed=seed, device=device),
        "sequence",
        tuple(PLATE_ALPHABET),
        (None, 1, 110, 220),
    )


def _legible_text(row: dict[str, Any]) -> str:
    """The text to learn: none where the plate is too small or not wholly in the window."""
    box, px = row.get("plate_box"), row.get("plate_px")
    legible = (not box or box["inside"]) and (px is None or px >= PLATE_READABLE_PX)
    return str(row["text"]) if legible else ""


RECIPES: dict[str, Callable[[Samples, int, int, str], Recipe]] = {
    "position": position_recipe,
    "model": series_recipe,
    "plate": plate_recipe,
}
