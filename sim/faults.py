"""Camera faults of the twin: frozen images, black frames and dropouts.

Real depot cameras freeze (the stream keeps delivering the same picture), go black
(a dead sensor, a lamp failure at night) and drop out (the RTSP session dies and must be
reopened). The schedule is drawn from the seed and written next to the ground truth, so
a test can check that each fault shows up as configured.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

FaultKind = Literal["freeze", "black", "dropout"]
KINDS: tuple[FaultKind, ...] = ("freeze", "black", "dropout")


@dataclass(frozen=True)
class Fault:
    camera_id: str
    kind: FaultKind
    start_s: float
    end_s: float

    def covers(self, t: float) -> bool:
        return self.start_s <= t < self.end_s


@dataclass(frozen=True)
class FaultSpec:
    """How often each fault strikes a camera over a run, and for how long."""

    probability: float = 0.25  # per camera and kind, over the whole run
    freeze_s: tuple[float, float] = (5.0, 20.0)
    black_s: tuple[float, float] = (1.0, 4.0)
    dropout_s: tuple[float, float] = (10.0, 40.0)
    dead_cameras: tuple[str, ...] = ()  # drop out from dead_from_s to the end
    dead_from_s: float = 0.0

    def duration(self, kind: FaultKind) -> tuple[float, float]:
        return {"freeze": self.freeze_s, "black": self.black_s, "dropout": self.dropout_s}[kind]


NO_FAULTS = FaultSpec(probability=0.0)


class FaultPlan:
    """The faults of every camera over a run, looked up by camera and time."""

    def __init__(self, faults: list[Fault]) -> None:
        self.faults = sorted(faults, key=lambda f: (f.camera_id, f.start_s))
        self._by_camera: dict[str, list[Fault]] = {}
        for fault in self.faults:
            self._by_camera.setdefault(fault.camera_id, []).append(fault)

    def active(self, camera_id: str, t: float) -> Fault | None:
        """The fault in force at ``t``; a dropout wins over the others."""
        hits = [f for f in self._by_camera.get(camera_id, []) if f.covers(t)]
        if not hits:
            return None
        return max(hits, key=lambda f: KINDS.index(f.kind))  # KINDS is in that order

    @classmethod
    def draw(
        cls, camera_ids: list[str], duration_s: float, rng: np.random.Generator, spec: FaultSpec
    ) -> FaultPlan:
        faults = []
        for camera_id in camera_ids:
            if camera_id in spec.dead_cameras:
                faults.append(Fault(camera_id, "dropout", spec.dead_from_s, duration_s + 1.0))
            for kind in KINDS:
                if rng.random() >= spec.probability:
                    continue
                low, high = spec.duration(kind)
                length = min(float(rng.uniform(low, high)), 0.1 * duration_s)
                start = float(rng.uniform(0.05, 0.95) * max(duration_s - length, 1.0))
                faults.append(Fault(camera_id, kind, round(start, 2), round(start + length, 2)))
        return cls(faults)
