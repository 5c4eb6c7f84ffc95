"""Held-out metrics of an artefact, measured through the CPU engine and the edge's decoders.

Every metric is given for all held-out samples and separately for night (infrared) and
for busy views (several people, equipment or the crane hook between camera and track).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import numpy as np

from edge.engines import open_engine
from locowatch.models import position as pos
from locowatch.models.artefacts import Artefact
from locowatch.models.attributes import (
    PLATE_WINDOWS,
    READABLE_PLATE_PX,
    decode_class,
    decode_ctc,
)
from training.data import (
    UNKNOWN_SERIES,
    Samples,
    plate_large_enough,
    plate_visible,
    plate_window,
    position_targets,
    series_target,
    strip_columns,
)

BUSY_OCCLUDERS = 4  # this many occluders or more in front of the track: a busy view
APART_GAP_M = (1.0, 3.0)


def run(artefact: Artefact, samples: Samples, batch: int = 32) -> np.ndarray:
    engine = open_engine(artefact, "cpu", max_batch=batch)
    return engine.infer(samples.inputs.astype(np.float32))


def subsets(labels: list[dict[str, Any]]) -> dict[str, np.ndarray]:
    """All samples, day, night and busy ones; for a plate set with more than one window,
    each window too (end-high, end-low, side)."""
    # a depot's own labels say nothing of the camera's mode: counted with the day
    night = np.array([bool(row.get("infrared", False)) for row in labels])
    busy = np.array([row.get("occluders", 0) >= BUSY_OCCLUDERS for row in labels])
    masks = {"all": np.ones(len(labels), bool), "day": ~night, "night": night, "busy": busy}
    windows = np.array([plate_window(row) if "text" in row else "" for row in labels])
    if len(set(windows) - {""}) > 1:
        masks |= {window: windows == window for window in PLATE_WINDOWS}
    return masks


def evaluate(artefact: Artefact, samples: Samples) -> dict[str, dict[str, float]]:
    if artefact.task == "sequence":  # a reader is measured on the windows it reads
        samples = _windows(samples, artefact.reads)
    outputs = run(artefact, samples)
    score: Callable[[np.ndarray, Samples, np.ndarray, tuple[str, ...]], dict[str, float]] = {
        "position": _position_metrics,
        "classifier": _class_metrics,
        "sequence": _sequence_metrics,
    }[artefact.task]
    results = {}
    for name, mask in subsets(samples.labels).items():
        if mask.any():
            metrics = score(outputs, samples, mask, artefact.labels)
            results[name] = metrics | {"samples": int(mask.sum())}
    return results


def _windows(samples: Samples, reads: tuple[str, ...]) -> Samples:
    keep = [i for i, row in enumerate(samples.labels) if plate_window(row) in reads]
    return Samples(samples.inputs[keep], [samples.labels[i] for i in keep])


def _class_metrics(
    outputs: np.ndarray, samples: Samples, mask: np.ndarray, classes: tuple[str, ...]
) -> dict[str, float]:
    known: list[bool] = []
    unknown: list[bool] = []
    for i in np.flatnonzero(mask):
        expected = series_target(samples.labels[i])
        hit = decode_class(outputs[i], classes).value == expected
        (unknown if expected == UNKNOWN_SERIES else known).append(hit)
    return {
        "accuracy": _mean(known),
        "unknown_answered": _mean(unknown),
        "known_samples": len(known),
        "unknown_samples": len(unknown),
    }


def _sequence_metrics(
    outputs: np.ndarray, samples: Samples, mask: np.ndarray, alphabet: tuple[str, ...]
) -> dict[str, float]:
    exact, exact_readable, exact_visible = [], [], []
    for i in np.flatnonzero(mask):
        row = samples.labels[i]
        hit = decode_ctc(outputs[i], alphabet).value == row["text"]
        exact.append(hit)
        if plate_large_enough(row, READABLE_PLATE_PX):
            exact_readable.append(hit)
            if plate_visible(samples.inputs[i], row):
                exact_visible.append(hit)
    return {
        "exact": float(np.mean(exact)),
        "exact_readable": _mean(exact_readable),
        "readable_samples": len(exact_readable),
        "exact_visible": _mean(exact_visible),
        "visible_samples": len(exact_visible),
    }


def _mean(hits: list[bool]) -> float:
    return float(np.mean(hits)) if hits else float("nan")


def _position_metrics(
    outputs: np.ndarray, samples: Samples, mask: np.ndarray, _: tuple[str, ...]
) -> dict[str, float]:
    end_errors: list[float] = []
    kind_hits: list[bool] = []
    inter_union = np.zeros(2)
    hidden_union = np.zeros(2)
    apart: list[bool] = []
    plates_found: list[bool] = []  # labelled side plates with a mark near them
    readable_found: list[bool] = []  # the same, of plates >= READABLE_PLATE_PX in the image
    marks_right: list[bool] = []  # marks near a labelled side plate
    for i in np.flatnonzero(mask):
        row = samples.labels[i]
        width = strip_columns(row)
        logits = outputs[i][:, :width]
        found = pos.decode(logits, row["start_m"], tuple(row["covered"]))
        if "plates" in row and logits.shape[0] > pos.PLATE_HEIGHT:
            marks = pos.plate_marks(logits, row["start_m"], tuple(row["covered"]))
            centres = [_plate_centre(plate) for plate in row["plates"]]
            hits = [any(_near(m, c) for m in marks) for c in centres]
            plates_found += hits
            readable_found += [
                hit
                for hit, plate in zip(hits, row["plates"], strict=True)
                if plate_large_enough(plate, READABLE_PLATE_PX)
            ]
            marks_right += [any(_near(m, c) for c in centres) for m in marks]
        inter_union += _occupancy_overlap(found, row, width)
        hidden_union += _hidden_overlap(logits, row, width)
        bodies = row["bodies"]
        for body in bodies:
            match = _best_match(found, body)
            for truth_m, truth_kind, side in (
                (body["tail_m"], body["tail"], "start"),
                (body["head_m"], body["head"], "end"),
            ):
                if match is None:
                    continue
                got = getattr(match, f"{side}_m")
                real = getattr(match, f"{side}_real")
                kind_hits.append(real == (truth_kind == "real"))
                if truth_kind == "real":
                    end_errors.append(abs(got - truth_m))
        for a, b in itertools.pairwise(bodies):
            gap = b["tail_m"] - a["head_m"]
            if APART_GAP_M[0] <= gap <= APART_GAP_M[1]:
                ma, mb = _best_match(found, a), _best_match(found, b)
                apart.append(ma is not None and mb is not None and ma is not mb)
    errors = np.array(end_errors) if end_errors else np.array([np.nan])
    return {
        "end_error_median_m": float(np.median(errors)),
        "end_error_p95_m": float(np.percentile(errors, 95)),
        "end_kind_accuracy": float(np.mean(kind_hits)) if kind_hits else float("nan"),
        "occupancy_iou": float(inter_union[0] / max(inter_union[1], 1)),
        "kept_apart": float(np.mean(apart)) if apart else float("nan"),
        "hidden_iou": float(hidden_union[0] / hidden_union[1]) if hidden_union[1] else float("nan"),
        "close_pairs": len(apart),
        "real_ends": len(end_errors),
        "plates_found": _mean(plates_found),
        "readable_plates_found": _mean(readable_found),
        "readable_side_plates": len(readable_found),
        "plate_marks_right": _mean(marks_right),
        "side_plates": len(plates_found),
    }


PLATE_NEAR_M = (0.6, 0.25)  # a mark this near a plate's centre (along, up) puts the reader
# window (2.2 x 1.1 m) over the whole plate


def _plate_centre(plate: dict[str, Any]) -> tuple[float, float]:
    return (plate["start_m"] + plate["end_m"]) / 2, (plate["bottom_m"] + plate["top_m"]) / 2


def _near(mark: pos.PlateMark, centre: tuple[float, float]) -> bool:
    return (
        abs(mark.metre - centre[0]) <= PLATE_NEAR_M[0]
        and abs(mark.height_m - centre[1]) <= PLATE_NEAR_M[1]
    )


def _best_match(found: list[pos.Interval], body: dict[str, Any]) -> pos.Interval | None:
    """The interval overlapping the body most, if it covers at least a third of it."""
    best, best_overlap = None, 0.0
    for interval in found:
        overlap = min(interval.end_m, body["head_m"]) - max(interval.start_m, body["tail_m"])
        if overlap > best_overlap:
            best, best_overlap = interval, overlap
    length = body["head_m"] - body["tail_m"]
    return best if best is not None and best_overlap >= length / 3 else None


def _hidden_overlap(logits: np.ndarray, row: dict[str, Any], width: int) -> np.ndarray:
    """Hidden columns inside the covered span: (intersection, union) with the truth."""
    target, cover = position_targets(row)
    truth = target[pos.HIDDEN, :width] > 0.5
    centres = row["start_m"] + (np.arange(width) + 0.5) * pos.STRIP_METRES_PER_PX
    got = np.zeros(width, bool)
    for a, b in pos.hidden_spans(logits, row["start_m"], tuple(row["covered"])):
        got |= (centres >= a) & (centres <= b)
    seen = cover[0, :width] > 0
    return np.array([(truth & got)[seen].sum(), (truth | got)[seen].sum()], float)


def _occupancy_overlap(found: list[pos.Interval], row: dict[str, Any], width: int) -> np.ndarray:
    """Occupied columns inside the covered span: (intersection, union) with the truth."""
    target, cover = position_targets(row)
    truth = target[pos.OCCUPIED, :width] > 0.5
    centres = row["start_m"] + (np.arange(width) + 0.5) * pos.STRIP_METRES_PER_PX
    got = np.zeros(width, bool)
    for interval in found:
        got |= (centres >= interval.start_m) & (centres <= interval.end_m)
    seen = cover[0, :width] > 0
    return np.array([(truth & got)[seen].sum(), (truth | got)[seen].sum()], float)
