"""``locowatch train``: seeded and reproducible, exports ONNX the CPU engine runs, writes a
model card, and ``locowatch models`` lists and re-measures what it wrote."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from edge.engines import open_engine
from locowatch.models.artefacts import REPO_MODELS, Artefact, file_sha256
from sim.datasets import write_dataset
from sim.faults import NO_FAULTS
from sim.scenario import ScenarioSpec
from sim.twin import TwinSpec

pytest.importorskip("torch", reason="training needs the train extra")


@pytest.fixture(scope="module")
def tiny_set(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("tiny")
    spec = TwinSpec(seed=5, scenario=ScenarioSpec(duration_s=600), faults=NO_FAULTS)
    write_dataset(
        spec, out, every_s=40.0, camera_ids=["cam-01", "cam-02", "cam-03"], progress=False
    )
    return out


def train(locowatch_cli, kind: str, data: Path, out: Path, *extra: str) -> dict:  # type: ignore[no-untyped-def]
    result = locowatch_cli(
        "train", kind, "--data", str(data), "--held-out", str(data),
        "--out", str(out), "--epochs", "1", "--seed", "3", "--device", "cpu", *extra,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads((out / "meta.json").read_text(encoding="utf-8"))


@pytest.mark.slow
def test_same_seed_same_model(locowatch_cli, tiny_set: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    first = train(locowatch_cli, "position", tiny_set, tmp_path / "a")
    second = train(locowatch_cli, "position", tiny_set, tmp_path / "b")
    assert first["sha256"] == second["sha256"]
    assert first["trained"]["loss"] == second["trained"]["loss"]
    card = (tmp_path / "a" / "card.md").read_text(encoding="utf-8")
    assert first["sha256"] in card and "| occupancy IoU |" in card
    # both exports are vouched for: TensorRT builds from the FP16 one
    assert first["sha256_fp16"] == file_sha256(tmp_path / "a" / "model.fp16.onnx")
    assert first["sha256_fp16"] in card
    # the card's per-set table: the held-out set is the training set, so nothing is unseen
    assert "| tiny" in card and "none (in family)" in card
    engine = open_engine(Artefact.load(tmp_path / "a"), "cpu")
    scores = engine.infer(np.zeros((1, 3, 56, 200), np.float32))
    assert scores.shape == (1, 6, 200)  # occupied, tail, head, hidden, plate, plate height


@pytest.mark.slow
def test_init_goes_on_from_an_artefact(locowatch_cli, tiny_set: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """--init starts from a trained artefact's weights: its first epoch already has the
    loss the first run ended with, not a random start's; a wrong kind is refused."""
    first = train(locowatch_cli, "position", tiny_set, tmp_path / "a", "--epochs", "8")
    assert (tmp_path / "a" / "weights.pt").is_file()
    init = ("--init", str(tmp_path / "a"))
    again = train(locowatch_cli, "position", tiny_set, tmp_path / "b", *init)
    start, end = first["trained"]["loss"][0], first["trained"]["loss"][-1]
    assert end < start * 0.7  # the first run learned something to go on from
    assert again["trained"]["loss"][0] < (start + end) / 2
    assert again["trained"]["init"] == str(tmp_path / "a")
    assert "from the weights of" in (tmp_path / "b" / "card.md").read_text(encoding="utf-8")
    wrong = locowatch_cli(
        "train", "model", "--data", str(tiny_set), "--held-out", str(tiny_set),
        "--out", str(tmp_path / "c"), "--init", str(tmp_path / "a"),
    )  # fmt: skip
    assert wrong.returncode != 0 and "not a 'model' one" in wrong.stderr


