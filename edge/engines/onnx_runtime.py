"""CPU engine on ONNX Runtime: graph optimisations (BatchNorm folding, fusions) and
threaded kernels; ``InferenceSession.run`` is safe to call from several threads."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort

from locowatch.models.artefacts import Artefact


class OnnxRuntimeEngine:
    def __init__(self, artefact: Artefact, max_batch: int = 32, threads: int = 0) -> None:
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.intra_op_num_threads = threads  # 0: one per core
        options.log_severity_level = 3
        self.session = ort.InferenceSession(
            str(artefact.onnx), options, providers=["CPUExecutionProvider"]
        )
        self.input_name = self.session.get_inputs()[0].name
        self.name = f"onnxruntime-cpu {ort.__version__}"
        self.max_batch = max_batch

    def infer(self, batch: np.ndarray) -> np.ndarray:
        outputs = []
        for start in range(0, len(batch), self.max_batch):
            chunk = np.ascontiguousarray(batch[start : start + self.max_batch], np.float32)
            outputs.append(self.session.run(None, {self.input_name: chunk})[0])
        return np.concatenate(outputs) if len(outputs) != 1 else outputs[0]

    def close(self) -> None:
        pass  # nothing outside Python to free
