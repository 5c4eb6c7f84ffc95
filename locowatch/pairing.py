"""Pairing two lists of things one to one, best score first.

The twin's evaluation pairs true and estimated locomotives, the dashboard pairs two flows'
locomotives: both are spans along one track, where greedy by score is as good as an
optimal assignment (spans on a line rarely compete) and far simpler.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

A = TypeVar("A")
B = TypeVar("B")


def greedy_pairs(
    a: Sequence[A], b: Sequence[B], score: Callable[[A, B], float], minimum: float
) -> list[tuple[A, B]]:
    """Pairs of highest ``score`` first, each item in at most one pair, scores >= minimum."""
    candidates = sorted(
        ((score(x, y), i, j) for i, x in enumerate(a) for j, y in enumerate(b)),
        key=lambda c: c[0],
        reverse=True,
    )
    used_a: set[int] = set()
    used_b: set[int] = set()
    pairs = []
    for value, i, j in candidates:
        if value < minimum:
            break
        if i in used_a or j in used_b:
            continue
        used_a.add(i)
        used_b.add(j)
        pairs.append((a[i], b[j]))
    return pairs
