"""Number plate textures: the text painted on a locomotive's cab side.

Rendered with Pillow from DejaVu fonts, which Debian's ``fonts-dejavu-core`` installs
(Cyrillic included); nothing is downloaded. Textures are BGR arrays, cached per text.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

FONT_DIRS = (Path("/usr/share/fonts/truetype/dejavu"), Path("/usr/share/fonts/dejavu"))
FONT_FILES = ("DejaVuSansCondensed-Bold.ttf", "DejaVuSans-Bold.ttf")
PLATE_PX = (400, 100)  # texture size (width, height); the plate is 1.6 m x 0.4 m


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


@cache
def plate_texture(
    text: str,
    background: tuple[int, int, int] = (235, 235, 230),
    ink: tuple[int, int, int] = (25, 25, 25),
) -> np.ndarray:
    """A BGR plate image with ``text`` centred and as large as fits."""
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
    draw.rectangle((2, 2, width - 3, height - 3), outline=ink[::-1], width=3)
    return np.asarray(image)[:, :, ::-1].copy()
