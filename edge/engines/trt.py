"""TensorRT engine: built from ONNX, cached on disk, run through pycuda.

Building (minutes on a first start) happens once per ``BuildSpec`` (edge/engines/plans.py:
the ONNX bytes, precision, batch and width profile, profiles, workspace, GPU and TensorRT
version); the plan is cached with a checksum, one process builds at a time per cache
folder, and a plan TensorRT cannot load is removed and rebuilt once. A timing cache per GPU
and TensorRT version makes rebuilds of other models faster.

Precision: every TensorRT 10.x and 11 builds strongly typed networks
(``NetworkDefinitionCreationFlag.STRONGLY_TYPED``); TensorRT 11 has no FP16 builder flag
any more. Where the FP16 export (``model.fp16.onnx``, its hash in meta.json) exists the
network is built strongly typed from it; without it, the FP32 ONNX with the FP16 flag
where the flag exists.

Threads: the device's primary context (``pycuda.autoprimaryctx``) is pushed around each
call. TensorRT needs a separate optimization profile for each execution context used at
the same time, so the engine is built with ``contexts`` identical profiles and a
``ContextPool`` hands out at most that many contexts (each with its stream and buffers);
more callers wait. ``close`` frees them with the context pushed.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pycuda.autoprimaryctx  # noqa: F401  (retains the primary context of device 0)
import pycuda.driver as cuda
import tensorrt as trt

from edge.engines.plans import (
    BuildSpec,
    ContextPool,
    PlanCache,
    StripWidth,
    load_or_build,
    outside,
    profile_shapes,
    strip_widths,
)
from locowatch.files import write_atomic
from locowatch.models.artefacts import Artefact, file_sha256

log = logging.getLogger(__name__)
WORKSPACE_BYTES = 1 << 30


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
    def __init__(
        self,
        artefact: Artefact,
        max_batch: int,
        cache_dir: Path,
        views: Iterable[StripWidth] = (),
        contexts: int = 1,
    ) -> None:
        self.artefact = artefact
        self.max_batch = max_batch
        self.name = f"tensorrt {trt.__version__}"
        self._logger = _Logger()
        self._context = cuda.Context.get_current()
        self._runtime = trt.Runtime(self._logger)
        strongly_typed = artefact.onnx_fp16.is_file()  # every 10.x and 11 have the flag
        self._onnx = artefact.onnx_fp16 if strongly_typed else artefact.onnx
        device = cuda.Device(0)
        self.spec = BuildSpec(
            model=artefact.ref,
            onnx_sha256=file_sha256(self._onnx),
            strongly_typed=strongly_typed,
            profile=profile_shapes(artefact.input_shape, max_batch, strip_widths(views)),
            profiles=contexts,
            workspace_bytes=WORKSPACE_BYTES,
            device=device.name(),
            compute_capability="sm{}{}".format(*device.compute_capability()),
            tensorrt=trt.__version__,
        )
        self._cache_dir = cache_dir
        self.engine = load_or_build(PlanCache(cache_dir), self.spec, self._build, self._load)
        self.input_name, self.output_name = self._io_names()
        self._pool: ContextPool[_ContextState] = ContextPool(contexts, self._new_context)

    def _load(self, plan: bytes) -> Any | None:
        return self._runtime.deserialize_cuda_engine(plan)  # None: not a plan this can load

    def _io_names(self) -> tuple[str, str]:
        names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        inputs = [n for n in names if self.engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        outputs = [n for n in names if self.engine.get_tensor_mode(n) == trt.TensorIOMode.OUTPUT]
        return inputs[0], outputs[0]

    def _build(self) -> bytes:
        spec, onnx = self.spec, self._onnx
        started = time.monotonic()
        log.info("engine %s: building from %s (this can take minutes)", spec.model, onnx.name)
        builder = trt.Builder(self._logger)
        flags = 0
        if spec.strongly_typed:
            flags |= 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)
        network = builder.create_network(flags)
        parser = trt.OnnxParser(network, self._logger)
        if not parser.parse(onnx.read_bytes()):
            errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
            raise RuntimeError(f"{onnx}: TensorRT cannot parse it: {errors}")
        config = builder.create_builder_config()
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, spec.workspace_bytes)
        if not spec.strongly_typed and hasattr(trt.BuilderFlag, "FP16"):
            config.set_flag(trt.BuilderFlag.FP16)
        tensor = network.get_input(0)
        for _ in range(spec.profiles):  # one per context used at the same time
            profile = builder.create_optimization_profile()
            profile.set_shape(tensor.name, *spec.profile)
            config.add_optimization_profile(profile)
        device = spec.device.replace(" ", "_")
        timing_path = self._cache_dir / f"timing-{spec.tensorrt}-{device}.cache"
        timing = config.create_timing_cache(
            timing_path.read_bytes() if timing_path.is_file() else b""
        )
        config.set_timing_cache(timing, ignore_mismatch=False)
        with _heartbeat(f"engine {spec.model}: still building"):
            plan = builder.build_serialized_network(network, config)
        if plan is None:
            raise RuntimeError(f"{onnx}: TensorRT engine build failed (see the log)")
        # Under the folder's build lock: no other process writes it meanwhile.
        write_atomic(timing_path, bytes(memoryview(config.get_timing_cache().serialize())))
        log.info("engine %s: built in %.0f s", spec.model, time.monotonic() - started)
        return bytes(memoryview(plan))

    def _new_context(self, profile: int) -> _ContextState:
        stream = cuda.Stream()
        context = self.engine.create_execution_context()
        if not context.set_optimization_profile_async(profile, stream.handle):
            raise RuntimeError(f"{self.artefact.ref}: cannot select optimization profile {profile}")
        return _ContextState(context, stream)

    def infer(self, batch: np.ndarray) -> np.ndarray:
        self._context.push()
        try:
            with self._pool.acquire() as state:
                outputs = [
                    self._infer_chunk(state, batch[i : i + self.max_batch])
                    for i in range(0, len(batch), self.max_batch)
                ]
        finally:
            self._context.pop()
        return np.concatenate(outputs) if len(outputs) != 1 else outputs[0]

    def close(self) -> None:
        """Free every context's buffers with the CUDA context pushed (pycuda warns and
        leaks otherwise)."""
        self._context.push()
        try:
            self._pool.close(lambda state: state.free())
        finally:
            self._context.pop()

    def _infer_chunk(self, state: _ContextState, chunk: np.ndarray) -> np.ndarray:
        why = outside(tuple(chunk.shape), self.spec.profile)
        if why is not None:
            raise ValueError(f"{self.artefact.ref}: {why}")
        in_dtype = trt.nptype(self.engine.get_tensor_dtype(self.input_name))
        out_dtype = trt.nptype(self.engine.get_tensor_dtype(self.output_name))
        context = state.context
        if not context.set_input_shape(self.input_name, chunk.shape):
            raise ValueError(f"{self.artefact.ref}: TensorRT refused input shape {chunk.shape}")
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


class _ContextState:
    """An execution context on its own profile, its stream, and pinned host and device
    buffers that grow to the largest batch seen, never shrink."""

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

    def free(self) -> None:
        for allocation, _ in self._device.values():
            allocation.free()
        for buffer in self._host.values():
            base = buffer.base
            if base is not None and hasattr(base, "free"):
                base.free()  # pycuda's HostAllocation behind a pagelocked array
        self._device.clear()
        self._host.clear()
        del self.context
