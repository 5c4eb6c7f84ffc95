"""A depot's walk from recorded cameras to a new model in the dev flow, through a real
Label Studio server: cameras recorded over RTSP (`locowatch record`), their windows
exported with pre-labels, pushed, labelled (a labeller accepts most pre-labels and
corrects some), pulled, imported as a training set, a series network fine-tuned on it for
one epoch, and the recording replayed with the new version in the dev flow beside prod."""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path
from typing import Any

import yaml

from locowatch.models.artefacts import models_root
from tests.conftest import LocowatchCli
from tests.onboarding.conftest import CAMERAS, LabelStudioServer, Recorded

HELD_OUT_CAMERA = "cam-04"  # kept apart: whole cameras, never neighbouring frames


def rows(folder: Path, kind: str) -> list[dict[str, Any]]:
    text = (folder / kind / "labels.jsonl").read_text(encoding="utf-8")
    return [json.loads(line) for line in text.splitlines()]


def split_by_camera(folder: Path, out: Path, keep: bool) -> Path:
    """The rows of ``folder``'s sets whose camera is (keep=False: is not) held out."""
    for kind in ("model",):
        (out / kind / "images").mkdir(parents=True)
        chosen = [r for r in rows(folder, kind) if (r["camera"] == HELD_OUT_CAMERA) != keep]
        for row in chosen:
            shutil.copyfile(folder / kind / row["image"], out / kind / row["image"])
        lines = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in chosen)
        (out / kind / "labels.jsonl").write_text(lines, encoding="utf-8")
    return out


def label_like_a_person(server: LabelStudioServer, title: str) -> dict[str, Any]:
    """Accept every pre-label, but call the first body window's series ЧМЭ3 and draw a
    plate box with its number on the first plate window."""
    listing: Any = server.call("GET", "/api/projects")
    projects = {p["title"]: p["id"] for p in listing["results"]}
    corrected: dict[str, Any] = {}
    for kind in ("position", "model", "plate"):
        project = projects[f"{title} {kind}"]
        listing = server.call("GET", f"/api/tasks?project={project}&page_size=500&fields=all")
        tasks = listing["tasks"] if isinstance(listing, dict) else listing
        for task in sorted(tasks, key=lambda t: t["id"]):
            predictions = task.get("predictions") or []
            result = list(predictions[0]["result"]) if predictions else []
            if kind == "model" and "series" not in corrected:
                result = [{**result[0], "value": {"choices": ["ЧМЭ3"]}}]
                corrected["series"] = task["data"]["file"]
            if kind == "plate" and "plate" not in corrected:
                size = {"original_width": 220, "original_height": 110, "image_rotation": 0}
                result = [
                    {"id": "p1", "from_name": "box", "to_name": "image", "type": "rectanglelabels",
                     "value": {"x": 20.0, "y": 30.0, "width": 55.0, "height": 25.0, "rotation": 0,
                               "rectanglelabels": ["plate"]}, **size},
                    {"id": "t1", "from_name": "text", "to_name": "image", "type": "textarea",
                     "value": {"text": ["ТЭМ18-8158"]}, **size},
                ]  # fmt: skip
                corrected["plate"] = task["data"]["file"]
            if result:
                server.call("POST", f"/api/tasks/{task['id']}/annotations", {"result": result})
    return corrected


