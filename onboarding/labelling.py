"""Windows of a recording into Label Studio, with the current models' answers as
pre-labels, and the corrected labels back as a training set (docs/datasets.md).

Why Label Studio: it installs from PyPI and runs on the gateway or a laptop with SQLite
(CVAT needs Docker and a server stack), one tool does all three kinds of label here
(boxes with per-box choices for strips, a choice for body windows, a box and a text for
plate windows), and it imports pre-labels as *predictions* and exports annotations as
plain JSON. Its formats (https://labelstud.io/guide/tasks, /guide/export) are what this
module writes and reads:

- ``export_windows``: one project folder per kind, ``position/``, ``model/``, ``plate/``,
  each with ``images/``, ``tasks.json`` (tasks with ``data`` and ``predictions``) and
  ``label_config.xml`` (the labelling interface). Images are served by Label Studio's
  local-files storage: ``data.image`` is ``/data/local-files/?d=<path under the document
  root>``.
- ``import_labels``: Label Studio's JSON export of those projects (the last annotation of
  each task that was not cancelled) into a training set, with every number training
  needs (metres of each box, how tall a plate is in the camera's own image).

The windows are cut by the aggregator's own code from the recorded frames, so a network
trained on them sees exactly what it sees at run time.
"""

from __future__ import annotations

import json
import logging
import shutil
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from html import escape
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from tqdm import tqdm

from edge import images
from edge.aggregator.cutting import FrameCutter, snap
from edge.aggregator.service import Aggregator
from edge.capture.frames import CapturedFrame
from edge.estimators.service import Estimator, open_estimator
from edge.plan import estimator_plans
from edge.recordings import load_manifest, recorded_frames
from locowatch.errors import UsageError
from locowatch.facility.config import ChangeGating, FacilityConfig
from locowatch.models import position as pos
from locowatch.models.attributes import UNKNOWN_SERIES, Reading
from locowatch.v1 import estimation_pb2, frames_pb2

log = logging.getLogger(__name__)

KINDS = ("position", "model", "plate")
NOT_A_LOCOMOTIVE = "not a locomotive"  # a body window the position network got wrong
LOCAL_FILES = "/data/local-files/?d="
REAL, CUT = "real", "cut"
STRIP, BODY, PLATE = (
    frames_pb2.PACKET_KIND_TRACK_STRIP,
    frames_pb2.PACKET_KIND_BODY_CROP,
    frames_pb2.PACKET_KIND_PLATE_CROP,
)


# -- export ------------------------------------------------------------------------------


@dataclass
class ExportSummary:
    frames: int = 0
    tasks: Counter[str] = field(default_factory=Counter)  # per kind


def export_windows(
    config: FacilityConfig,
    recording: Path,
    out: Path,
    every_s: float,
    flow: str | None = None,
    document_root: Path | None = None,
    progress: bool = True,
) -> ExportSummary:
    """Cut the windows of a frame every ``every_s`` per camera of ``recording`` into Label
    Studio projects under ``out``, pre-labelled by ``flow``'s models (the first flow's by
    default). ``document_root``: the folder Label Studio serves local files from (``out``'s
    parent by default)."""
    manifest = load_manifest(recording)
    root = (document_root or out.parent).resolve()
    out = out.resolve()
    if not out.is_relative_to(root):
        raise UsageError(f"{out} is not under the document root {root}")
    labeller = _Prelabeller(config, flow or config.flows[0].name)
    cameras = {c.id for c in config.cameras} & set(manifest.cameras)
    if not cameras:
        raise UsageError("the recording has none of the facility file's cameras")
    writer = _TaskWriter(out, root, labeller)
    summary = ExportSummary()
    frames = recorded_frames(recording, manifest, dict.fromkeys(cameras, 1.0 / every_s))
    try:
        for frame in tqdm(frames, desc="cutting windows", unit=" frame", disable=not progress):
            summary.frames += 1
            for window in labeller.windows(frame):
                summary.tasks[writer.add(frame, window)] += 1
    finally:
        frames.close()
    writer.close()
    return summary


@dataclass(frozen=True)
class Window:
    """A window of a frame as a network reads it, and what the network said of it."""

    packet: frames_pb2.Packet  # a strip, a body window or a plate window
    model: str  # the network that read it ("" when none reads this window)
    # a strip: its position estimation; a body or plate window: the reading (None: read
    # nothing) and the strip's position estimation it was cut by (a side plate's height)
    position: estimation_pb2.PositionEstimation | None = None
    reading: Reading | None = None


