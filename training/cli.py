"""``locowatch train position|model|plate``: train, export, measure, write the artefact."""

from __future__ import annotations

import json
import logging
import platform
import sys
import time
from pathlib import Path
from typing import Any

import click

from locowatch.errors import UsageError

log = logging.getLogger(__name__)
KINDS = ("position", "model", "plate")


DATASET = click.Path(exists=True, file_okay=False, path_type=Path)
held_out_option = click.option(
    "--held-out",
    "held_out",
    type=DATASET,
    multiple=True,
    required=True,
    help="Dataset folder of scenes the model never saw (measured for the card); repeatable.",
)


@click.command()
@click.argument("kind", type=click.Choice(KINDS))
@click.option(
    "--data",
    "data",
    type=DATASET,
    multiple=True,
    required=True,
    help="Dataset folder (docs/datasets.md); repeat for more.",
)
@held_out_option
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    help="Artefact folder [models/KIND/VERSION].",
)
@click.option("--version", "version", type=click.IntRange(min=1), default=1, show_default=True)
@click.option("--epochs", type=click.IntRange(min=1), help="Passes over the data [per kind].")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option(
    "--init",
    "init",
    type=DATASET,
    help="Artefact folder to start from (its weights.pt) instead of random weights: "
    "fine-tune a model on new data in fewer epochs.",
)
@click.option(
    "--device",
    default="auto",
    show_default=True,
    help="cpu, cuda, or auto (a GPU when PyTorch sees one). The CPU is enough.",
)
def train(
    kind: str,
    data: tuple[Path, ...],
    held_out: tuple[Path, ...],
    out: Path | None,
    version: int,
    epochs: int | None,
    seed: int,
    init: Path | None,
    device: str,
) -> None:
    """Train KIND on --data, export ONNX, measure on --held-out, write model card."""
    try:
        import torch
    except ImportError as error:
        raise UsageError("training needs the train extra: pip install -e '.[train]'") from error
    from locowatch.models.artefacts import WEIGHTS, models_root
    from training import data as datasets
    from training.export import export_onnx, write_meta
    from training.fit import fit, pick_device, seed_everything
    from training.recipes import RECIPES, series_recipe

    torch.set_num_threads(max(1, torch.get_num_threads()))
    folder = out or models_root() / kind / str(version)
    train_set = datasets.load(list(data), kind)
    test_set = datasets.load(list(held_out), kind)
    if len(train_set) == 0:
        raise UsageError(f"no {kind} samples in {', '.join(map(str, data))}")
    epochs = epochs or {"position": 10, "model": 12, "plate": 12}[kind]
    device = pick_device(device)
    seed_everything(seed)  # the initial weights come from the seed too
    try:
        if kind == "model" and init:  # the classes it was taught keep their outputs
            recipe = series_recipe(train_set, epochs, seed, device, _initial_classes(init))
        else:
            recipe = RECIPES[kind](train_set, epochs, seed, device)
    except ValueError as error:
        raise UsageError(str(error)) from error
    if init:
        grown = start_from(recipe.net, _initial_weights(init, kind))
        if grown:
            log.info("--init: %s grew; its new outputs start from random weights", ", ".join(grown))
    started = time.monotonic()
    history = fit(
        recipe.net,
        len(train_set),
        recipe.make_batch,
        recipe.loss,
        recipe.schedule,
        inputs_to_loss=recipe.inputs_to_loss,
    )
    minutes = (time.monotonic() - started) / 60
    example = torch.from_numpy(train_set.inputs[:2].astype("float32"))
    dynamic_width = kind == "position"
    with torch.no_grad():
        output_shape: list[int | None] = [None, *recipe.net(example).shape[1:]]
    if dynamic_width:
        output_shape[-1] = None
    export_onnx(recipe.net, example, folder / "model.onnx", dynamic_width)
    export_onnx(recipe.net, example, folder / "model.fp16.onnx", dynamic_width, half=True)
    torch.save(recipe.net.state_dict(), folder / WEIGHTS)  # what --init starts from
    meta = write_meta(
        folder,
        {
            "name": kind,
            "version": version,
            "task": recipe.task,
            "input_shape": list(recipe.input_shape),
            "output_shape": output_shape,
            "labels": list(recipe.labels),
            "extra": _extra(recipe),
            "trained": {
                "command": "locowatch " + " ".join(sys.argv[1:]),
                "data": [_manifest(d) for d in data],
                "held_out": [_manifest(d) for d in held_out],
                "samples": len(train_set),
                "epochs": epochs,
                "seed": seed,
                "init": str(init) if init else None,
                "minutes": round(minutes, 1),
                "loss": [round(x, 4) for x in history],
                "torch": torch.__version__,
                "machine": _machine(device),
            },
        },
    )
    metrics = _measure(folder, test_set, list(held_out))
    click.echo(json.dumps(metrics, indent=2))
    click.echo(f"wrote {folder} ({meta['size_bytes'] / 1e6:.2f} MB, {minutes:.1f} min training)")


@click.group()
def models() -> None:
    """List trained model artefacts and measure them on held-out scenes."""


