"""Number plate textures: the text painted on a locomotive's cab side.

Rendered with Pillow from DejaVu fonts, which Debian's ``fonts-dejavu-core`` installs
(Cyrillic included); nothing is downloaded. Textures are BGR arrays, cached per text.

``random_plate_text`` makes up plates for training sets (``locowatch sim dataset
--random-plates``): a twin day holds ~20 locomotives, so a few seeds show a reader only
~150 numbers, and a reader taught on so few learns them and the commonest prefixes instead
of the letters (plate@2 read nearly every held-out "ТЭМ18" as "ТЭП18"). Two styles:

- ``any``: half a series of the twin with any number, half a made-up series;
- ``near``: a series of the twin with one character changed ("ТЭЖ18"), so that the reader
  must read every character of a series it knows instead of guessing it from the rest
  (plate@3 still read ТЭМ18 as ТЭП18 on 22 of its 31 misses on seed 100).
"""

from __future__ import annotations

from functools import cache, lru_cache
from pathlib import Path
from typing import Literal

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from locowatch.models.attributes import PLATE_ALPHABET
from sim.fleet import SECTION_LETTERS, SERIES

FONT_DIRS = (Path("/usr/share/fonts/truetype/dejavu"), Path("/usr/share/fonts/dejavu"))
FONT_FILES = ("DejaVuSansCondensed-Bold.ttf", "DejaVuSans-Bold.ttf")
PLATE_PX = (400, 100)  # texture size (width, height); the plate is 1.6 m x 0.4 m
LETTERS = PLATE_ALPHABET[PLATE_ALPHABET.index("А") :]  # made-up plates stay readable
DIGITS = "0123456789"
PlateStyle = Literal["any", "near"]
PLATE_STYLES: tuple[PlateStyle, ...] = ("any", "near")


class FontMissingError(RuntimeError):
    """No DejaVu font: install Debian's fonts-dejavu-core (make test does)."""


@cache
def font_path() -> Path:
    for folder in FONT_DIRS:
        for name in FONT_FILES:
            if (folder / name).exists():
                return folder / name
    raise FontMissingError(
        "DejaVu fonts not found; install them with 'apt-get install fonts-dejavu-core'"
    )


@lru_cache(maxsize=256)  # a fleet has a few dozen plates; random plates are one-offs
def plate_texture(
    text: str,
    background: tuple[int, int, int] = (235, 235, 230),
    ink: tuple[int, int, int] = (25, 25, 25),
    border: bool = True,
) -> np.ndarray:
    """A BGR plate image with ``text`` centred and as large as fits; without ``border``,
    numbers painted straight on a body of colour ``background``."""
    width, height = PLATE_PX
    image = Image.new("RGB", (width, height), background[::-1])
    draw = ImageDraw.Draw(image)
    size = height
    while size > 8:
        font = ImageFont.truetype(str(font_path()), size)
        left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
        if right - left <= width * 0.92 and bottom - top <= height * 0.78:
            break
        size -= 2
    x = (width - (right - left)) / 2 - left
    y = (height - (bottom - top)) / 2 - top
    draw.text((x, y), text, font=font, fill=ink[::-1])
    if border:
        draw.rectangle((2, 2, width - 3, height - 3), outline=ink[::-1], width=3)
    return np.asarray(image)[:, :, ::-1].copy()


def random_plate_text(rng: np.random.Generator, style: PlateStyle = "any") -> str:
    """A plate-like text in ``style`` (see the module's docstring)."""
    if style == "near":
        name, digits = _near_series(rng)
    elif rng.random() < 0.5:
        series = SERIES[int(rng.integers(len(SERIES)))]
        name, digits = series.name, series.number_digits
    else:
        name = "".join(
            [
                _pick(DIGITS[1:], rng) if rng.random() < 0.3 else "",
                *(_pick(LETTERS, rng) for _ in range(rng.integers(2, 4))),
                *(_pick(DIGITS, rng) for _ in range(rng.integers(0, 4))),
                _pick(LETTERS, rng) if rng.random() < 0.2 else "",
            ]
        )
        digits = int(rng.integers(3, 5))
    number = "".join(_pick(DIGITS, rng) for _ in range(digits))
    section = _pick(SECTION_LETTERS, rng) if rng.random() < 0.2 else ""
    return f"{name}-{number}{section}"


def _near_series(rng: np.random.Generator) -> tuple[str, int]:
    """A twin series' name with one character swapped for another of its kind (a letter for
    a letter, a digit for a digit), and that series' count of number digits."""
    series = SERIES[int(rng.integers(len(SERIES)))]
    name = list(series.name)
    at = int(rng.integers(len(name)))
    kind = DIGITS if name[at] in DIGITS else LETTERS
    name[at] = _pick(kind.replace(name[at], ""), rng)
    return "".join(name), series.number_digits


def _pick(characters: str, rng: np.random.Generator) -> str:
    return characters[int(rng.integers(len(characters)))]
