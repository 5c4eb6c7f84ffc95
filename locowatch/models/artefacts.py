"""Model artefacts on disk: ``models/<name>/<version>/`` with ``model.onnx``, ``meta.json``
and ``card.md``.

A flow names a model as ``name@version`` (``position@1``); ``resolve`` turns that into an
``Artefact``. ``meta.json`` says what the network is for and how to read its outputs, so
an estimator needs no code per model: a new attribute is a new folder.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from locowatch.errors import UsageError

Task = Literal["position", "classifier", "sequence"]
MODELS_ENV = "LOCOWATCH_MODELS"
REPO_MODELS = Path(__file__).resolve().parents[2] / "models"
WEIGHTS = "weights.pt"  # the trained network's state_dict; ONNX has its batch norms folded


def models_root() -> Path:
    """The models folder: ``$LOCOWATCH_MODELS``, else the one beside the package."""
    return Path(os.environ.get(MODELS_ENV, REPO_MODELS))


READS_BEFORE = ("end-high",)  # readers up to plate@4 list no windows: end faces, high


@dataclass(frozen=True)
class Artefact:
    """One trained model version and what its tensors mean."""

    name: str
    version: int
    task: Task
    folder: Path
    input_shape: tuple[int | None, ...]  # None: dynamic (batch, strip width)
    labels: tuple[str, ...] = ()  # class names, or the CTC alphabet (blank is index 0)
    sha256: str = ""
    sha256_fp16: str = ""  # of model.fp16.onnx, what TensorRT builds from
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}"

    @property
    def onnx(self) -> Path:
        return self.folder / "model.onnx"

    @property
    def onnx_fp16(self) -> Path:
        """The FP16 export: what strongly typed TensorRT (10.x with the flag, 11) builds from."""
        return self.folder / "model.fp16.onnx"

    @property
    def reads(self) -> tuple[str, ...]:
        """Plate windows a sequence reader was trained on (all windows for other tasks:
        an empty tuple)."""
        if self.task != "sequence":
            return ()
        return tuple(self.extra.get("reads", READS_BEFORE))

    @property
    def weights(self) -> Path:
        """The PyTorch weights ``locowatch train --init`` starts from (since plate@4)."""
        return self.folder / WEIGHTS

    @classmethod
    def load(cls, folder: Path) -> Artefact:
        meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
        return cls(
            name=meta["name"],
            version=int(meta["version"]),
            task=meta["task"],
            folder=folder,
            input_shape=tuple(meta["input_shape"]),
            labels=tuple(meta.get("labels", ())),
            sha256=meta.get("sha256", ""),
            sha256_fp16=meta.get("sha256_fp16", ""),
            extra=meta.get("extra", {}),
        )

    def verify(self) -> None:
        """Refuse an ONNX file that is not the one the card describes: model.onnx (every
        engine) and model.fp16.onnx (what TensorRT builds from) alike."""
        exports = [(self.onnx, self.sha256)]
        if self.onnx_fp16.is_file():
            if not self.sha256_fp16:
                raise UsageError(
                    f"{self.onnx_fp16}: meta.json has no sha256_fp16 for it; an export "
                    "nobody vouched for is not built into an engine"
                )
            exports.append((self.onnx_fp16, self.sha256_fp16))
        for path, expected in exports:
            digest = file_sha256(path)
            if expected and digest != expected:
                raise UsageError(
                    f"{path}: sha256 {digest[:12]}... differs from meta.json's "
                    f"{expected[:12]}...; the artefact was changed after training"
                )


def parse_ref(ref: str) -> tuple[str, int]:
    name, _, version = ref.partition("@")
    if not name or not version.isdigit():
        raise UsageError(f"model reference {ref!r}: expected NAME@VERSION, e.g. position@1")
    return name, int(version)


def resolve(ref: str, root: Path | None = None) -> Artefact:
    """The artefact a flow's ``model: name@version`` points at."""
    name, version = parse_ref(ref)
    folder = (root or models_root()) / name / str(version)
    if not (folder / "meta.json").is_file():
        raise UsageError(f"model {ref}: no {folder / 'meta.json'} (train it or fix the flow)")
    return Artefact.load(folder)


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
