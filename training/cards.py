"""The model card (card.md) of an artefact, written from its meta.json."""

from __future__ import annotations

import math
from typing import Any

from locowatch.models.attributes import PLATE_WINDOWS

# Per task: metric key -> (label, target as the issue states it, True when higher is better).
TARGETS: dict[str, dict[str, tuple[str, float, bool]]] = {
    "position": {
        "end_error_median_m": ("head/tail error median (m), visible real ends", 0.25, False),
        "end_error_p95_m": ("head/tail error p95 (m)", 1.0, False),
        "end_kind_accuracy": ("real end vs view cut", 0.98, True),
        "occupancy_iou": ("occupancy IoU", 0.95, True),
        "kept_apart": ("locomotives 1-3 m apart kept apart", 0.95, True),
        "hidden_iou": ("hidden stretches IoU (wall, roof cameras)", float("nan"), True),
        "readable_plates_found": (
            "side plates >= 16 px marked within 0.6 m, 0.25 m",
            float("nan"),
            True,
        ),
        "plates_found": ("side plates marked, all sizes", float("nan"), True),
        "plate_marks_right": ("plate marks on a side plate", float("nan"), True),
    },
    "classifier": {
        "accuracy": ("series accuracy, known series", 0.95, True),
        "unknown_answered": ("a series never trained on answered unknown", 0.9, True),
    },
    "sequence": {
        # a plate shows in the image when nothing hides any of it (the twin's label
        # plate_shows, training.data.plate_visible): the issue's "plate at least 16 px high
        # in the image", with letters a quarter of that wide (plate_large_enough: a cab
        # side seen along the track is tall and 1-2 px a letter); the next row counts
        # hidden plates too, which no reader can read
        "exact_visible": ("exact plate, >= 16 px, 4 px a letter, showing", 0.95, True),
        "exact_readable": ("exact plate, >= 16 px, 4 px a letter, all", float("nan"), True),
        "exact": ("exact plate, all windows", float("nan"), True),
    },
}
COUNTS = {  # sample counts behind a metric, where it is measured on a part of the samples
    "position": {
        "readable_side_plates": "side plates >= 16 px labelled",
        "side_plates": "side plates labelled (sets with plate labels)",
    },
    "classifier": {
        "known_samples": "samples of known series",
        "unknown_samples": "samples of series never trained on",
    },
    "sequence": {
        "visible_samples": "samples, >= 16 px, showing whole",
        "readable_samples": "samples, >= 16 px",
    },
}
INPUTS = {
    "position": "a curtain strip, float32 (N, 3, 56, W) BGR 0..255: heights 5.6..0 m, "
    "0.1 m a column (W dynamic)",
    "classifier": "a body window, float32 (N, 3, 92, 240) BGR 0..255: heights 5.2..0.6 m, "
    "0.05 m a pixel, padded right with zeros",
    "sequence": "an end-face window, float32 (N, 1, 110, 220) grey 0..255, 1 cm a pixel",
}
OUTPUTS = {
    "position": "float32 (N, 6, W) logits per column: occupied, tail end, head end, hidden "
    "behind something nearer, a side plate's centre, its height (position@1: the first "
    "three, position@2: four; decoded by locowatch.models.position.decode, hidden_spans "
    "and plate_marks)",
    "classifier": "float32 (N, classes) logits, classes in meta.json labels",
    "sequence": "float32 (N, T, 1 + alphabet) CTC logits over T steps, blank first "
    "(decoded by locowatch.models.attributes.decode_ctc)",
}


# what a training set's plates wear (the manifest's random_plates; True before styles)
PAINTED = {
    True: ", every plate a made-up text",
    "any": ", every plate a made-up text",
    "near": ", every plate a twin series with one character changed",
}