class _Prelabeller:
    """The aggregator and one flow's estimators: every window of a frame, with the answer
    of the network that reads it."""

    def __init__(self, config: FacilityConfig, flow: str) -> None:
        plans = [p for p in estimator_plans(config) if flow in p.flows]
        if not plans:
            raise UsageError(f"no flow {flow!r} in the facility file")
        # no gating: every strip is read and every body cut, however still the depot is
        self.aggregator = Aggregator(config, ChangeGating(enabled=False))
        self.estimators = {p.task: open_estimator(config, p) for p in plans}
        self.subscriber = self.aggregator.fanout.subscribe(
            frames_pb2.SubscribeRequest(subscriber="label-export", max_queue=100_000)
        )
        self.flow = flow

    @property
    def position(self) -> Estimator:
        return self.estimators["position"]

    def reader_of(self, packet: frames_pb2.Packet) -> Estimator | None:
        for name, estimator in self.estimators.items():
            if name != "position" and estimator.task.kind == packet.kind:
                reads = estimator.artefact.reads
                if packet.kind != PLATE or not reads or packet.window in reads:
                    return estimator
        return None

    def windows(self, frame: CapturedFrame) -> Iterator[Window]:
        self.aggregator.take_frame(frame.to_proto(None), frame.image)
        for strip in self.subscriber.take(0.0):
            estimations = self.position.run([strip])
            position = estimations[0] if estimations else None
            if not isinstance(position, estimation_pb2.PositionEstimation):
                continue  # a strip of a view nothing covers: no window, no label
            yield Window(strip, self.position.artefact.ref, position)
            self.aggregator.locate([position])
            for crop in self.subscriber.take(0.0):
                reader = self.reader_of(crop)
                if reader is None:  # a plate window no reader of this flow reads
                    yield Window(crop, "", position)
                    continue
                answers = reader.run([crop])
                answer = answers[0] if answers else None
                reading = _reading(answer) if answer is not None else None
                yield Window(crop, reader.artefact.ref, position, reading)


class _TaskWriter:
    def __init__(self, out: Path, root: Path, labeller: _Prelabeller) -> None:
        self.out, self.root, self.labeller = out, root, labeller
        self.tasks: dict[str, list[dict[str, Any]]] = {kind: [] for kind in KINDS}
        for kind in KINDS:
            (out / kind / "images").mkdir(parents=True, exist_ok=True)

    def add(self, frame: CapturedFrame, window: Window) -> str:
        packet = window.packet
        kind = {STRIP: "position", BODY: "model", PLATE: "plate"}[packet.kind]
        image = images.decode(packet.image)
        name = _image_name(frame, packet, len(self.tasks[kind]))
        path = self.out / kind / "images" / name
        cv2.imwrite(str(path), image)
        data: dict[str, Any] = {
            "image": LOCAL_FILES + str(path.relative_to(self.root)),
            "file": f"images/{name}",  # under the kind's folder: what the import reads
            "camera": packet.camera_id,
            "track": packet.span.track_id,
            "capture_time": frame.capture_time,
            "start_m": round(packet.span.start_m, 3),
            "end_m": round(packet.span.end_m, 3),
            "width_px": image.shape[1],
            "height_px": image.shape[0],
        }
        if kind == "position":
            assert window.position is not None
            data["covered"] = [packet.covered.start_m, packet.covered.end_m]
            data["metres_per_px"] = pos.STRIP_METRES_PER_PX
            result = _position_result(window.position, data)
        else:
            if kind == "plate" and window.position is not None:
                data |= _crop_place(packet, window.position)
            result = _reading_result(kind, window.reading)
        task: dict[str, Any] = {"data": data}
        if result:
            score = float(np.mean([r.get("score", 1.0) for r in result]))
            task["predictions"] = [
                {"model_version": window.model, "score": score, "result": result}
            ]
        self.tasks[kind].append(task)
        return kind

    def close(self) -> None:
        classes = self.labeller.estimators.get("model")
        series = list(classes.artefact.labels) if classes is not None else [UNKNOWN_SERIES]
        for kind, tasks in self.tasks.items():
            folder = self.out / kind
            text = json.dumps(tasks, indent=1, ensure_ascii=False)
            (folder / "tasks.json").write_text(text + "\n", encoding="utf-8")
            (folder / "label_config.xml").write_text(label_config(kind, series), encoding="utf-8")


