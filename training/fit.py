"""One seeded training loop for every network: AdamW, one-cycle learning rate, a progress bar."""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

log = logging.getLogger(__name__)

Batch = tuple[torch.Tensor, object]
MakeBatch = Callable[[np.ndarray, np.random.Generator], Batch]
Loss = Callable[[torch.Tensor, object], torch.Tensor]


@dataclass(frozen=True)
class Schedule:
    epochs: int
    batch_size: int
    learning_rate: float = 3e-3
    weight_decay: float = 1e-4
    seed: int = 0
    device: str = "cpu"


def seed_everything(seed: int) -> np.random.Generator:
    """Same seed, same data order, same augmentations, same initial weights."""
    random.seed(seed)
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)
    return np.random.default_rng(seed)


def fit(
    net: nn.Module,
    count: int,
    make_batch: MakeBatch,
    loss_fn: Loss,
    schedule: Schedule,
    progress: bool = True,
    inputs_to_loss: bool = False,
) -> list[float]:
    """Train ``net`` on samples 0..count-1; returns the mean loss of each epoch."""
    rng = seed_everything(schedule.seed)
    net.to(schedule.device)
    steps_per_epoch = max(1, count // schedule.batch_size)
    optimiser = torch.optim.AdamW(
        net.parameters(), lr=schedule.learning_rate, weight_decay=schedule.weight_decay
    )
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimiser, max_lr=schedule.learning_rate, total_steps=schedule.epochs * steps_per_epoch
    )
    history = []
    net.train()
    bar = tqdm(
        total=schedule.epochs * steps_per_epoch, desc="train", unit="step", disable=not progress
    )
    for epoch in range(schedule.epochs):
        order = rng.permutation(count)
        losses = []
        for step in range(steps_per_epoch):
            indices = order[step * schedule.batch_size : (step + 1) * schedule.batch_size]
            x, target = make_batch(indices, rng)
            x, target = x.to(schedule.device), _to(target, schedule.device)
            loss = loss_fn(x if inputs_to_loss else net(x), target)
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            scheduler.step()
            losses.append(loss.item())
            bar.update(1)
            bar.set_postfix(epoch=epoch + 1, loss=f"{np.mean(losses):.4f}")
        history.append(float(np.mean(losses)))
        log.info("epoch %d/%d loss %.4f", epoch + 1, schedule.epochs, history[-1])
    bar.close()
    net.eval().cpu()
    return history


def _to(target: object, device: str) -> object:
    """Tensors (alone or in a tuple) onto the training device; anything else as it is."""
    if isinstance(target, torch.Tensor):
        return target.to(device)
    if isinstance(target, tuple | list):
        return type(target)(_to(t, device) for t in target)
    return target


def pick_device(name: str) -> str:
    """``auto``: a CUDA GPU when PyTorch sees one (same recipe, much faster), else the CPU."""
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return name


def jitter(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Lighting changes per sample: gain, offset and noise, clipped to pixel range.

    Colour images (n, 3, h, w) also get a gain per channel: cameras differ in white balance
    and lamps in colour, and a network that keys on one livery's hue fails on the next.
    """
    n = x.shape[0]
    gain = rng.uniform(0.6, 1.4, (n,) + (1,) * (x.ndim - 1))
    if x.ndim == 4 and x.shape[1] == 3:
        gain = gain * rng.uniform(0.85, 1.15, (n, 3, 1, 1))
    offset = rng.uniform(-30, 30, (n,) + (1,) * (x.ndim - 1))
    noise = rng.normal(0, 4, x.shape)
    return np.clip(x * gain + offset + noise, 0, 255).astype(np.float32)
