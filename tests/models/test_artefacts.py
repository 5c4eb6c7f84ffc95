"""The committed model artefacts: intact, small, with dynamic batch, and accurate on a
twin scene they never saw (measured through the CPU engine and the edge's decoders)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest

from edge.engines import open_engine
from locowatch.errors import UsageError
from locowatch.models.artefacts import Artefact, file_sha256, models_root, resolve
from training.data import load
from training.evaluate import evaluate

REFS = ("position@1", "position@2", "model@1", "plate@1", "plate@2", "plate@3", "plate@4")


@pytest.mark.parametrize("ref", REFS)
def test_artefact_is_intact_small_and_documented(ref: str) -> None:
    artefact = resolve(ref)
    assert file_sha256(artefact.onnx) == artefact.sha256
    assert artefact.onnx.stat().st_size < 20e6
    card = (artefact.folder / "card.md").read_text(encoding="utf-8")
    assert artefact.sha256 in card and "Held-out metrics" in card
    for path in (artefact.onnx, artefact.onnx_fp16):
        onnx.checker.check_model(str(path))
    fp16 = onnx.load(str(artefact.onnx_fp16))
    assert fp16.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT16


@pytest.mark.parametrize("ref", REFS)
def test_batch_is_dynamic_and_samples_independent(ref: str) -> None:
    """Batch 1 and batch 5 give the same answer for the same sample (eval-mode norms)."""
    artefact = resolve(ref)
    engine = open_engine(artefact, "cpu")
    rng = np.random.default_rng(1)
    shape = [d or 240 for d in artefact.input_shape[1:]]
    batch = rng.uniform(0, 255, (5, *shape)).astype(np.float32)
    together = engine.infer(batch)
    alone = engine.infer(batch[2:3])
    assert together.shape[0] == 5
    np.testing.assert_allclose(together[2], alone[0], rtol=1e-4, atol=1e-4)


def test_position_strip_width_is_dynamic() -> None:
    engine = open_engine(resolve("position@1"), "cpu")
    for width in (96, 240, 310):
        out = engine.infer(np.zeros((2, 3, 56, width), np.float32))
        assert out.shape == (2, 3, width)


def test_changed_onnx_is_refused(tmp_path: Path) -> None:
    source = resolve("model@1")
    folder = tmp_path / "model" / "1"
    folder.mkdir(parents=True)
    for name in ("meta.json", "model.onnx"):
        (folder / name).write_bytes((source.folder / name).read_bytes())
    with (folder / "model.onnx").open("ab") as handle:
        handle.write(b"\0")
    with pytest.raises(UsageError, match="sha256"):
        open_engine(Artefact.load(folder), "cpu")


def test_unknown_reference_is_a_clear_error() -> None:
    with pytest.raises(UsageError, match=r"no .*meta\.json"):
        resolve("position@99")
    with pytest.raises(UsageError, match="NAME@VERSION"):
        resolve("position")


def test_every_committed_artefact_is_listed() -> None:
    metas = sorted(models_root().glob("*/*/meta.json"))
    refs = {f"{json.loads(m.read_text())['name']}@{m.parent.name}" for m in metas}
    assert set(REFS) <= refs


def test_position_on_a_held_out_scene(held_out_scene: Path) -> None:
    metrics = evaluate(resolve("position@1"), load([held_out_scene], "position", False))["all"]
    assert metrics["real_ends"] >= 50
    assert metrics["end_error_median_m"] <= 0.25
    assert metrics["end_error_p95_m"] <= 1.0
    assert metrics["end_kind_accuracy"] >= 0.97
    assert metrics["occupancy_iou"] >= 0.95


def test_series_on_a_held_out_scene(held_out_scene: Path) -> None:
    metrics = evaluate(resolve("model@1"), load([held_out_scene], "model", False))["all"]
    assert metrics["samples"] >= 30
    assert metrics["accuracy"] >= 0.95


def test_plates_on_a_held_out_scene(held_out_scene: Path) -> None:
    """plate@4 reads 96 % of the held-out plates >= 16 px that show whole exactly (its
    card: seeds 100 and 101; issue 4 asks for 95 %); on this small scene it must stay
    above 90 %."""
    metrics = evaluate(resolve("plate@4"), load([held_out_scene], "plate", False))["all"]
    assert metrics["visible_samples"] >= 10
    assert metrics["exact_visible"] >= 0.9
    assert metrics["readable_samples"] > metrics["visible_samples"]  # some plates are hidden