def render_card(meta: dict[str, Any]) -> str:
    task = meta["task"]
    trained = meta["trained"]
    metrics = meta.get("held_out_metrics", {})
    subsets = [s for s in ("all", "day", "night", "busy", *PLATE_WINDOWS) if s in metrics]
    lines = [
        f"# {meta['name']}@{meta['version']}",
        "",
        f"Task: {task}. ONNX opset 17, dynamic batch; `model.fp16.onnx` is the FP16 export "
        "that strongly typed TensorRT builds from.",
        "",
        f"- sha256 of model.onnx: `{meta['sha256']}`",
        *(
            [f"- sha256 of model.fp16.onnx: `{meta['sha256_fp16']}`"]
            if "sha256_fp16" in meta
            else []
        ),
        f"- size: {meta['size_bytes'] / 1e6:.2f} MB",
        f"- input: {INPUTS[task]}",
        f"- output: {OUTPUTS[task]}",
    ]
    if meta.get("output_shape"):
        dims = meta["output_shape"]  # dynamic: the batch first, a strip's width last
        names = ["N", *("W" if d is None else str(d) for d in dims[1:])]
        shape = ", ".join(names[: len(dims)])
        lines.append(f"- output shape: ({shape})")
    if meta.get("labels"):
        lines.append(f"- labels: {' '.join(meta['labels'])}")
    lines += [
        "",
        "## Training data",
        "",
        "Twin scenes (`locowatch sim dataset`) and plates pasted on their bare windows "
        "(`locowatch sim paste-plates`), docs/datasets.md:",
        "",
    ]
    for d in trained["data"]:
        painted = PAINTED.get(d.get("random_plates"), "")
        drawn = _families(d)
        if "pasted_on" in d:
            source = f"windows pasted on bare ones of {d['pasted_on']} sets, seed {d['seed']}"
        else:
            source = f"seed {d['seed']}, {d['duration_s']} s scenario"
        lines.append(f"- {source}{painted}{drawn}: {d['counts']}")
    start = f", from the weights of `{trained['init']}`" if trained.get("init") else ""
    lines += [
        "",
        f"{trained['samples']} samples, {trained['epochs']} epochs{start}, seed {trained['seed']}, "
        f"{trained['minutes']} min on {trained['machine']} (torch {trained['torch']}).",
        f"Loss per epoch: {', '.join(str(x) for x in trained['loss'])}.",
        "",
        "## Held-out metrics",
        "",
        "Scenes the model never saw (other seeds: another layout, day, fleet and faults), "
        "measured through the CPU engine and the edge's own decoder. `night`: infrared "
        "frames; `busy`: four or more people, machines or the crane hook between camera "
        "and track; `end-high`, `end-low`, `side`: a reader's windows (docs/datasets.md).",
        "",
    ]
    for d in trained["held_out"]:
        lines.append(
            f"- seed {d['seed']}, {d['duration_s']} s scenario{_families(d)}: {d['counts']}"
        )
    lines += _by_family(task, trained["held_out"])
    lines += ["", "All held-out sets together:"]
    lines += ["", "| metric | target | " + " | ".join(subsets) + " |"]
    lines.append("|---|---|" + "---|" * len(subsets))
    for key, (label, target, _) in TARGETS[task].items():
        values = " | ".join(_fmt(metrics[s].get(key)) for s in subsets)
        lines.append(f"| {label} | {_fmt(target)} | {values} |")
    lines.append("| samples | | " + " | ".join(str(metrics[s]["samples"]) for s in subsets) + " |")
    for key, label in COUNTS.get(task, {}).items():
        counts = " | ".join(_fmt(metrics[s].get(key)) for s in subsets)
        lines.append(f"| {label} | | {counts} |")
    lines += ["", "Reproduce:", "", "```", trained["command"], "```", ""]
    return "\n".join(lines)


def _families(d: dict[str, Any]) -> str:
    """`` (across; geometry hood, carbody; ...)`` for a set's families, if it recorded them."""
    drawn = d.get("families")
    if not drawn:
        return ""
    camera = drawn["camera"][0]
    rest = "; ".join(f"{k} {', '.join(v)}" for k, v in drawn.items() if k != "camera")
    return f" ({camera}; {rest})"


def _by_family(task: str, held_out: list[dict[str, Any]]) -> list[str]:
    """One row per held-out set: the families no training set held, and its numbers."""
    rows = [d for d in held_out if "metrics" in d]
    if not rows:
        return []
    keys = list(TARGETS[task])
    lines = [
        "",
        "In family and held-out families: each held-out set alone, with the families of "
        "it that no training set held (none: in family).",
        "",
        "| set | families never trained on | "
        + " | ".join(TARGETS[task][k][0] for k in keys)
        + " | samples |",
        "|---|---|" + "---|" * (len(keys) + 1),
    ]
    for d in rows:
        values = " | ".join(_fmt(d["metrics"].get(k)) for k in keys)
        held = ", ".join(d.get("unseen", [])) or "none (in family)"
        lines.append(
            f"| {d['folder']} (seed {d['seed']}) | {held} | {values} | "
            f"{d['metrics'].get('samples', '-')} |"
        )
    return lines


def _fmt(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)