def _image_name(frame: CapturedFrame, packet: frames_pb2.Packet, index: int) -> str:
    what = {STRIP: "strip", BODY: "body", PLATE: packet.window or "plate"}[packet.kind]
    return f"{packet.camera_id}_{frame.capture_time:.2f}_{packet.span.track_id}_{what}_{index}.png"


def _percent_x(metre: float, data: dict[str, Any]) -> float:
    span = data["end_m"] - data["start_m"]
    return float(np.clip((metre - data["start_m"]) / span * 100.0, 0.0, 100.0))


def _region(
    rid: str, from_name: str, data: dict[str, Any], value: dict[str, Any]
) -> dict[str, Any]:
    return {
        "id": rid, "from_name": from_name, "to_name": "image", "type": _TYPES[from_name],
        "original_width": data["width_px"], "original_height": data["height_px"],
        "image_rotation": 0, "value": value,
    }  # fmt: skip


_TYPES = {"span": "rectanglelabels", "tail": "choices", "head": "choices",
          "series": "choices", "box": "rectanglelabels", "text": "textarea"}  # fmt: skip


def _position_result(
    position: estimation_pb2.PositionEstimation, data: dict[str, Any]
) -> list[dict[str, Any]]:
    """Bodies (with the kind of each end) and hidden stretches as full-height boxes."""
    result = []
    spans: list[tuple[str, float, float, estimation_pb2.OccupiedInterval | None]] = [
        ("body", i.start_m, i.end_m, i) for i in position.intervals
    ]
    spans += [("hidden", b.start_m, b.end_m, None) for b in position.blind]
    for number, (label, start, end, interval) in enumerate(spans):
        rid = f"r{number}"
        x0, x1 = _percent_x(start, data), _percent_x(end, data)
        box = {"x": x0, "y": 0.0, "width": x1 - x0, "height": 100.0, "rotation": 0,
               "rectanglelabels": [label]}  # fmt: skip
        result.append(_region(rid, "span", data, box) | {"score": _score(interval)})
        if interval is not None:
            real = estimation_pb2.END_KIND_REAL
            for name, kind in (("tail", interval.start_kind), ("head", interval.end_kind)):
                choice = {"choices": [REAL if kind == real else CUT]}
                result.append(_region(rid, name, data, choice))
    return result


def _score(interval: estimation_pb2.OccupiedInterval | None) -> float:
    return float(interval.confidence) if interval is not None else 1.0


def _reading(estimation: object) -> Reading | None:
    """An attribute estimation as the reading it reports."""
    if not isinstance(estimation, estimation_pb2.AttributeEstimation):
        return None
    alternatives = tuple((a.value, a.confidence) for a in estimation.alternatives)
    return Reading(estimation.value, estimation.confidence, alternatives)


def _reading_result(kind: str, reading: Reading | None) -> list[dict[str, Any]]:
    if reading is None:
        return []
    data = {"width_px": 0, "height_px": 0}
    if kind == "model":
        value = {"choices": [reading.value]}
        return [_region("series", "series", data, value) | {"score": reading.confidence}]
    return [
        _region("text", "text", data, {"text": [reading.value]}) | {"score": reading.confidence}
    ]


def _crop_place(
    packet: frames_pb2.Packet, position: estimation_pb2.PositionEstimation
) -> dict[str, Any]:
    """Where a plate window was cut: what recomputes its maps on import."""
    if packet.window == "side":
        centre = packet.anchor_m
        mark = min(position.plates, key=lambda m: abs(m.metre - centre), default=None)
        height = snap(mark.height_m) if mark is not None else 2.5  # as the crop was cut
        return {"place": "side", "window": "side", "centre_m": centre, "height_m": height}
    band = packet.window.removeprefix("end-")
    end = packet.span.start_m
    direction = 1 if packet.anchor_m < end else -1  # the anchor lies inside the body
    return {"place": "end", "window": packet.window, "band": band, "end_m": end,
            "direction": direction}  # fmt: skip


