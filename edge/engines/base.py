"""The one interface every inference engine offers, and the choice between them."""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Literal, Protocol

import numpy as np

from edge.engines.plans import StripWidth, strip_widths
from locowatch.errors import UsageError
from locowatch.models.artefacts import Artefact

log = logging.getLogger(__name__)

EngineKind = Literal["auto", "tensorrt", "cpu", "onnxruntime", "opencv"]


class Engine(Protocol):
    """Runs one network on a batch: (N, ...) float32 in, (N, ...) float32 out.

    ``infer`` is safe to call from several threads (each engine guards what needs it).
    """

    name: str
    max_batch: int

    def infer(self, batch: np.ndarray) -> np.ndarray: ...

    def close(self) -> None:
        """Free what the engine holds outside Python (GPU memory); no-op on the CPU."""


def tensorrt_available() -> bool:
    """TensorRT and pycuda importable and a CUDA device present."""
    if not (importlib.util.find_spec("tensorrt") and importlib.util.find_spec("pycuda")):
        return False
    try:
        import pycuda.driver as cuda

        cuda.init()
        return bool(cuda.Device.count() > 0)
    except Exception as error:  # no driver, no device: the CPU engine it is
        log.info("no usable CUDA device for TensorRT: %s", error)
        return False


def open_engine(
    artefact: Artefact,
    kind: EngineKind = "auto",
    max_batch: int = 32,
    cache_dir: Path | None = None,
    threads: int = 0,
    views: Sequence[StripWidth] = (),
) -> Engine:
    """The engine for ``artefact``: ``auto`` takes TensorRT when it can run here, else CPU.

    ``cpu`` is ONNX Runtime, measured faster than OpenCV DNN on these models
    (docs/benchmarks.md); ``opencv`` stays selectable for comparison. ``views``: the strips
    a position network will see; checked here whatever the engine, so a facility that
    runs on a CPU gateway runs on a GPU one too (TensorRT sizes its width profile by them).
    """
    artefact.verify()
    if any(d is None for d in artefact.input_shape[1:]):
        strip_widths(views)  # a view too short or too long: an error naming it
    if kind == "auto":
        kind = "tensorrt" if tensorrt_available() else "cpu"
    if kind == "tensorrt":
        if not tensorrt_available():
            raise UsageError(
                f"{artefact.ref}: engine tensorrt asked for, but TensorRT, pycuda or a GPU is "
                "missing (install the gpu extra on an NVIDIA gateway, or use engine: cpu)"
            )
        from edge.engines.trt import TensorRTEngine

        return TensorRTEngine(artefact, max_batch, cache_dir or Path(".engine-cache"), views)
    if kind == "opencv":
        from edge.engines.opencv_dnn import OpenCVEngine

        return OpenCVEngine(artefact, max_batch)
    from edge.engines.onnx_runtime import OnnxRuntimeEngine

    return OnnxRuntimeEngine(artefact, max_batch, threads)
