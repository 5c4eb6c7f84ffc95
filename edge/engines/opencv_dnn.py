"""CPU engine on OpenCV's DNN module. A ``cv2.dnn.Net`` keeps state between setInput and
forward, so calls are serialised with a lock."""

from __future__ import annotations

import threading

import cv2
import numpy as np

from locowatch.models.artefacts import Artefact


class OpenCVEngine:
    def __init__(self, artefact: Artefact, max_batch: int = 32) -> None:
        self.net = cv2.dnn.readNetFromONNX(str(artefact.onnx))  # CPU is the default target
        self.name = f"opencv-dnn {cv2.__version__}"
        self.max_batch = max_batch
        self._lock = threading.Lock()

    def infer(self, batch: np.ndarray) -> np.ndarray:
        outputs = []
        with self._lock:
            for start in range(0, len(batch), self.max_batch):
                self.net.setInput(
                    np.ascontiguousarray(batch[start : start + self.max_batch], np.float32)
                )
                outputs.append(np.array(self.net.forward()))
        return np.concatenate(outputs) if len(outputs) != 1 else outputs[0]

    def close(self) -> None:
        pass  # nothing outside Python to free