def label_config(kind: str, series: Sequence[str] = ()) -> str:
    """Label Studio's labelling interface for ``kind`` (its XML config)."""
    if kind == "position":
        return """<View>
  <Header value="$camera, track $track, $start_m-$end_m m: a box over each locomotive (full height), and over each stretch something nearer hides"/>
  <Image name="image" value="$image" zoom="true" zoomControl="true"/>
  <RectangleLabels name="span" toName="image">
    <Label value="body" background="#2e86de"/>
    <Label value="hidden" background="#7f8c8d"/>
  </RectangleLabels>
  <View visibleWhen="region-selected">
    <Header value="Tail (left) end: does the locomotive end there, or run on out of view?"/>
    <Choices name="tail" toName="image" perRegion="true" choice="single" showInline="true">
      <Choice value="real"/><Choice value="cut"/>
    </Choices>
    <Header value="Head (right) end"/>
    <Choices name="head" toName="image" perRegion="true" choice="single" showInline="true">
      <Choice value="real"/><Choice value="cut"/>
    </Choices>
  </View>
</View>
"""  # noqa: E501
    if kind == "model":
        values = [*series, NOT_A_LOCOMOTIVE]
        choices = "".join(f'    <Choice value="{escape(s, quote=True)}"/>\n' for s in values)
        return f"""<View>
  <Header value="$camera, track $track, $start_m-$end_m m: which series? (unknown: one the networks are not to learn)"/>
  <Image name="image" value="$image" zoom="true"/>
  <Choices name="series" toName="image" choice="single" showInline="true">
{choices}  </Choices>
</View>
"""  # noqa: E501
    return """<View>
  <Header value="$camera, track $track, $window: a box around the number plate, and the number as painted (leave both empty where there is none)"/>
  <Image name="image" value="$image" zoom="true"/>
  <RectangleLabels name="box" toName="image"><Label value="plate"/></RectangleLabels>
  <TextArea name="text" toName="image" maxSubmissions="1" editable="true"/>
</View>
"""  # noqa: E501


# -- import ------------------------------------------------------------------------------


@dataclass
class ImportSummary:
    rows: Counter[str] = field(default_factory=Counter)  # per kind
    unlabelled: Counter[str] = field(default_factory=Counter)  # tasks nobody annotated
    skipped: Counter[str] = field(default_factory=Counter)  # annotated, not a sample


def import_labels(
    config: FacilityConfig, exports: dict[str, Path], folder: Path, out: Path
) -> ImportSummary:
    """Label Studio's JSON exports (per kind) of projects ``export_windows`` wrote into
    ``folder``, as a training set in ``out``."""
    cutter = FrameCutter(config)
    summary = ImportSummary()
    for kind, export in exports.items():
        if kind not in KINDS:
            raise UsageError(f"no kind {kind!r}; kinds are {', '.join(KINDS)}")
        tasks = _read_export(export)
        (out / kind / "images").mkdir(parents=True, exist_ok=True)
        rows = []
        for task in tasks:
            result = _last_annotation(task)
            if result is None:
                summary.unlabelled[kind] += 1
                continue
            data = task["data"]
            row = _row(kind, data, result, cutter)
            if row is None:
                summary.skipped[kind] += 1
                continue
            shutil.copyfile(folder / kind / data["file"], out / kind / data["file"])
            rows.append(row)
        lines = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
        (out / kind / "labels.jsonl").write_text(lines, encoding="utf-8")
        summary.rows[kind] = len(rows)
    manifest = {"source": "label-studio", "windows": str(folder), "counts": dict(summary.rows)}
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return summary


def _read_export(path: Path) -> list[dict[str, Any]]:
    try:
        tasks = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise UsageError(f"{path}: not a Label Studio JSON export: {error}") from None
    if not isinstance(tasks, list):
        raise UsageError(f"{path}: a Label Studio JSON export is a list of tasks")
    return tasks


def _last_annotation(task: dict[str, Any]) -> list[dict[str, Any]] | None:
    done = [a for a in task.get("annotations", []) if not a.get("was_cancelled")]
    if not done:
        return None
    last = max(done, key=lambda a: (a.get("updated_at") or "", a.get("id") or 0))
    return list(last.get("result", []))