@models.command("list")
def list_models() -> None:
    """Every artefact in the models folder, with its size and whether its hash checks out."""
    from locowatch.models.artefacts import Artefact, file_sha256, models_root

    for meta in sorted(models_root().glob("*/*/meta.json")):
        artefact = Artefact.load(meta.parent)
        ok = "ok" if file_sha256(artefact.onnx) == artefact.sha256 else "CHANGED"
        size = artefact.onnx.stat().st_size / 1e6
        click.echo(f"{artefact.ref:12} {artefact.task:10} {size:6.2f} MB  sha256 {ok}")


@models.command()
@click.argument("folder", type=click.Path(exists=True, file_okay=False, path_type=Path))
@held_out_option
def measure(folder: Path, held_out: tuple[Path, ...]) -> None:
    """Measure the artefact in FOLDER on --held-out; update its meta.json and card.md."""
    from locowatch.models.artefacts import Artefact
    from training import data as datasets

    artefact = Artefact.load(folder)
    kind = {"position": "position", "classifier": "model", "sequence": "plate"}[artefact.task]
    metrics = _measure(folder, datasets.load(list(held_out), kind), list(held_out))
    click.echo(json.dumps(metrics, indent=2))


def _measure(folder: Path, samples: Any, held_out: list[Path]) -> dict[str, Any]:
    """Held-out metrics of the artefact in ``folder``, on all held-out sets together and
    on each alone beside the families of it training never saw; written into meta.json
    and card.md."""
    from locowatch.models.artefacts import Artefact
    from training import data as datasets
    from training.evaluate import evaluate
    from training.families import families, unseen

    artefact = Artefact.load(folder)
    metrics = evaluate(artefact, samples)
    meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
    kind = {"position": "position", "classifier": "model", "sequence": "plate"}[artefact.task]
    # sets from before manifests recorded families were the classic twin's along depot
    trained = [d.get("families") or families({}) for d in meta["trained"]["data"]]
    per_set = []
    for path in held_out:
        described = _manifest(path)
        alone = (
            evaluate(artefact, datasets.load([path], kind, progress=False))
            if len(held_out) > 1
            else metrics
        )
        per_set.append(
            described
            | {"unseen": unseen(described["families"], trained), "metrics": alone.get("all", {})}
        )
    meta["held_out_metrics"] = metrics
    meta["trained"]["held_out"] = per_set
    (folder / "meta.json").write_text(json.dumps(meta, indent=2, ensure_ascii=False) + "\n")
    (folder / "card.md").write_text(_card(meta), encoding="utf-8")
    return metrics


def _initial_weights(folder: Path, kind: str) -> dict[str, Any]:
    """The state_dict ``--init`` starts from, refused when it is not a KIND artefact."""
    import torch

    from locowatch.models.artefacts import WEIGHTS, Artefact

    artefact = Artefact.load(folder) if (folder / "meta.json").is_file() else None
    if artefact is None or not artefact.weights.is_file():
        raise UsageError(f"{folder} has no {WEIGHTS} (artefacts trained before it keep only ONNX)")
    if artefact.name != kind:
        raise UsageError(f"{folder} holds a {artefact.name!r} model, not a {kind!r} one")
    state: dict[str, Any] = torch.load(artefact.weights, map_location="cpu", weights_only=True)
    return state


def _initial_classes(folder: Path) -> tuple[str, ...]:
    from locowatch.models.artefacts import Artefact

    return Artefact.load(folder).labels if (folder / "meta.json").is_file() else ()


def _extra(recipe: Any) -> dict[str, Any]:
    """What the edge needs beyond the tensors: the net's settings, a reader's windows."""
    extra: dict[str, Any] = {}
    if recipe.architecture:
        extra["architecture"] = recipe.architecture
    if recipe.reads:
        extra["reads"] = list(recipe.reads)
    return extra


def start_from(net: Any, state: dict[str, Any]) -> list[str]:
    """Load ``state`` into ``net``; a tensor that grew along its first axis (an output layer
    with more outputs, position@2's four scores to six) keeps its new rows as initialised.
    Returns the names of the tensors that grew; any other mismatch is refused."""
    import torch

    own = net.state_dict()
    grown = []
    for name, value in state.items():
        if name in own and own[name].shape != value.shape:
            target = own[name]
            if target.shape[1:] != value.shape[1:] or target.shape[0] < value.shape[0]:
                raise UsageError(f"--init: {name} is {tuple(value.shape)}, the net needs "
                                 f"{tuple(target.shape)}")  # fmt: skip
            with torch.no_grad():
                target[: value.shape[0]] = value
            state = {**state, name: target}
            grown.append(name)
    net.load_state_dict(state)
    return grown


def _machine(device: str) -> str:
    import torch

    if device == "cuda":
        return f"{torch.cuda.get_device_name()} (CUDA)"
    return f"{platform.machine()} CPU, {torch.get_num_threads()} threads"


def _manifest(folder: Path) -> dict[str, Any]:
    from training.families import families

    path = folder / "manifest.json"
    manifest = json.loads(path.read_text()) if path.is_file() else {}
    return {
        "folder": folder.name,
        "seed": manifest.get("seed"),
        "duration_s": manifest.get("duration_s"),
        "counts": manifest.get("counts"),
        "random_plates": manifest.get("random_plates"),
        "families": families(manifest),
        **(
            {"pasted_on": len(manifest["backgrounds"])}
            if manifest.get("source") == "pasted"
            else {}
        ),
    }


def _card(meta: dict[str, Any]) -> str:
    from training.cards import render_card

    return render_card(meta)
