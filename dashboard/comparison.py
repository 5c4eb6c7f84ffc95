"""How much two flows disagree about one moment of the facility.

A data scientist runs a dev flow beside prod on the same images and wants to see where
they part: how many locomotives each sees, how far apart their ends are for the same
locomotive, and whether they name it the same. Locomotives of the two flows are paired
per track by overlap (greedy, largest overlap first): fused ids differ between flows, the
body in the same place does not.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from locowatch.pairing import greedy_pairs

Loco = Mapping[str, Any]  # one entry of a snapshot's `locomotives` (LocoState.to_json())
MIN_OVERLAP_M = 0.01  # bodies that share less than this are not the same locomotive


@dataclass(frozen=True)
class Disagreement:
    count_a: int
    count_b: int
    paired: int
    end_error_m: float | None  # mean |head| and |tail| difference over pairs; None: no pairs
    identity_mismatches: int  # pairs whose plate or series both flows read, differently

    @property
    def count_difference(self) -> int:
        return self.count_b - self.count_a


def overlap(a: Loco, b: Loco) -> float:
    if a["track"] != b["track"]:
        return 0.0
    return max(0.0, min(a["head_m"], b["head_m"]) - max(a["tail_m"], b["tail_m"]))


def pair_locomotives(a: Sequence[Loco], b: Sequence[Loco]) -> list[tuple[Loco, Loco]]:
    """Greedy pairs of overlapping bodies, each locomotive in at most one pair."""
    return greedy_pairs(a, b, overlap, MIN_OVERLAP_M)


def _differs(x: Loco, y: Loco, key: str) -> bool:
    return x.get(key) is not None and y.get(key) is not None and x[key] != y[key]


def disagreement(a: Sequence[Loco], b: Sequence[Loco]) -> Disagreement:
    pairs = pair_locomotives(a, b)
    errors = [abs(x[end] - y[end]) for x, y in pairs for end in ("head_m", "tail_m")]
    return Disagreement(
        count_a=len(a),
        count_b=len(b),
        paired=len(pairs),
        end_error_m=sum(errors) / len(errors) if errors else None,
        identity_mismatches=sum(
            _differs(x, y, "plate") or _differs(x, y, "series") for x, y in pairs
        ),
    )


def disagreement_over_time(
    a: Mapping[Any, Sequence[Loco]], b: Mapping[Any, Sequence[Loco]]
) -> Iterable[tuple[Any, Disagreement]]:
    """Disagreement at each time both flows have a snapshot for, in time order."""
    for at in sorted(a.keys() & b.keys()):
        yield at, disagreement(a[at], b[at])
