"""ONNX export (FP32 and FP16, dynamic batch) and the artefact folder's meta.json."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import torch
from torch import nn

from locowatch.models.artefacts import file_sha256

OPSET = 17


def export_onnx(
    net: nn.Module, example: torch.Tensor, path: Path, dynamic_width: bool, half: bool = False
) -> None:
    """Write ``net`` as ONNX; batch is dynamic, and the last axis too for position strips."""
    net = copy.deepcopy(net).eval()
    if half:
        net = net.half()
        example = example.half()
    axes: dict[int, str] = {0: "batch"}
    out_axes: dict[int, str] = {0: "batch"}
    if dynamic_width:
        axes[3] = "width"
        out_axes[2] = "width"
    path.parent.mkdir(parents=True, exist_ok=True)
    with torch.no_grad():
        torch.onnx.export(
            net,
            (example,),
            str(path),
            input_names=["input"],
            output_names=["output"],
            dynamic_axes={"input": axes, "output": out_axes},
            opset_version=OPSET,
            dynamo=False,  # the TorchScript exporter: plain graphs both runtimes read
        )


def write_meta(folder: Path, meta: dict[str, Any]) -> dict[str, Any]:
    meta = {**meta, "sha256": file_sha256(folder / "model.onnx")}
    if (folder / "model.fp16.onnx").is_file():
        meta["sha256_fp16"] = file_sha256(folder / "model.fp16.onnx")
    meta["size_bytes"] = (folder / "model.onnx").stat().st_size
    (folder / "meta.json").write_text(json.dumps(meta, indent=2, ensure_ascii=False) + "\n")
    return meta
