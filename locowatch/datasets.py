"""The training-set format of docs/datasets.md, read: what the twin writes (``sim``) and a
depot labels, and what training and ``sim paste-plates`` read.

A set is a folder with one sub-folder per kind (``position``, ``model``, ``plate``), each
a ``labels.jsonl`` of one row per image and the images beside it.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from pathlib import Path
from typing import Any

import cv2
import numpy as np

log = logging.getLogger(__name__)


def read_labels(folder: Path, kind: str) -> list[dict[str, Any]]:
    """The rows of ``folder``'s ``kind`` set, each with its image's full path; rows that
    share their image with another row are left out (logged): see ``one_row_per_image``."""
    path = folder / kind / "labels.jsonl"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: not a dataset folder (see docs/datasets.md)")
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        row["image"] = str(folder / kind / row["image"])
        rows.append(row)
    return one_row_per_image(rows, path)


def one_row_per_image(rows: list[dict[str, Any]], path: Path) -> list[dict[str, Any]]:
    """Rows that alone name their image. Sets written before each piece of a body had its
    own windows (a locomotive seen in pieces between nearer ones) name one image in
    several rows, and it shows only the last piece: the others' labels are wrong, and so
    are all of them as far as anyone can tell."""
    named = Counter(row["image"] for row in rows)
    shared = sum(1 for row in rows if named[row["image"]] > 1)
    if shared:
        log.warning(
            "%s: %d of %d rows share an image with another row (a set written before "
            "76e7731); left out",
            path,
            shared,
            len(rows),
        )
    return [row for row in rows if named[row["image"]] == 1]


def read_image(path: str) -> np.ndarray:
    """A set's image, BGR; a clear error when it is missing or unreadable."""
    image = cv2.imread(path, cv2.IMREAD_COLOR)
    if image is None:
        raise FileNotFoundError(f"{path}: missing or unreadable image")
    return image
