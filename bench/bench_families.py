"""The whole pipeline's accuracy on twin days of every camera family, two flows side by side.

Each run is a finished demo (``locowatch demo --home HOME ...``): its footage, its facility
file and its ground truth on its tracks. The footage is replayed (``locowatch replay``:
every frame, in capture order, the same result every run) with the prod and dev flows
running the networks named here instead of the demo's, and each flow is scored against
the demo's ground truth on the demo's tracks from ``--warmup`` seconds on. The networks
of the two flows are thus compared on the same frames, on days and camera families the
chosen networks may never have trained on (their cards say which).

Writes bench/results/families.json and prints a table.

    .venv/bin/python bench/bench_families.py \\
        --prod-models position=position@3 --dev-models position=position@1 \\
        --run along-100=/tmp/c100:T1,T3 --run across-104=/tmp/a104:T2
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench_replay import FinishedDemo, scores_of, shifted

from demo.stack import on_models
from locowatch.facility.loading import load_facility
from sim.evaluation import read_snapshots
from sim.recording import write_facility

RESULTS = Path(__file__).resolve().parent / "results"
FLOWS = ("prod", "dev")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--run",
        action="append",
        required=True,
        metavar="NAME=HOME:TRACKS",
        help="a finished demo: its name in the table, its --home, its tracks (repeatable)",
    )
    parser.add_argument("--prod-models", required=True, help="e.g. position=position@3")
    parser.add_argument("--dev-models", required=True, help="e.g. position=position@1")
    parser.add_argument("--warmup", type=float, default=40.0, help="Seconds not scored.")
    args = parser.parse_args()
    models = {"prod": parse_models(args.prod_models), "dev": parse_models(args.dev_models)}
    results: dict[str, Any] = {
        "models": models,
        "warmup_s": args.warmup,
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "runs": {},
    }
    for spec in args.run:
        name, _, rest = spec.partition("=")
        home, _, tracks = rest.rpartition(":")
        results["runs"][name] = run(Path(home), tracks.split(","), models, args.warmup)
        print(f"{name}: " + json.dumps(results["runs"][name], ensure_ascii=False), flush=True)
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / "families.json"
    out.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    print(table(results))
    print(f"wrote {out}")


def parse_models(text: str) -> dict[str, str]:
    """``position=position@3,model=model@2`` -> {estimator: model}."""
    pairs = [part.strip().partition("=") for part in text.split(",") if part.strip()]
    if any(not estimator or not model for estimator, _, model in pairs):
        raise SystemExit(f"expected ESTIMATOR=MODEL,...: {text!r}")
    return {estimator: model for estimator, _, model in pairs}


def run(
    home: Path, tracks: list[str], models: dict[str, dict[str, str]], warmup_s: float
) -> dict[str, Any]:
    demo = FinishedDemo.at(home)
    truth = shifted(demo.truth_wall, -demo.played_at)
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "facility.yaml"
        facility = load_facility(home / "demo" / "facility.yaml")
        flows = [on_models(flow, models.get(flow.name, {})) for flow in facility.flows]
        write_facility(config, facility.model_copy(update={"flows": flows}), "bench_families")
        state = Path(tmp) / "state.jsonl"
        started = time.monotonic()
        subprocess.run(
            [sys.executable, "-m", "locowatch", "--log-level", "WARNING", "replay",
             "--config", str(config), "--recording", str(demo.footage), "--state", str(state),
             "--no-progress"],
            check=True,
        )  # fmt: skip
        replay_s = time.monotonic() - started
        return {
            "footage": demo.footage.name,
            "tracks": tracks,
            "replay_wall_s": round(replay_s, 1),
            **{
                flow: scores_of(
                    truth,
                    shifted(read_snapshots(state, flow), -demo.scenario_start),
                    tracks,
                    demo.first_t + warmup_s,
                )
                for flow in FLOWS
            },
        }


def table(results: dict[str, Any]) -> str:
    """Markdown: one row per run, prod and dev side by side."""
    prod, dev = (",".join(results["models"][f].values()) for f in FLOWS)
    head = (
        f"| run | snapshots | exact count, prod ({prod}) / dev ({dev}) | head/tail median / p95, "
        "prod | dev | id switches | known series right | never-taught answered unknown |"
    )
    rows = [head, "| --- " * 8 + "|"]
    for name, r in results["runs"].items():
        p, d = r["prod"], r["dev"]
        rows.append(
            f"| {name} | {p['snapshots']} | {pct(p['exact_count'])} / {pct(d['exact_count'])} "
            f"| {metres(p)} | {metres(d)} | {p['id_switches']} / {d['id_switches']} "
            f"| {pct(p['known_series_right'])} / {pct(d['known_series_right'])} "
            f"| {pct(p['unknown_answered_unknown'])} / {pct(d['unknown_answered_unknown'])} |"
        )
    return "\n".join(rows)


def pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f} %"


def metres(scores: dict[str, Any]) -> str:
    median, p95 = scores["end_error_median_m"], scores["end_error_p95_m"]
    if median is None:
        return "-"
    return f"{median:.2f} / {p95:.2f} m"


if __name__ == "__main__":
    main()
