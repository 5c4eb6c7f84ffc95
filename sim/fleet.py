"""Locomotive series of the twin: geometry, livery and number plates.

Six series modelled on locomotives common in Russian repair depots, from a 17 m shunter to
a 40 m two-section freight locomotive, so that the estimators meet different lengths, cab
shapes, section joints and colours. Plates read "series-number" (for example
"2ТЭ116-1234"); a two-section locomotive carries its section letter on each section
("2ТЭ116-1234А", "2ТЭ116-1234Б"), as real ones do.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np

if TYPE_CHECKING:
    from sim.variety import Look

CabShape = Literal["hood", "centre", "streamlined", "flat"]
Colour = tuple[int, int, int]  # BGR, as OpenCV draws

SECTION_GAP_M = 0.6  # coupling and gangway between the sections of one locomotive
SECTION_LETTERS = "АБВ"
# The form of every plate here (and of Russian series plates): series, dash, number, an
# optional section letter. A flow's plate estimator publishes only readings of this form.
PLATE_FORM = r"[0-9]?[А-ЯЁ]{1,4}[0-9]{1,3}[А-ЯЁ]?-[0-9]{3,5}[АБВ]?"


@dataclass(frozen=True)
class Series:
    """A locomotive series: everything the renderer and the estimators key on."""

    name: str
    sections: int
    section_length_m: float
    height_m: float  # roof above the top of rail
    width_m: float
    cab: CabShape
    body: Colour
    stripe: Colour
    roof: Colour
    number_digits: int

    @property
    def length_m(self) -> float:
        return self.sections * self.section_length_m + (self.sections - 1) * SECTION_GAP_M

    def plate(self, number: int, section: int | None = None) -> str:
        """Plate text; ``section`` (0-based) appends the section letter on multi-section units."""
        text = f"{self.name}-{number:0{self.number_digits}d}"
        if section is not None and self.sections > 1:
            text += SECTION_LETTERS[section]
        return text


SERIES: tuple[Series, ...] = (
    Series("ЧМЭ3", 1, 17.2, 4.6, 3.1, "centre", (40, 60, 190), (220, 220, 225), (60, 60, 70), 4),
    Series("ТЭМ18", 1, 16.9, 4.6, 3.1, "hood", (40, 110, 30), (40, 200, 230), (50, 60, 50), 4),
    Series(
        "ТЭП70", 1, 21.7, 4.9, 3.2, "streamlined", (45, 45, 175), (170, 170, 170), (80, 80, 80), 4
    ),
    Series("ВЛ80С", 2, 16.4, 5.1, 3.2, "flat", (60, 100, 35), (40, 40, 200), (90, 90, 90), 4),
    Series("2ТЭ116", 2, 18.15, 5.0, 3.4, "flat", (70, 130, 60), (30, 190, 235), (60, 60, 60), 4),
    Series(
        "2ТЭ25А", 2, 19.7, 5.0, 3.4, "streamlined", (40, 40, 200), (200, 200, 200), (70, 70, 70), 3
    ),
)

SERIES_BY_NAME = {s.name: s for s in SERIES}


@dataclass(frozen=True)
class Locomotive:
    """One physical locomotive of the twin."""

    loco_id: str
    series: Series
    number: int
    painted: str | None = None  # another text painted on its plates (random-plate training sets)
    look: Look | None = None  # a varied twin's livery and plates (sim.variety); None: classic

    @property
    def plate(self) -> str:
        """The identity the plate estimator must read (without a section letter)."""
        return self.series.plate(self.number)

    @property
    def length_m(self) -> float:
        return self.series.length_m


def make_fleet(
    rng: np.random.Generator, count: int, catalogue: tuple[Series, ...] = SERIES
) -> list[Locomotive]:
    """``count`` locomotives with distinct plates, series of ``catalogue`` drawn evenly."""
    fleet: list[Locomotive] = []
    used: set[str] = set()
    while len(fleet) < count:
        series = (
            catalogue[len(fleet) % len(catalogue)]
            if len(fleet) < len(catalogue)
            else catalogue[int(rng.integers(len(catalogue)))]
        )
        number = int(rng.integers(1, 10**series.number_digits))
        plate = series.plate(number)
        if plate in used:
            continue
        used.add(plate)
        fleet.append(Locomotive(f"L{len(fleet) + 1:03d}", series, number))
    return fleet
