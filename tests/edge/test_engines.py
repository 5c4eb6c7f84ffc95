"""Inference engines: the same answers from every engine, safe from many threads, chosen
automatically, and TensorRT (on a GPU machine) built once and then loaded from its cache."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from edge.engines import open_engine, tensorrt_available
from locowatch.errors import UsageError
from locowatch.models.artefacts import resolve

REFS = ("position@1", "model@1", "plate@1", "plate@2", "plate@3", "plate@4")


def inputs(ref: str, batch: int, seed: int = 0) -> np.ndarray:
    artefact = resolve(ref)
    shape = [d or 240 for d in artefact.input_shape[1:]]
    return np.random.default_rng(seed).uniform(0, 255, (batch, *shape)).astype(np.float32)


@pytest.mark.parametrize("ref", REFS)
def test_opencv_and_onnxruntime_agree(ref: str) -> None:
    artefact = resolve(ref)
    x = inputs(ref, 4)
    ours = open_engine(artefact, "cpu").infer(x)
    theirs = open_engine(artefact, "opencv").infer(x)
    np.testing.assert_allclose(ours, theirs, rtol=1e-3, atol=1e-3)


def test_batches_larger_than_the_engine_takes_are_split() -> None:
    artefact = resolve("model@1")
    x = inputs("model@1", 7)
    whole = open_engine(artefact, "cpu", max_batch=32).infer(x)
    pieces = open_engine(artefact, "cpu", max_batch=3).infer(x)
    np.testing.assert_allclose(whole, pieces, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("kind", ["cpu", "opencv"])
def test_one_engine_serves_many_threads(kind: str) -> None:
    """Estimator worker threads share an engine: answers must not cross between threads."""
    engine = open_engine(resolve("model@1"), kind)  # type: ignore[arg-type]
    batches = [inputs("model@1", 2, seed) for seed in range(8)]
    expected = [engine.infer(b) for b in batches]
    with ThreadPoolExecutor(4) as pool:
        got = list(pool.map(engine.infer, batches * 3))
    for i, out in enumerate(got):
        np.testing.assert_allclose(out, expected[i % 8], rtol=1e-5, atol=1e-5)


def test_auto_takes_the_cpu_engine_without_a_gpu() -> None:
    if tensorrt_available():
        pytest.skip("TensorRT is usable here")
    engine = open_engine(resolve("position@1"), "auto")
    assert engine.name.startswith("onnxruntime")


def test_asking_for_tensorrt_without_it_is_a_clear_error() -> None:
    if tensorrt_available():
        pytest.skip("TensorRT is usable here")
    with pytest.raises(UsageError, match="engine tensorrt"):
        open_engine(resolve("position@1"), "tensorrt")


@pytest.mark.gpu
@pytest.mark.parametrize("ref", REFS)
def test_tensorrt_matches_the_cpu_engine_and_caches_its_build(ref: str, tmp_path: Path) -> None:
    artefact = resolve(ref)
    x = inputs(ref, 5)
    started = time.monotonic()
    engine = open_engine(artefact, "tensorrt", max_batch=8, cache_dir=tmp_path)
    first_open = time.monotonic() - started
    assert len(list(tmp_path.glob("*.engine"))) == 1
    fp16 = engine.infer(x)
    np.testing.assert_allclose(fp16, open_engine(artefact, "cpu").infer(x), rtol=0.05, atol=0.15)
    started = time.monotonic()
    again = open_engine(artefact, "tensorrt", max_batch=8, cache_dir=tmp_path)
    assert time.monotonic() - started < first_open  # loaded, not rebuilt
    assert len(list(tmp_path.glob("*.engine"))) == 1
    with ThreadPoolExecutor(3) as pool:
        for out in pool.map(again.infer, [x] * 6):
            np.testing.assert_allclose(out, fp16, rtol=1e-3, atol=1e-3)


@pytest.mark.gpu
def test_tensorrt_rebuilds_a_cached_plan_it_cannot_load(tmp_path: Path) -> None:
    """A plan of another TensorRT, or garbage with a good checksum: removed and rebuilt."""
    from edge.engines.plans import PlanCache
    from edge.engines.trt import TensorRTEngine

    artefact = resolve("position@3")
    engine = open_engine(artefact, "tensorrt", max_batch=4, cache_dir=tmp_path)
    assert isinstance(engine, TensorRTEngine)
    expected = engine.infer(inputs("position@3", 2))
    engine.close()
    cache = PlanCache(tmp_path)
    cache.store(engine.spec, b"not a TensorRT plan" * 1000)  # checksum right, content wrong
    again = open_engine(artefact, "tensorrt", max_batch=4, cache_dir=tmp_path)
    np.testing.assert_allclose(again.infer(inputs("position@3", 2)), expected, atol=1e-3)
    assert cache.load(engine.spec) != b"not a TensorRT plan" * 1000


@pytest.mark.gpu
def test_tensorrt_widths_batches_and_concurrent_contexts(tmp_path: Path) -> None:
    from edge.engines.plans import StripWidth
    from edge.engines.trt import TensorRTEngine

    artefact = resolve("position@3")
    views = [StripWidth("cam-01", "T1", 80), StripWidth("cam-02", "T1", 600)]
    engine = TensorRTEngine(artefact, 4, tmp_path, views, contexts=2)
    cpu = open_engine(artefact, "cpu")
    for width in (80, 600, 256):  # two widths and back: the profile covers the views
        x = np.random.default_rng(width).uniform(0, 255, (3, 3, 56, width)).astype(np.float32)
        np.testing.assert_allclose(engine.infer(x), cpu.infer(x), rtol=0.05, atol=0.15)
    x = np.random.default_rng(1).uniform(0, 255, (10, 3, 56, 128)).astype(np.float32)
    np.testing.assert_allclose(engine.infer(x), cpu.infer(x), rtol=0.05, atol=0.15)  # > max
    with pytest.raises(ValueError, match=r"width 700 outside the engine's profile 64\.\.640"):
        engine.infer(np.zeros((1, 3, 56, 700), np.float32))
    with ThreadPoolExecutor(4) as pool:  # four callers, two contexts on two profiles
        outs = list(pool.map(engine.infer, [x] * 8))
    for out in outs:
        np.testing.assert_allclose(out, outs[0], rtol=1e-3, atol=1e-3)
    engine.close()  # buffers freed with the context pushed: no pycuda warning
