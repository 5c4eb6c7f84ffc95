"""TensorRT engine: built from ONNX in FP16, cached on disk, run through pycuda.

Building (minutes on a first start) happens once per ONNX file, GPU and TensorRT version:
the serialised engine is cached under a key of all three (plus the batch range), and a
timing cache per GPU and TensorRT version makes rebuilds of other models faster.

Precision: TensorRT 11 builds strongly typed networks only (no FP16 builder flag), so
where the FP16 export (``model.fp16.onnx``) exists the network is built strongly typed from
it; TensorRT 10 without it builds the FP32 ONNX with the FP16 flag.

Threads: pycuda's ``autoinit`` binds its context to the importing thread; this engine
uses the device's primary context (``pycuda.autoprimaryctx``) pushed around each call, and
one execution context, stream and set of buffers per thread (TensorRT execution contexts
are not thread-safe, the engine is).
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pycuda.autoprimaryctx  # noqa: F401  (retains the primary context of device 0)
import pycuda.driver as cuda
import tensorrt as trt

from locowatch.models.artefacts import Artefact, file_sha256

log = logging.getLogger(__name__)
WORKSPACE_BYTES = 1 << 30
# Our networks' I/O types (trt.nptype is gone from newer TensorRT Python bindings).
_NUMPY = {trt.DataType.FLOAT: np.float32, trt.DataType.HALF: np.float16}


class _Logger(trt.ILogger):
    """TensorRT's messages into our structured log."""

    def __init__(self) -> None:
        trt.ILogger.__init__(self)

    def log(self, severity: Any, msg: str) -> None:
        level = {
            trt.ILogger.INTERNAL_ERROR: logging.ERROR,
            trt.ILogger.ERROR: logging.ERROR,
            trt.ILogger.WARNING: logging.WARNING,
            trt.ILogger.INFO: logging.DEBUG,
        }.get(severity, logging.DEBUG)
        log.log(level, "tensorrt: %s", msg)


def cache_key(onnx: Path, max_batch: int) -> str:
    """What an engine depends on: the ONNX bytes, the GPU, TensorRT's version, the batch range."""
    device = cuda.Device(0)
    parts = [
        file_sha256(onnx),
        device.name(),
        "sm{}{}".format(*device.compute_capability()),
        trt.__version__,
        f"batch1-{max_batch}",
    ]
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:24]