def _row(
    kind: str, data: dict[str, Any], result: list[dict[str, Any]], cutter: FrameCutter
) -> dict[str, Any] | None:
    common = {
        "image": data["file"], "camera": data["camera"], "track": data["track"],
        "view": 0, "t": data["capture_time"], "start_m": data["start_m"],
        "end_m": data["end_m"], "source": "label-studio",
    }  # fmt: skip
    if kind == "position":
        return common | _position_row(data, result)
    if kind == "model":
        series = [v for r in result if r["from_name"] == "series" for v in r["value"]["choices"]]
        if not series or series[0] == NOT_A_LOCOMOTIVE:
            return None
        return common | {"loco": "", "series": series[0]}
    return common | _plate_row(data, result, cutter)


def _position_row(data: dict[str, Any], result: list[dict[str, Any]]) -> dict[str, Any]:
    span = data["end_m"] - data["start_m"]

    def metres(value: dict[str, Any]) -> tuple[float, float]:
        start = data["start_m"] + value["x"] / 100.0 * span
        return round(start, 3), round(start + value["width"] / 100.0 * span, 3)

    ends = {(r["id"], r["from_name"]): r["value"]["choices"][0]
            for r in result if r["type"] == "choices"}  # fmt: skip
    bodies, hidden = [], []
    for region in (r for r in result if r["type"] == "rectanglelabels"):
        tail, head = metres(region["value"])
        if region["value"]["rectanglelabels"][0] == "hidden":
            hidden.append([tail, head])
            continue
        bodies.append({
            "loco": "", "tail_m": tail, "head_m": head,
            # an end nobody said was real is cut: a real end teaches the network an end
            "tail": ends.get((region["id"], "tail"), CUT),
            "head": ends.get((region["id"], "head"), CUT),
        })  # fmt: skip
    return {
        "metres_per_px": data["metres_per_px"], "covered": data["covered"],
        "hidden": sorted(hidden), "bodies": sorted(bodies, key=lambda b: b["tail_m"]),
    }  # fmt: skip


def _plate_row(
    data: dict[str, Any], result: list[dict[str, Any]], cutter: FrameCutter
) -> dict[str, Any]:
    texts = [t for r in result if r["type"] == "textarea" for t in r["value"].get("text", [])]
    text = texts[0].strip().upper() if texts else ""
    place = {k: data[k] for k in ("place", "window", "band", "end_m", "direction",
                                  "centre_m", "height_m") if k in data}  # fmt: skip
    boxes = [r["value"] for r in result if r["type"] == "rectanglelabels"]
    if not text or not boxes:  # nothing painted there, or nobody drew where: text alone
        return place | {"text": text, "plate_box": None}
    value = boxes[0]
    width, height = data["width_px"], data["height_px"]
    box = [round(value["x"] / 100 * width), round(value["y"] / 100 * height),
           round((value["x"] + value["width"]) / 100 * width),
           round((value["y"] + value["height"]) / 100 * height)]  # fmt: skip
    size = _plate_size(data, box, text, cutter)
    return place | {"text": text, "plate_box": {"box": box, "inside": True}, **size}


def _plate_size(
    data: dict[str, Any], box: list[int], text: str, cutter: FrameCutter
) -> dict[str, float]:
    """How tall the boxed plate is in the camera's own image, and how wide a letter: the
    window's remap tables send its corners back to camera pixels."""
    view = cutter.view(data["camera"], data["track"])
    if view is None:
        return {}
    if data["place"] == "side":
        map_x, map_y = view.side_maps(data["centre_m"], data["height_m"])
    else:
        map_x, map_y = view.plate_maps(data["end_m"], data["direction"], data["band"])
    h, w = map_x.shape
    x0, y0, x1, y1 = (min(max(v, 0), lim - 1) for v, lim in zip(box, (w, h, w, h), strict=True))
    corner = {(x, y): np.array([map_x[y, x], map_y[y, x]]) for x in (x0, x1) for y in (y0, y1)}
    if any(p[0] < 0 for p in corner.values()):  # a corner outside the camera's view
        return {}
    left = float(np.linalg.norm(corner[(x0, y0)] - corner[(x0, y1)]))
    right = float(np.linalg.norm(corner[(x1, y0)] - corner[(x1, y1)]))
    top = float(np.linalg.norm(corner[(x0, y0)] - corner[(x1, y0)]))
    bottom = float(np.linalg.norm(corner[(x0, y1)] - corner[(x1, y1)]))
    letters = max(len(text), 1)
    return {"plate_px": round(min(left, right), 2),
            "plate_char_px": round(min(top, bottom) / letters, 2)}  # fmt: skip
