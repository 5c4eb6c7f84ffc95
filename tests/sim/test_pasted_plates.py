"""Pasted plate windows (``locowatch sim paste-plates``): the label says where the plate is
and how large the camera saw it, backgrounds are bare windows only, families are the
backgrounds'."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from locowatch.datasets import read_labels
from sim.datasets import write_dataset
from sim.faults import NO_FAULTS
from sim.pasted_plates import PasteRanges, bare_windows, write_pasted_plates
from sim.scenario import ScenarioSpec
from sim.twin import TwinSpec
from training.families import families


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("rendered")
    spec = TwinSpec(seed=3, scenario=ScenarioSpec(duration_s=600), faults=NO_FAULTS)
    write_dataset(spec, out, every_s=120.0, camera_ids=["cam-02"], progress=False, kinds=("plate",))
    return out


def rows(folder: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (folder / "plate" / "labels.jsonl").open()]


def read(path: Path) -> np.ndarray:
    image = cv2.imread(str(path))
    assert image is not None, path
    return image.astype(np.float32)


def test_a_pasted_plate_lies_in_its_box_at_the_size_it_was_seen(
    rendered: Path, tmp_path: Path
) -> None:
    out = tmp_path / "pasted"
    assert write_pasted_plates([rendered], out, 60, seed=1, progress=False) == 60
    labels = rows(out)
    plates = [row for row in labels if row["text"]]
    assert 40 <= len(plates) < 60 and any(not row["text"] for row in labels)  # some bare
    ranges = PasteRanges()
    for row in plates:
        window = read(out / "plate" / row["image"])
        background = read(Path(row["background"]))
        assert ranges.plate_px[0] <= row["plate_px"] <= ranges.plate_px[1]
        assert 0 < row["plate_char_px"] < row["plate_px"]
        x0, y0, x1, y1 = row["plate_box"]["box"]
        changed = np.abs(window - background).mean(axis=2)
        inside = changed[y0:y1, x0:x1].mean()
        outside = (changed.sum() - changed[y0:y1, x0:x1].sum()) / (changed.size - inside.size)
        if row["plate_shows"] > 0.9:
            assert inside > 2 * outside, row  # the plate changed its box, not the rest
    for row in labels:
        if not row["text"]:
            assert row["plate_box"] is None and row["plate_px"] == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["source"] == "pasted" and manifest["counts"] == {"plate": 60}
    own = json.loads((rendered / "manifest.json").read_text())
    assert families(manifest) == families(own)  # pasting adds plates, not depots


def test_only_windows_known_to_be_bare_are_pasted_on(rendered: Path, tmp_path: Path) -> None:
    """A set written before each piece of a body had its own windows names one image in
    several rows: such an image is no background, and training leaves those rows out."""
    labels = rows(rendered)
    bare = [row for row in labels if not row["text"] and not row["plate_box"]]
    written = next(row for row in labels if row["text"])
    folder = tmp_path / "old"
    (folder / "plate").mkdir(parents=True)
    (folder / "plate" / "images").symlink_to(rendered / "plate" / "images")
    shared = {**bare[0], "image": written["image"]}  # a bare label on a plate's image
    with (folder / "plate" / "labels.jsonl").open("w") as f:
        f.writelines(json.dumps(row, ensure_ascii=False) + "\n" for row in [*labels, shared])
    images = {Path(row["image"]).name for row in bare_windows([folder])}
    assert Path(written["image"]).name not in images
    assert len(images) == len(bare)
    assert len(read_labels(folder, "plate")) == len(labels) - 1
    (folder / "plate" / "labels.jsonl").write_text(json.dumps(written, ensure_ascii=False))
    with pytest.raises(ValueError, match="no bare plate windows"):
        write_pasted_plates([folder], tmp_path / "none", 1, seed=0, progress=False)
