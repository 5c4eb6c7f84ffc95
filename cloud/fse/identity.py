"""Votes for a locomotive's attributes (series, plate, ...): who it is, and how sure.

Every reading that lands on a locomotive adds its confidence to that value's tally
(alternatives add a share of theirs). A value is reported once it has enough readings
and leads with a clear share; its share of all votes is the reported confidence.

A series classifier's "unknown" (a series it was not taught) is not one more series to
be confused with: a view it cannot place says little about which known series it is.
So a known value leads when it outweighs "unknown" and holds the share among the known
values; "unknown" is reported when it holds the share of all votes. (Roof views of a
known ТЭМ18 read 261 times ТЭМ18, 128 "unknown" and 79 ЧМЭ3: no value held 60 % of all,
so the state never named it.) Plates of
multi-section units carry a section letter per end ("2ТЭ116-1234А", "...Б"): the
letter is dropped so that both ends vote for the one unit.

A plate names one locomotive: when two hold votes for the same plate (a neighbour's plate
read over a gap, or votes a locomotive took along before the tracker told two apart), it
is reported only for the one with the most votes for it (``owners``); the other reports
its own next plate, or none.
"""

from __future__ import annotations

import re
from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TypeVar

from locowatch.models.attributes import UNKNOWN_SERIES

SECTION_SUFFIX = re.compile(r"^(.*-\d+)[АБВ]$")
ALTERNATIVE_WEIGHT = 0.3
UNIQUE = frozenset({"plate"})  # attributes whose value names one locomotive
NOTHING_TAKEN: frozenset[str] = frozenset()

Key = TypeVar("Key", bound=Hashable)


def unit_plate(text: str) -> str:
    """The plate of the whole unit: without a trailing section letter."""
    match = SECTION_SUFFIX.match(text)
    return match.group(1) if match else text


@dataclass
class Tally:
    votes: dict[str, float] = field(default_factory=dict)
    readings: int = 0

    def add(
        self, value: str, confidence: float, alternatives: tuple[tuple[str, float], ...]
    ) -> None:
        self.readings += 1
        self.votes[value] = self.votes.get(value, 0.0) + confidence
        for alt, alt_confidence in alternatives:
            self.votes[alt] = self.votes.get(alt, 0.0) + ALTERNATIVE_WEIGHT * alt_confidence

    def leader(
        self, min_readings: int, min_share: float, taken: frozenset[str] = NOTHING_TAKEN
    ) -> tuple[str, float] | None:
        """The leading value and its share of the votes, once it is clear enough; values
        ``taken`` (by another locomotive) are left out."""
        votes = {v: w for v, w in self.votes.items() if v not in taken}
        if self.readings < min_readings or not votes:
            return None
        total = sum(votes.values())
        unknown = votes.get(UNKNOWN_SERIES, 0.0)
        known = {v: w for v, w in votes.items() if v != UNKNOWN_SERIES}
        if known:
            value, best = max(known.items(), key=lambda kv: kv[1])
            if best > unknown and best / sum(known.values()) >= min_share:
                return value, best / total
        return (UNKNOWN_SERIES, unknown / total) if unknown / total >= min_share else None

    def merge(self, other: Tally) -> None:
        self.readings += other.readings
        for value, weight in other.votes.items():
            self.votes[value] = self.votes.get(value, 0.0) + weight


@dataclass
class Identity:
    """All attribute tallies of one locomotive."""

    tallies: dict[str, Tally] = field(default_factory=dict)

    def add(
        self, name: str, value: str, confidence: float, alternatives: tuple[tuple[str, float], ...]
    ) -> None:
        if name == "plate":
            value = unit_plate(value)
            alternatives = tuple((unit_plate(v), c) for v, c in alternatives)
        self.tallies.setdefault(name, Tally()).add(value, confidence, alternatives)

    def resolved(
        self,
        min_readings: int,
        min_share: float,
        taken: Mapping[str, frozenset[str]] | None = None,
    ) -> dict[str, tuple[str, float]]:
        out = {}
        for name, tally in self.tallies.items():
            leader = tally.leader(min_readings, min_share, (taken or {}).get(name, NOTHING_TAKEN))
            if leader is not None:
                out[name] = leader
        return out

    def merge(self, other: Identity) -> None:
        for name, tally in other.tallies.items():
            self.tallies.setdefault(name, Tally()).merge(tally)


def owners(identities: Iterable[tuple[Key, Identity]]) -> dict[str, dict[str, Key]]:
    """Per unique attribute, each value voted for and whose it is: the one with the most
    votes for it."""
    best: dict[str, dict[str, tuple[float, Key]]] = {name: {} for name in UNIQUE}
    for key, identity in identities:
        for name in UNIQUE:
            tally = identity.tallies.get(name)
            if tally is None:
                continue
            held = best[name]
            for value, weight in tally.votes.items():
                if value not in held or weight > held[value][0]:
                    held[value] = (weight, key)
    return {name: {v: key for v, (_, key) in held.items()} for name, held in best.items()}


def taken_from(owned: Mapping[str, Mapping[str, Key]], key: Key) -> dict[str, frozenset[str]]:
    """The unique values another than ``key`` owns."""
    return {name: frozenset(v for v, k in held.items() if k != key) for name, held in owned.items()}
