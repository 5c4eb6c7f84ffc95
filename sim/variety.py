"""Structured domain randomization: the ways real depots differ, as knobs with ranges.

Networks trained on one kind of painted box in one hall learn that box and that hall
(position@1 on an independently built depot: 22 % of its intervals on a real body). Here
every way a depot can differ is a *factor* with named *families*, and each family draws
its values from documented ranges:

- ``geometry`` (per series): ``hood`` (a narrow engine hood and one cab), ``centre``
  (a cab between two hoods), ``carbody`` (full-width body, flat cab ends), ``streamlined``
  (full-width body, raked noses). Sections, lengths 12-40 m, bogies and wheels, windows,
  louvres, handrails, pantographs and roof equipment are drawn within the family.
- ``livery`` (per locomotive): ``plain``, ``striped``, ``two-tone``, ``banded``, each
  with its colours and a wear level (dirt band, streaks, rust).
- ``plates`` (per locomotive): where its numbers are: ``end-high`` (cab front under the
  windows), ``end-low`` (the buffer beam), ``cab-side``, ``body-side``; one to three
  places, sizes 0.7-1.6 m, painted or on a plate.
- ``hall`` (per twin): ``classic`` (the demo hall), ``bright``, ``dark``, ``marked`` (floor,
  pits, painted lines, survey crosses, hatched zones, columns, walls).

Camera families are the layout's (``sim.layout.CAMERA_FAMILIES``). A ``VarietySpec`` says
which families each factor may draw from, so a training set can leave whole families out
and a test set show only those (docs/twin.md "Variety", docs/datasets.md).

``VarietySpec()`` (all factors ``classic``) is the twin as it always was: the six series as
painted boxes, frames byte-identical to before this module.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass, fields, replace
from typing import Literal, TypeVar, cast, get_args

import numpy as np

from sim.fleet import SERIES, Colour, Locomotive, Series, make_fleet

GeometryFamily = Literal["hood", "centre", "carbody", "streamlined"]
LiveryFamily = Literal["plain", "striped", "two-tone", "banded"]
PlateFamily = Literal["end-high", "end-low", "cab-side", "body-side"]
T = TypeVar("T")
HallFamily = Literal["classic", "bright", "dark", "marked"]
GEOMETRY_FAMILIES: tuple[GeometryFamily, ...] = get_args(GeometryFamily)
LIVERY_FAMILIES: tuple[LiveryFamily, ...] = get_args(LiveryFamily)
PLATE_FAMILIES: tuple[PlateFamily, ...] = get_args(PlateFamily)
HALL_FAMILIES: tuple[HallFamily, ...] = get_args(HallFamily)
FACTOR_FAMILIES: dict[str, tuple[str, ...]] = {  # the factors a --variety text names
    "geometry": GEOMETRY_FAMILIES,
    "livery": LIVERY_FAMILIES,
    "plates": PLATE_FAMILIES,
    "hall": HALL_FAMILIES,
}
CLASSIC = "classic"

# -- ranges of the knobs (metres unless named otherwise) ----------------------------------
LENGTH_M = (12.0, 40.0)  # whole locomotive
SECTION_LENGTH_M = {1: (12.0, 24.0), 2: (14.0, 19.7)}
HEIGHT_M = {
    "hood": (4.3, 4.7),
    "centre": (4.3, 4.7),
    "carbody": (4.6, 5.1),
    "streamlined": (4.7, 5.1),
}
WIDTH_M = (3.0, 3.4)
NOSE_M = (1.0, 2.4)  # streamlined: how far the cab's top edge is set back
CAB_LENGTH_M = (2.6, 4.4)  # hood and centre units
WHEEL_DIAMETER_M = (1.0, 1.25)
AXLES_PER_BOGIE = (2, 3)
LOUVRE_PANELS = (0, 8)
ROOF_BOXES = (0, 4)
PANTOGRAPHS = (0, 2)  # carbody and streamlined units: electric ones carry one or two
PLATE_LENGTH_M = (0.7, 1.6)
PLATE_ASPECT = (3.5, 5.0)  # length over height
PLATES_PER_LOCO = (1, 3)
WEAR = (0.0, 1.0)


@dataclass(frozen=True)
class Build:
    """The geometry of a series: every locomotive of one series is built alike."""

    family: GeometryFamily
    nose_m: float = 0.0  # streamlined
    cab_length_m: float = 3.6  # hood, centre
    hood_inset_m: float = 0.35  # each side, hood and centre
    hood_drop_m: float = 1.0  # hood top below the cab roof
    frame_z: tuple[float, float] = (1.0, 1.35)  # underframe: bottom, top (deck)
    wheel_diameter_m: float = 1.05
    axles_per_bogie: int = 2
    side_windows: int = 2  # machine-room windows along each side, carbody units
    louvre_panels: int = 3
    louvre_slats: int = 6
    handrails: bool = True
    pantographs: int = 0
    roof_boxes: int = 1
    skirt: bool = False  # the body runs down over the frame
    fuel_tank: bool = True


@dataclass(frozen=True)
class Livery:
    """How one locomotive is painted, and how dirty it is."""

    family: LiveryFamily
    body: Colour
    lower: Colour  # two-tone: the lower half; otherwise the body colour
    stripe: Colour
    stripes: tuple[tuple[float, float], ...]  # heights above the deck, as fractions of the side
    roof: Colour
    front: Colour  # warning panel on cab fronts
    wear: float  # 0 clean .. 1 filthy


@dataclass(frozen=True)
class PlatePlace:
    """One number on a locomotive: where, how large, how painted."""

    place: PlateFamily
    length_m: float
    height_m: float
    background: Colour | None  # None: letters painted straight on the body
    ink: Colour
    along: float  # cab-side, body-side: position along the stretch, 0..1


@dataclass(frozen=True)
class Look:
    """The look of one locomotive of a varied twin."""

    livery: Livery
    plates: tuple[PlatePlace, ...]


@dataclass(frozen=True)
class HallLook:
    """The hall of a varied twin; ``HallLook()`` is the classic hall."""

    family: HallFamily = "classic"
    floor: Colour = (128, 130, 126)
    grain: float = 9.0
    pit: Literal["open", "covered", "none"] = "open"
    walkway_line: Colour | None = (20, 190, 225)
    walkway_offset_m: float = 2.2
    station_lines: bool = True
    crosses_every_m: float = 0.0  # survey crosses along the track; 0: none
    hatched_zones: int = 0  # yellow-black hatched areas per track
    column_every_m: float = 10.0  # classic: every second column carries a camera
    column_rows: int = 1  # a row of columns beside every track (1), every second one (2)
    column_half_m: float = 0.2
    column_colour: Colour = (95, 90, 85)
    column_lateral_m: float = -3.5
    wall: Colour = (168, 174, 170)
    wall_seam: Colour = (120, 125, 120)
    wall_band: Colour = (60, 92, 62)
    windows: bool = True
    sun_patches: bool = False  # daylight on the floor, as bright as the day
    night_noise: float = 9.0  # sensor noise (sigma, grey levels) when the light is lowest


@dataclass(frozen=True)
class VarietySpec:
    """Which families each factor draws from (``classic``: the twin's own six series)."""

    geometry: tuple[str, ...] = (CLASSIC,)
    livery: tuple[str, ...] = (CLASSIC,)
    plates: tuple[str, ...] = (CLASSIC,)
    hall: tuple[str, ...] = (CLASSIC,)
    # which series: the six ``known`` ones, the six real ``unknown`` ones the networks are
    # never trained on, and ``other``: series built at random per twin (a series
    # classifier's "unknown" class learns from them, never from the real unknown ones)
    series: tuple[str, ...] = ("known",)

    @property
    def classic(self) -> bool:
        return all(getattr(self, f.name) == (CLASSIC,) for f in fields(self) if f.name != "series")

    def describe(self) -> dict[str, object]:
        """The factors and their ranges, for a training set's manifest."""
        return {
            "geometry": list(self.geometry),
            "livery": list(self.livery),
            "plates": list(self.plates),
            "hall": list(self.hall),
            "series": list(self.series),
            "ranges": {
                "length_m": LENGTH_M,
                "section_length_m": {str(k): v for k, v in SECTION_LENGTH_M.items()},
                "height_m": HEIGHT_M,
                "width_m": WIDTH_M,
                "nose_m": NOSE_M,
                "cab_length_m": CAB_LENGTH_M,
                "wheel_diameter_m": WHEEL_DIAMETER_M,
                "axles_per_bogie": AXLES_PER_BOGIE,
                "louvre_panels": LOUVRE_PANELS,
                "roof_boxes": ROOF_BOXES,
                "pantographs": PANTOGRAPHS,
                "plate_length_m": PLATE_LENGTH_M,
                "plate_aspect": PLATE_ASPECT,
                "plates_per_loco": PLATES_PER_LOCO,
                "wear": WEAR,
            },
        }

    @classmethod
    def parse(cls, text: str) -> VarietySpec:
        """``"all"``, ``"classic"``, or ``factor=family+family,...`` (the rest: all families).

        >>> VarietySpec.parse("geometry=hood+centre,hall=dark").hall
        ('dark',)
        >>> VarietySpec.parse("all").geometry
        ('hood', 'centre', 'carbody', 'streamlined')
        """
        if text.strip() == CLASSIC:
            return cls()
        choices: dict[str, tuple[str, ...]] = dict(FACTOR_FAMILIES)
        if text.strip() != "all":
            for part in filter(None, (p.strip() for p in text.split(","))):
                factor, _, value = part.partition("=")
                if factor == "series":
                    pools = tuple(SERIES_POOLS) if value == "any" else tuple(value.split("+"))
                    if not pools or any(p not in SERIES_POOLS for p in pools):
                        raise ValueError(
                            f"series must be any, or known, unknown, other joined by +: {value!r}"
                        )
                    choices["series"] = pools
                    continue
                if factor not in FACTOR_FAMILIES:
                    raise ValueError(
                        f"unknown factor {factor!r}: {', '.join(FACTOR_FAMILIES)}, series"
                    )
                picked = tuple(value.split("+"))
                bad = [p for p in picked if p not in FACTOR_FAMILIES[factor]]
                if bad:
                    allowed = ", ".join(FACTOR_FAMILIES[factor])
                    raise ValueError(f"{factor} has no family {bad[0]!r}: {allowed}")
                choices[factor] = picked
        return cls(**choices)

    def without(self, factor: str, family: str) -> VarietySpec:
        """This spec with one family left out (leave-one-family-out training)."""
        kept = tuple(f for f in getattr(self, factor) if f != family)
        if not kept:
            raise ValueError(f"leaving {family!r} out leaves no {factor} family")
        return replace(self, **{factor: kept})


# -- the catalogue of series ----------------------------------------------------------------

# The twin's six series, built in detail. Their geometry is what makes them a series, so
# it is fixed; liveries and plates vary per locomotive, as they do between depots.
KNOWN_BUILDS: dict[str, Build] = {
    "ЧМЭ3": Build("centre", cab_length_m=3.6, louvre_panels=4, roof_boxes=2),
    "ТЭМ18": Build("hood", cab_length_m=4.2, louvre_panels=5, roof_boxes=1),
    "ТЭП70": Build(
        "streamlined",
        nose_m=1.6,
        side_windows=4,
        louvre_panels=2,
        skirt=True,
        axles_per_bogie=3,
        wheel_diameter_m=1.22,
        handrails=False,
    ),
    "ВЛ80С": Build(
        "carbody",
        side_windows=3,
        louvre_panels=2,
        pantographs=1,
        roof_boxes=2,
        fuel_tank=False,
        wheel_diameter_m=1.25,
    ),
    "2ТЭ116": Build("carbody", side_windows=2, louvre_panels=4, roof_boxes=3, axles_per_bogie=3),
    "2ТЭ25А": Build(
        "streamlined",
        nose_m=2.0,
        side_windows=2,
        louvre_panels=6,
        skirt=True,
        axles_per_bogie=3,
        roof_boxes=2,
        handrails=False,
    ),
}

# Real series the networks are never trained on: the open-set test ("unknown").
UNKNOWN_SERIES: tuple[Series, ...] = (
    Series("ТГМ4", 1, 12.6, 4.4, 3.1, "hood", (30, 140, 200), (220, 220, 220), (60, 60, 60), 4),
    Series("М62", 1, 17.55, 4.6, 3.3, "flat", (40, 90, 40), (40, 190, 230), (60, 60, 60), 4),
    Series(
        "ЧС2", 1, 18.9, 4.9, 3.1, "streamlined", (150, 80, 40), (210, 210, 210), (80, 80, 80), 3
    ),
    Series("ЭП1М", 1, 22.8, 5.1, 3.2, "flat", (40, 40, 180), (230, 230, 230), (90, 90, 90), 3),
    Series(
        "2ЭС6", 2, 17.4, 5.1, 3.2, "streamlined", (160, 110, 40), (40, 40, 200), (80, 80, 80), 3
    ),
    Series("ТЭМ7", 1, 21.5, 4.6, 3.1, "centre", (40, 60, 170), (30, 200, 230), (60, 60, 60), 4),
)
UNKNOWN_BUILDS: dict[str, Build] = {
    "ТГМ4": Build(
        "hood",
        cab_length_m=3.0,
        louvre_panels=3,
        axles_per_bogie=2,
        wheel_diameter_m=1.0,
        hood_drop_m=1.2,
        roof_boxes=0,
    ),
    "М62": Build("carbody", side_windows=2, louvre_panels=5, roof_boxes=2, axles_per_bogie=3),
    "ЧС2": Build(
        "streamlined",
        nose_m=1.2,
        side_windows=5,
        louvre_panels=1,
        pantographs=2,
        skirt=True,
        fuel_tank=False,
        axles_per_bogie=3,
        handrails=False,
    ),
    "ЭП1М": Build(
        "carbody",
        side_windows=4,
        louvre_panels=2,
        pantographs=2,
        fuel_tank=False,
        axles_per_bogie=2,
        wheel_diameter_m=1.25,
        roof_boxes=3,
    ),
    "2ЭС6": Build(
        "streamlined",
        nose_m=1.0,
        side_windows=3,
        louvre_panels=3,
        pantographs=1,
        fuel_tank=False,
        handrails=False,
        skirt=True,
    ),
    "ТЭМ7": Build("centre", cab_length_m=3.2, louvre_panels=6, axles_per_bogie=2, roof_boxes=2),
}
BUILDS = {**KNOWN_BUILDS, **UNKNOWN_BUILDS}


def family_of(series: Series) -> GeometryFamily:
    """The geometry family of a catalogue series."""
    return BUILDS[series.name].family


SERIES_POOLS = ("known", "unknown", "other")
OTHER_SERIES = 8  # series built at random per twin, in the ``other`` pool
OTHER_PREFIX = "Х"  # their names start with it (no real series here does): "ХТЭ4-0042"


def catalogue(spec: VarietySpec, seed: int = 0) -> tuple[Series, ...]:
    """The series a varied twin's fleet is drawn from: the spec's pools, in its geometry
    families (all four when the geometry factor is classic); ``other`` series are built
    from ``seed``."""
    families = GEOMETRY_FAMILIES if spec.geometry == (CLASSIC,) else spec.geometry
    pool: tuple[Series, ...] = ()
    if "known" in spec.series:
        pool += SERIES
    if "unknown" in spec.series:
        pool += UNKNOWN_SERIES
    if "other" in spec.series:
        rng = np.random.default_rng([seed, 41])
        pool += tuple(other_series(rng, families[k % len(families)]) for k in range(OTHER_SERIES))  # type: ignore[arg-type]
    chosen = tuple(s for s in pool if family_of(s) in families)
    if not chosen:
        raise ValueError(
            f"no {'+'.join(spec.series)} series in geometry families {', '.join(families)}"
        )
    return chosen


def series_pool(name: str) -> str:
    """Which pool a series of the catalogue is in: known, unknown or other."""
    if name.startswith(OTHER_PREFIX):
        return "other"
    return "unknown" if name in UNKNOWN_BUILDS else "known"


def other_series(rng: np.random.Generator, family: GeometryFamily) -> Series:
    """A series nobody built, of ``family``, drawn from the geometry ranges; its build is
    registered in BUILDS under its name (the same seed draws the same series)."""
    letters = "АБВГДЕЖИКЛМНПРСТУФЧЭЮ"
    name = OTHER_PREFIX + "".join(letters[int(i)] for i in rng.integers(0, len(letters), 2))
    name += str(int(rng.integers(1, 100)))
    sections = 1 if family in ("hood", "centre") or rng.random() < 0.5 else 2
    low, high = SECTION_LENGTH_M[sections]
    if family in ("hood", "centre"):
        low, high = 12.0, 22.0
    length = float(rng.uniform(low, high))
    height = float(rng.uniform(*HEIGHT_M[family]))
    width = float(rng.uniform(*WIDTH_M))
    cab = {"hood": "hood", "centre": "centre", "carbody": "flat", "streamlined": "streamlined"}[
        family
    ]
    series = Series(
        name,
        sections,
        round(length, 2),
        round(height, 2),
        round(width, 2),
        cab,  # type: ignore[arg-type]
        _colour(rng),
        _colour(rng),
        _colour(rng, 10),
        int(rng.integers(3, 5)),
    )
    electric = family in ("carbody", "streamlined") and rng.random() < 0.5
    BUILDS[name] = Build(
        family,
        nose_m=float(rng.uniform(*NOSE_M)) if family == "streamlined" else 0.0,
        cab_length_m=float(rng.uniform(*CAB_LENGTH_M)),
        hood_drop_m=float(rng.uniform(0.8, 1.3)),
        wheel_diameter_m=float(rng.uniform(*WHEEL_DIAMETER_M)),
        axles_per_bogie=int(rng.integers(AXLES_PER_BOGIE[0], AXLES_PER_BOGIE[1] + 1)),
        side_windows=int(rng.integers(1, 6)),
        louvre_panels=int(rng.integers(LOUVRE_PANELS[0], LOUVRE_PANELS[1] + 1)),
        handrails=bool(rng.random() < 0.6),
        pantographs=int(rng.integers(1, PANTOGRAPHS[1] + 1)) if electric else 0,
        roof_boxes=int(rng.integers(ROOF_BOXES[0], ROOF_BOXES[1] + 1)),
        skirt=bool(rng.random() < 0.4),
        fuel_tank=not electric,
    )
    return series


# -- drawing looks --------------------------------------------------------------------------

PALETTE: tuple[Colour, ...] = (  # BGR body colours seen on Russian and European locomotives
    (40, 60, 190),
    (40, 110, 30),
    (45, 45, 175),
    (60, 100, 35),
    (70, 130, 60),
    (40, 40, 200),
    (150, 80, 40),
    (30, 140, 200),
    (120, 120, 120),
    (200, 200, 200),
    (30, 30, 30),
    (20, 150, 230),
    (90, 50, 20),
    (60, 160, 160),
)


def varied_fleet(seed: int, count: int, spec: VarietySpec) -> list[Locomotive]:
    """``count`` locomotives of the spec's catalogue, each with its own look."""
    fleet = make_fleet(np.random.default_rng([seed, 29]), count, catalogue(spec, seed))
    return [
        replace(loco, look=draw_look(look_rng(seed, loco.loco_id), spec, loco.series))
        for loco in fleet
    ]


WALLS: tuple[Colour, ...] = (  # BGR: greys, beige, pale green and blue, brick
    (168, 174, 170),
    (235, 235, 230),
    (150, 150, 150),
    (170, 200, 215),
    (160, 190, 160),
    (200, 180, 150),
    (70, 90, 150),
    (110, 110, 105),
)


def look_rng(seed: int, loco_id: str) -> np.random.Generator:
    """A generator per (twin seed, locomotive): a locomotive's look does not depend on
    what else the twin drew."""
    return np.random.default_rng([seed, 31, zlib.crc32(loco_id.encode())])


def draw_look(rng: np.random.Generator, spec: VarietySpec, series: Series) -> Look:
    return Look(_draw_livery(rng, spec, series), _draw_plates(rng, spec))


def _colour(rng: np.random.Generator, jitter: int = 18) -> Colour:
    base = np.array(pick(rng, PALETTE))
    b, g, r = (base + rng.integers(-jitter, jitter + 1, 3)).clip(0, 255).tolist()
    return (int(b), int(g), int(r))


def _draw_livery(rng: np.random.Generator, spec: VarietySpec, series: Series) -> Livery:
    if spec.livery == (CLASSIC,):  # the series' own colours and stripe, as on the classic twin
        body, stripe, roof = series.body, series.stripe, series.roof
        return Livery("striped", body, body, stripe, ((0.3, 0.38),), roof, stripe, 0.2)
    family = cast(LiveryFamily, pick(rng, spec.livery))
    body, stripe, roof = _colour(rng), _colour(rng), _colour(rng, 10)
    lower = _colour(rng) if family == "two-tone" else body
    stripes: tuple[tuple[float, float], ...] = ()
    if family == "striped":
        low = float(rng.uniform(0.3, 0.55))
        stripes = ((low, low + float(rng.uniform(0.04, 0.1))),)
        if rng.random() < 0.5:
            stripes += ((low + 0.14, low + 0.14 + float(rng.uniform(0.02, 0.05))),)
    elif family == "banded":
        stripes = ((0.0, float(rng.uniform(0.12, 0.25))),)
    front = (30, 200, 240) if rng.random() < 0.6 else stripe
    wear = float(rng.uniform(*WEAR)) ** 1.5
    return Livery(family, body, lower, stripe, stripes, roof, front, wear)


CLASSIC_PLATES = (
    PlatePlace("end-high", 1.2, 0.3, (235, 235, 230), (25, 25, 25), 0.5),
    PlatePlace("cab-side", 1.6, 0.4, (235, 235, 230), (25, 25, 25), 0.5),
)


def _draw_plates(rng: np.random.Generator, spec: VarietySpec) -> tuple[PlatePlace, ...]:
    if spec.plates == (CLASSIC,):
        return CLASSIC_PLATES
    count = int(rng.integers(PLATES_PER_LOCO[0], PLATES_PER_LOCO[1] + 1))
    places = sorted({pick(rng, spec.plates) for _ in range(count)})
    return tuple(draw_plate(rng, place) for place in places)  # type: ignore[arg-type]


def draw_plate(rng: np.random.Generator, place: PlateFamily) -> PlatePlace:
    length = float(rng.uniform(*PLATE_LENGTH_M))
    height = length / float(rng.uniform(*PLATE_ASPECT))
    painted = rng.random() < 0.35
    light = rng.random() < 0.7
    background: Colour | None = None
    ink: Colour = (235, 235, 230)
    if not painted:
        background = (235, 235, 230) if light else (30, 30, 30)
        ink = (25, 25, 25) if light else (235, 235, 230)
    elif rng.random() < 0.5:
        ink = (30, 200, 240)  # yellow numbers painted on the body
    return PlatePlace(place, length, height, background, ink, float(rng.uniform(0.1, 0.9)))


def draw_hall(seed: int, spec: VarietySpec) -> HallLook:
    """The hall of a twin drawn from the spec's hall families."""
    if spec.hall == (CLASSIC,):
        return HallLook()
    rng = np.random.default_rng([seed, 37])
    family = cast(HallFamily, pick(rng, spec.hall))
    if family == "classic":
        return HallLook()
    tone = {"bright": (150, 190), "dark": (60, 95), "marked": (110, 150)}[family]
    grey = float(rng.uniform(*tone))
    tint = rng.uniform(-8, 8, 3)
    floor = tuple(int(v) for v in np.clip(grey + tint, 0, 255))
    line: Colour | None = pick(rng, ((20, 190, 225), (235, 235, 235), (40, 40, 210)))
    if family == "dark" and rng.random() < 0.5:
        line = None
    return HallLook(
        family=family,
        floor=(floor[0], floor[1], floor[2]),
        grain=float(rng.uniform(4, 16)),
        pit=pick(rng, ("open", "covered", "none")),
        walkway_line=line,
        walkway_offset_m=float(rng.uniform(1.8, 2.6)),
        station_lines=bool(rng.random() < 0.7),
        crosses_every_m=float(rng.uniform(4, 12)) if family == "marked" else 0.0,
        hatched_zones=int(rng.integers(1, 4)) if family == "marked" else 0,
        column_every_m=float(rng.choice([6.0, 9.0, 10.0, 12.0])),
        column_half_m=float(rng.uniform(0.15, 0.3)),
        column_rows=int(rng.integers(1, 3)),
        column_colour=_colour(rng, 30) if rng.random() < 0.4 else (95, 90, 85),
        column_lateral_m=-float(rng.uniform(3.3, 4.5)),
        wall=(wall := pick(rng, WALLS)),
        wall_seam=shade(wall, 0.72),
        wall_band=shade(pick(rng, WALLS), 0.5),
        windows=family != "dark",
        sun_patches=family != "dark" and bool(rng.random() < 0.6),
        night_noise=float(rng.uniform(9.0, 18.0)),
    )


def pick(rng: np.random.Generator, options: Sequence[T]) -> T:
    """One of ``options``, drawn uniformly (one integer from ``rng``)."""
    return options[int(rng.integers(len(options)))]


def shade(colour: Colour, factor: float) -> Colour:
    """``colour`` darkened (or lightened) by ``factor``, kept inside 0..255."""
    b, g, r = (min(255, max(0, int(c * factor))) for c in colour)
    return (b, g, r)
