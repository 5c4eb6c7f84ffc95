"""Inference engines behind one small interface: ``engine.infer(batch) -> outputs``.

base.py          the Engine protocol and ``open_engine`` (auto: TensorRT on a GPU, else CPU)
onnx_runtime.py  CPU engine on ONNX Runtime (the default CPU engine; see docs/models.md)
opencv_dnn.py    CPU engine on OpenCV's DNN module (measured against ONNX Runtime)
trt.py           TensorRT engine: FP16, dynamic batch, engines cached on disk, pycuda
"""

from edge.engines.base import Engine, EngineKind, open_engine, tensorrt_available

__all__ = ["Engine", "EngineKind", "open_engine", "tensorrt_available"]
