"""Inference throughput of the three committed models, engine against engine.

For each model and batch size (1, 8, 32): inferences per second with the CPU engine
(ONNX Runtime, what the edge runs), OpenCV DNN (the other CPU candidate), and PyTorch
eager running the network as trained (``training/nets.py``, eval mode) as the baseline,
all on the same inputs in the same run. With ``--device cuda`` (a GPU machine with
PyTorch) PyTorch eager is also timed on the GPU in FP32 and FP16.

Writes bench/results/models.json. Needs the train extra.

    .venv/bin/python bench/bench_models.py [--seconds 2] [--threads 2] [--device cpu]
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import numpy as np
import torch

from edge.engines import open_engine
from locowatch.models.artefacts import Artefact, resolve

RESULTS = Path(__file__).resolve().parent / "results"
MODELS = ("position@1", "position@2", "model@1", "plate@4")
BATCHES = (1, 8, 32)
POSITION_1 = {"width": 40, "outputs": 3, "channels": (12, 16, 24)}  # before meta kept them
STRIP_WIDTH = 240  # a typical camera's view of its track: 24 m


def example(artefact: Artefact, batch: int, rng: np.random.Generator) -> np.ndarray:
    shape = [batch, *(d or STRIP_WIDTH for d in artefact.input_shape[1:])]
    return rng.uniform(0, 255, shape).astype(np.float32)


def rate(run: Callable[[], object], batch: int, seconds: float) -> float:
    """Inferences per second of ``run`` (one batch per call), after a warm-up."""
    for _ in range(3):
        run()
    calls, started = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - started) < seconds:
        run()
        calls += 1
    return calls * batch / elapsed


def torch_net(artefact: Artefact) -> torch.nn.Module:
    """The artefact's network as ``locowatch train`` builds it, in eval mode.

    Freshly initialised, for every artefact alike (only those since plate@4 keep their
    ``weights.pt``): a dense network's speed does not depend on its weights. Its output
    shape is checked against the artefact's, so the baseline cannot quietly time another
    network. Position networks keep their settings in meta.json since position@2.
    """
    from training.nets import PlateNet, PositionNet, SeriesNet

    classes = len(artefact.labels)
    build: dict[str, Callable[[], torch.nn.Module]] = {
        "position": lambda: PositionNet(**artefact.extra.get("architecture", POSITION_1)),
        "classifier": lambda: SeriesNet(classes),
        "sequence": lambda: PlateNet(classes + 1),
    }
    return build[artefact.task]().eval()


def torch_runner(
    artefact: Artefact, x: np.ndarray, device: str, half: bool, expected: tuple[int, ...]
) -> Callable[[], object]:
    """``expected``: the ONNX model's output shape on ``x``."""
    net = torch_net(artefact).to(device)
    tensor = torch.from_numpy(x).to(device)
    with torch.inference_mode():
        shape = tuple(net(tensor).shape)
    if shape != expected:
        raise RuntimeError(f"{artefact.ref}: eager output {shape}, the ONNX model's {expected}")
    if half:
        net, tensor = net.half(), tensor.half()

    def run() -> object:
        with torch.inference_mode():
            out = net(tensor)
            if device == "cuda":
                torch.cuda.synchronize()
            return out

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="timing per measurement")
    parser.add_argument("--threads", type=int, default=0, help="CPU threads (0: all cores)")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    rows = []
    for ref in MODELS:
        artefact = resolve(ref)
        engines = {
            "onnxruntime": open_engine(artefact, "cpu", max_batch=32, threads=args.threads),
            "opencv": open_engine(artefact, "opencv", max_batch=32),
        }
        for batch in BATCHES:
            x = example(artefact, batch, rng)
            row: dict[str, object] = {"model": ref, "batch": batch}
            expected = tuple(engines["onnxruntime"].infer(x).shape)
            eager = torch_runner(artefact, x, "cpu", False, expected)
            row["torch_cpu"] = rate(eager, batch, args.seconds)
            for name, engine in engines.items():
                row[name] = rate(partial(engine.infer, x), batch, args.seconds)
            if args.device == "cuda":
                for half in (False, True):
                    key = "torch_cuda_fp16" if half else "torch_cuda_fp32"
                    gpu = torch_runner(artefact, x, "cuda", half, expected)
                    row[key] = rate(gpu, batch, args.seconds)
            rows.append(row)
            print(_line(row), flush=True)
    RESULTS.mkdir(exist_ok=True)
    machine = f"{platform.machine()}, {torch.get_num_threads()} threads"
    if args.device == "cuda":
        machine += f", {torch.cuda.get_device_name()}"
    (RESULTS / "models.json").write_text(json.dumps({"machine": machine, "rows": rows}, indent=2))


def _line(row: dict[str, object]) -> str:
    base = float(row["torch_cpu"])  # type: ignore[arg-type]
    parts = [f"{row['model']:11} batch {row['batch']:>2}: torch eager {base:8.1f}/s"]
    for key in ("onnxruntime", "opencv", "torch_cuda_fp32", "torch_cuda_fp16"):
        if key in row:
            value = float(row[key])  # type: ignore[arg-type]
            parts.append(f"{key} {value:8.1f}/s ({value / base:4.2f}x)")
    return " | ".join(parts)


if __name__ == "__main__":
    main()