def test_recorded_cameras_labelled_in_label_studio_become_a_dev_model(
    recorded: Recorded, label_studio: LabelStudioServer, locowatch_cli: LocowatchCli,
    tmp_path: Path,
) -> None:  # fmt: skip
    config, recording = recorded.config, recorded.folder
    windows = label_studio.root / "walk"
    exported = locowatch_cli(
        "label", "export", "--config", str(config), "--recording", str(recording),
        "--out", str(windows), "--every", "2", "--document-root", str(label_studio.root),
        "--no-progress",
    )  # fmt: skip
    assert exported.returncode == 0, exported.stderr[-3000:]
    tasks = {
        kind: json.loads((windows / kind / "tasks.json").read_text())
        for kind in ("position", "model", "plate")
    }
    assert {t["data"]["camera"] for t in tasks["position"]} == set(CAMERAS)  # every strip
    assert tasks["model"] and tasks["plate"]

    env = {
        **os.environ,
        "LABEL_STUDIO_TOKEN": label_studio.token,
        "LABEL_STUDIO_URL": label_studio.url,
    }
    pushed = locowatch_cli("label", "push", "--windows", str(windows), "--title", "walk", env=env)
    assert pushed.returncode == 0, pushed.stderr[-3000:]
    # Label Studio serves the windows' images from where export wrote them
    image = tasks["position"][0]["data"]["image"]
    served = label_studio.call_raw("GET", image)
    assert served.headers["content-type"] == "image/png" and served.content.startswith(b"\x89PNG")

    corrected = label_like_a_person(label_studio, "walk")
    labels = tmp_path / "labels"
    pulled = locowatch_cli("label", "pull", "--title", "walk", "--out", str(labels), env=env)
    assert pulled.returncode == 0, pulled.stderr[-3000:]
    labelled = tmp_path / "set"
    imported = locowatch_cli(
        "label", "import", "--config", str(config), "--windows", str(windows),
        *pulled.stdout.split(), "--out", str(labelled),
    )  # fmt: skip
    assert imported.returncode == 0, imported.stderr[-3000:]

    # Boxes come back in metres, as the network said them (to a centimetre), ends included
    strips = rows(labelled, "position")
    assert len(strips) == len(tasks["position"])
    task = next(t for t in tasks["position"] if t.get("predictions"))
    predicted = task["predictions"][0]["result"]
    body = next(r for r in predicted if r["value"].get("rectanglelabels") == ["body"])
    data = task["data"]
    tail = data["start_m"] + body["value"]["x"] / 100 * (data["end_m"] - data["start_m"])
    first = next(r for r in strips if r["image"] == data["file"])
    assert min(abs(b["tail_m"] - tail) for b in first["bodies"]) < 0.01
    assert {b["tail"] for r in strips for b in r["bodies"]} <= {"real", "cut"}
    series = {r["image"]: r["series"] for r in rows(labelled, "model")}
    assert series[corrected["series"]] == "ЧМЭ3"
    plate = next(r for r in rows(labelled, "plate") if r["image"] == corrected["plate"])
    assert plate["text"] == "ТЭМ18-8158" and plate["plate_box"]["box"] == [44, 33, 165, 61]
    assert plate["plate_px"] > 0 and plate["plate_char_px"] > 0  # measured in the camera image

    # Fine-tune the series network one epoch on two cameras' labels, measured on the third
    models = tmp_path / "models"
    shutil.copytree(models_root(), models, symlinks=True)
    trained = locowatch_cli(
        "train", "model", "--data", str(split_by_camera(labelled, tmp_path / "train", keep=True)),
        "--held-out", str(split_by_camera(labelled, tmp_path / "held", keep=False)),
        "--init", str(models / "model" / "2"), "--epochs", "1", "--version", "90",
        "--out", str(models / "model" / "90"), "--device", "cpu",
    )  # fmt: skip
    assert trained.returncode == 0, trained.stderr[-3000:]

    # ...and replay the recording with it in the dev flow, beside prod
    raw = yaml.safe_load(config.read_text())
    dev = next(f for f in raw["flows"] if f["name"] == "dev")
    dev["attributes"]["model"]["model"] = "model@90"
    facility = tmp_path / "facility.yaml"
    facility.write_text(yaml.safe_dump(raw, allow_unicode=True))
    replayed = locowatch_cli(
        "replay", "--config", str(facility), "--recording", str(recording),
        "--state", str(tmp_path / "state.jsonl"), "--no-progress",
        env={**os.environ, "LOCOWATCH_MODELS": str(models)},
    )  # fmt: skip
    assert replayed.returncode == 0, replayed.stderr[-3000:]
    assert re.search(r"dev against prod, over \d+ snapshots", replayed.stdout), replayed.stdout