@pytest.mark.slow
def test_plate_training_exports_fp32_and_fp16(
    locowatch_cli, tiny_set: Path, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    meta = train(locowatch_cli, "plate", tiny_set, tmp_path / "plate")
    assert meta["task"] == "sequence" and meta["labels"][0] == "-"
    assert file_sha256(tmp_path / "plate" / "model.onnx") == meta["sha256"]
    assert (tmp_path / "plate" / "model.fp16.onnx").stat().st_size < meta["size_bytes"]
    assert "exact_readable" in meta["held_out_metrics"]["all"]
    # the classic twin's windows: end faces in both bands, cab sides: the edge sends it those
    assert meta["extra"]["reads"] == ["end-high", "end-low", "side"]
    assert Artefact.load(tmp_path / "plate").reads == ("end-high", "end-low", "side")
    assert Artefact.load(REPO_MODELS / "plate" / "4").reads == ("end-high",)  # before sides


def test_models_measure_rewrites_the_card(locowatch_cli, tiny_set: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    source = Path(__file__).resolve().parents[2] / "models" / "model" / "1"
    folder = tmp_path / "model" / "1"
    folder.mkdir(parents=True)
    for name in ("meta.json", "model.onnx", "model.fp16.onnx", "card.md"):
        (folder / name).write_bytes((source / name).read_bytes())
    result = locowatch_cli("models", "measure", str(folder), "--held-out", str(tiny_set))
    assert result.returncode == 0, result.stderr[-2000:]
    meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
    assert meta["trained"]["held_out"][0]["seed"] == 5
    assert meta["held_out_metrics"]["all"]["samples"] > 0
    listed = locowatch_cli("models", "list")
    assert "position@1" in listed.stdout and "sha256 ok" in listed.stdout


def test_position_targets_mark_hidden_columns_and_nothing_occupied_there() -> None:
    from locowatch.models import position as pos
    from training.data import position_targets

    row = {
        "start_m": 10.0, "end_m": 34.0, "covered": [10.0, 34.0], "hidden": [[20.0, 24.0]],
        "bodies": [
            {"tail_m": 14.0, "head_m": 20.0, "tail": "real", "head": "cut"},
            {"tail_m": 24.0, "head_m": 30.0, "tail": "cut", "head": "real"},
        ],
    }  # fmt: skip
    target, mask = position_targets(row)
    centres = 10.0 + (np.arange(target.shape[1]) + 0.5) * pos.STRIP_METRES_PER_PX
    hidden = (centres > 20.05) & (centres < 23.95)
    assert target.shape[0] == 6 and (target[pos.HIDDEN, hidden] == 1).all()
    assert (target[pos.HIDDEN, ~((centres >= 20.0) & (centres <= 24.0))] == 0).all()
    assert (target[pos.OCCUPIED, hidden] == 0).all()
    assert target[pos.HEAD].max() > 0.9 and target[pos.HEAD, centres < 25].max() < 0.01
    assert mask[0, centres > 34.0].sum() == 0
    old = position_targets({k: v for k, v in row.items() if k != "hidden"})  # older sets
    assert old[0][pos.HIDDEN].sum() == 0
    assert mask[1].sum() == 0  # a set without plate labels teaches nothing about plates


def test_position_targets_point_at_side_plates_with_their_height() -> None:
    from locowatch.models import position as pos
    from training.data import position_targets

    row = {
        "start_m": 10.0, "end_m": 34.0, "covered": [12.0, 34.0],
        "bodies": [{"tail_m": 14.0, "head_m": 30.0, "tail": "real", "head": "real"}],
        "plates": [{"text": "ТЭМ18-0001", "start_m": 15.0, "end_m": 16.2, "bottom_m": 2.4,
                    "top_m": 2.7}],
    }  # fmt: skip
    target, mask = position_targets(row)
    centres = 10.0 + (np.arange(target.shape[1]) + 0.5) * pos.STRIP_METRES_PER_PX
    peak = int(np.argmax(target[pos.PLATE]))
    assert abs(centres[peak] - 15.6) <= 0.05 and target[pos.PLATE].max() > 0.95
    assert target[pos.PLATE, np.abs(centres - 15.6) > 1.0].max() < 0.01
    taught = mask[2] > 0
    assert taught.sum() == 6 and np.allclose(target[pos.PLATE_HEIGHT, taught], 2.55 / 5.6)
    assert mask[1].sum() == mask[0].sum() == 220  # covered: 12..34 m
    logits = np.full((6, target.shape[1]), -8.0, np.float32)
    logits[pos.PLATE] = np.log(target[pos.PLATE] + 1e-6) - np.log(1 - target[pos.PLATE] + 1e-6)
    logits[pos.PLATE_HEIGHT] = np.log(2.55 / 5.6) - np.log(1 - 2.55 / 5.6)
    (mark,) = pos.plate_marks(logits, 10.0, (12.0, 34.0))
    assert abs(mark.metre - 15.6) < 0.05 and abs(mark.height_m - 2.55) < 0.01


def test_a_held_out_set_names_the_families_training_never_held() -> None:
    from training.families import families, unseen

    trained = [
        families(
            {
                "camera_family": "across",
                "variety": {"geometry": ["hood", "carbody"], "livery": ["plain"]},
                "hall": "bright",
            }
        ),
        families({}),  # a set from before manifests recorded families: the classic twin
    ]
    held = families(
        {
            "camera_family": "sparse",
            "variety": {"geometry": ["centre"], "livery": ["plain"]},
            "hall": "classic",
        }
    )
    assert unseen(held, trained) == ["camera=sparse", "geometry=centre"]
    assert unseen(families({"camera_family": "across", "hall": "bright"}), trained) == []
    sharper = families({"camera_family": "across", "hall": "bright", "resolution": ["1440p"]})
    assert unseen(sharper, trained) == ["resolution=1440p"]


def test_series_outside_the_known_ones_are_taught_and_measured_as_unknown() -> None:
    from training.data import Samples, series_classes, series_target
    from training.recipes import series_recipe

    rows = [
        {"series": "ТЭМ18", "series_pool": "known"},
        {"series": "ХАБ12", "series_pool": "other"},
        {"series": "ЧС2", "series_pool": "unknown"},
        {"series": "2ТЭ116"},  # a set written before pools: known
    ]
    assert [series_target(r) for r in rows] == ["ТЭМ18", "unknown", "unknown", "2ТЭ116"]
    assert series_classes(rows[:2] + rows[3:]) == ("2ТЭ116", "unknown", "ТЭМ18")
    inputs = np.zeros((4, 3, 92, 240), np.uint8)
    with pytest.raises(ValueError, match="kept for the open-set test: ЧС2"):
        series_recipe(Samples(inputs, rows), epochs=1, seed=0, device="cpu")


def test_series_windows_are_taught_in_any_paint_from_either_side() -> None:
    """A body window is shown with its colours shuffled or grey, mirrored within its
    filled columns (the zero padding stays on the right), or partly covered."""
    from training.recipes import _filled_widths, shape_views

    windows = np.zeros((64, 3, 92, 240), np.float32)
    windows[:, :, :, :100] = np.arange(1, 101, dtype=np.float32)  # a ramp along the body
    windows[:, 2, :, :100] += 100  # red above the others
    widths = _filled_widths(windows)
    assert (widths == 100).all()
    views = shape_views(windows.copy(), widths, np.random.default_rng(0))
    assert not views[:, :, :, 100:].any(), "padding stays padding"
    mirrored = views[:, 0, 0, 0] > views[:, 0, 0, 98]
    assert 0.3 < mirrored.mean() < 0.7
    red_elsewhere = views[:, 2, 45].mean(axis=1) < views[:, :2, 45].mean(axis=(1, 2))
    assert 0.3 < red_elsewhere.mean() < 0.9, "the paint no longer tells one colour"