@contextmanager
def _heartbeat(message: str, every_s: float = 15.0) -> Iterator[None]:
    """Log ``message`` with the time elapsed every ``every_s`` while the block runs: a first
    build takes minutes, and an operator watching the log must see it is alive."""
    done = threading.Event()
    started = time.monotonic()

    def beat() -> None:
        while not done.wait(every_s):
            log.info("%s (%.0f s)", message, time.monotonic() - started)

    thread = threading.Thread(target=beat, name="engine-build-heartbeat", daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()


class TensorRTEngine:
    def __init__(self, artefact: Artefact, max_batch: int, cache_dir: Path) -> None:
        self.artefact = artefact
        self.max_batch = max_batch
        self.name = f"tensorrt {trt.__version__}"
        self._logger = _Logger()
        self._context = cuda.Context.get_current()
        strongly_typed = artefact.onnx_fp16.is_file() and hasattr(
            trt.NetworkDefinitionCreationFlag, "STRONGLY_TYPED"
        )
        onnx = artefact.onnx_fp16 if strongly_typed else artefact.onnx
        cache_dir.mkdir(parents=True, exist_ok=True)
        key = cache_key(onnx, max_batch)
        path = cache_dir / f"{artefact.name}-{artefact.version}-{key}.engine"
        if path.is_file():
            log.info("engine %s: cached %s", artefact.ref, path.name)
            plan = path.read_bytes()
        else:
            plan = self._build(onnx, strongly_typed, cache_dir)
            tmp = path.with_suffix(".tmp")
            tmp.write_bytes(plan)
            tmp.replace(path)  # a crash mid-write never leaves a broken engine behind
        self._runtime = trt.Runtime(self._logger)
        self.engine = self._runtime.deserialize_cuda_engine(plan)
        self.input_name, self.output_name = self._io_names()
        self._local = threading.local()

    def _io_names(self) -> tuple[str, str]:
        names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        inputs = [n for n in names if self.engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        outputs = [n for n in names if self.engine.get_tensor_mode(n) == trt.TensorIOMode.OUTPUT]
        return inputs[0], outputs[0]

    def _build(self, onnx: Path, strongly_typed: bool, cache_dir: Path) -> bytes:
        started = time.monotonic()
        log.info(
            "engine %s: building from %s (this can take minutes)", self.artefact.ref, onnx.name
        )
        builder = trt.Builder(self._logger)
        flags = 0
        if strongly_typed:
            flags |= 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)
        network = builder.create_network(flags)
        parser = trt.OnnxParser(network, self._logger)
        if not parser.parse(onnx.read_bytes()):
            errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
            raise RuntimeError(f"{onnx}: TensorRT cannot parse it: {errors}")
        config = builder.create_builder_config()
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, WORKSPACE_BYTES)
        if not strongly_typed and hasattr(trt.BuilderFlag, "FP16"):
            config.set_flag(trt.BuilderFlag.FP16)
        profile = builder.create_optimization_profile()
        tensor = network.get_input(0)
        shape = [d if d > 0 else None for d in tensor.shape]
        lo, opt, hi = self._profile_shapes(shape)
        profile.set_shape(tensor.name, lo, opt, hi)
        config.add_optimization_profile(profile)
        timing_path = (
            cache_dir / f"timing-{trt.__version__}-{cuda.Device(0).name().replace(' ', '_')}.cache"
        )
        timing = config.create_timing_cache(
            timing_path.read_bytes() if timing_path.is_file() else b""
        )
        config.set_timing_cache(timing, ignore_mismatch=False)
        with _heartbeat(f"engine {self.artefact.ref}: still building"):
            plan = builder.build_serialized_network(network, config)
        if plan is None:
            raise RuntimeError(f"{onnx}: TensorRT engine build failed (see the log)")
        timing_path.write_bytes(memoryview(config.get_timing_cache().serialize()))
        log.info("engine %s: built in %.0f s", self.artefact.ref, time.monotonic() - started)
        return bytes(memoryview(plan))

    def _profile_shapes(self, shape: list[int | None]) -> tuple[tuple[int, ...], ...]:
        """Batch 1..max_batch; a dynamic strip width from 64 to 512 columns."""
        rest = self.artefact.input_shape[1:]
        lo = [1] + [d or 64 for d in rest]
        opt = [max(1, self.max_batch // 2)] + [d or 256 for d in rest]
        hi = [self.max_batch] + [d or 512 for d in rest]
        return tuple(lo), tuple(opt), tuple(hi)

    def _thread_state(self) -> Any:
        """Execution context, stream and growable buffers of the calling thread."""
        state = getattr(self._local, "state", None)
        if state is None:
            state = _ThreadState(self.engine.create_execution_context(), cuda.Stream())
            self._local.state = state
        return state

    def infer(self, batch: np.ndarray) -> np.ndarray:
        self._context.push()
        try:
            outputs = [
                self._infer_chunk(batch[i : i + self.max_batch])
                for i in range(0, len(batch), self.max_batch)
            ]
        finally:
            self._context.pop()
        return np.concatenate(outputs) if len(outputs) != 1 else outputs[0]

    def _infer_chunk(self, chunk: np.ndarray) -> np.ndarray:
        state = self._thread_state()
        in_dtype = _NUMPY[self.engine.get_tensor_dtype(self.input_name)]
        out_dtype = _NUMPY[self.engine.get_tensor_dtype(self.output_name)]
        context = state.context
        context.set_input_shape(self.input_name, chunk.shape)
        out_shape = tuple(context.get_tensor_shape(self.output_name))
        host_in = state.host("in", chunk.shape, in_dtype)
        host_out = state.host("out", out_shape, out_dtype)
        np.copyto(host_in, chunk, casting="unsafe")
        device_in = state.device("in", host_in.nbytes)
        device_out = state.device("out", host_out.nbytes)
        context.set_tensor_address(self.input_name, int(device_in))
        context.set_tensor_address(self.output_name, int(device_out))
        cuda.memcpy_htod_async(device_in, host_in, state.stream)
        if not context.execute_async_v3(state.stream.handle):
            raise RuntimeError(f"{self.artefact.ref}: TensorRT execution failed")
        cuda.memcpy_dtoh_async(host_out, device_out, state.stream)
        state.stream.synchronize()
        return host_out.astype(np.float32)


class _ThreadState:
    """Pinned host and device buffers that grow to the largest batch seen, never shrink."""

    def __init__(self, context: Any, stream: Any) -> None:
        self.context = context
        self.stream = stream
        self._host: dict[str, np.ndarray] = {}
        self._device: dict[str, tuple[Any, int]] = {}

    def host(self, key: str, shape: tuple[int, ...], dtype: Any) -> np.ndarray:
        size = int(np.prod(shape))
        buffer = self._host.get(key)
        if buffer is None or buffer.size < size or buffer.dtype != dtype:
            buffer = cuda.pagelocked_empty(size, dtype)
            self._host[key] = buffer
        return buffer[:size].reshape(shape)

    def device(self, key: str, nbytes: int) -> Any:
        held = self._device.get(key)
        if held is None or held[1] < nbytes:
            held = (cuda.mem_alloc(nbytes), nbytes)
            self._device[key] = held
        return held[0]
