"""Replay against the live system on the same footage: how fast, and the same state?

Baseline: a live demo run (``locowatch demo``: twin footage over RTSP, the edge gateway
as processes, ingest, the FSE), which processes a recorded day in real time at best.
Against it: ``locowatch replay`` of that run's footage (a recording, edge.recordings)
with the run's facility file, every flow, on the same machine. Both are scored against
the same ground truth on the demo's tracks from the same scenario second on, and compared
snapshot by snapshot: the count per track and where the ends are.

The live run is the demo's: give ``--home`` of a finished run (``--reuse``), or the bench
runs ``locowatch demo`` there first with the arguments after ``--``.

Writes bench/results/replay.json.

    .venv/bin/python bench/bench_replay.py --home /tmp/r104 --tracks T1 -- \\
        --family roof --seed 104 --cameras 16 --duration 180 --no-serve \\
        --dashboard-port 0 --variety series=known+unknown \\
        --prod-models position=position@3,model=model@2 \\
        --dev-models position=position@3,model=model@3
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from demo.cli import DEMO_DATABASE
from locowatch.db.managed import ManagedServer
from sim.evaluation import Snapshot, evaluate, read_snapshots, read_snapshots_from_db

RESULTS = Path(__file__).resolve().parent / "results"
REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--home", type=Path, required=True, help="The demo's --home.")
    parser.add_argument("--tracks", required=True, help="The demo's tracks, comma separated.")
    parser.add_argument("--warmup", type=float, default=40.0, help="Seconds not scored.")
    parser.add_argument("--reuse", action="store_true", help="The live run is there already.")
    parser.add_argument("demo_args", nargs="*", help="After --: arguments of the live demo.")
    args = parser.parse_args()
    tracks = [t.strip() for t in args.tracks.split(",")]
    demo = args.home / "demo"
    if not args.reuse:
        live_started = time.monotonic()
        subprocess.run(
            [sys.executable, "-m", "locowatch", "demo", "--home", str(args.home), *args.demo_args],
            check=True,
        )
        print(f"live demo: {time.monotonic() - live_started:.0f} s including its start-up")
    run = FinishedDemo.at(args.home)
    server = ManagedServer(args.home).up()  # the live run's database, started if it is not
    db_url = server.url(DEMO_DATABASE)
    scored_from_t = run.first_t + args.warmup

    state = args.home / "replay-state.jsonl"
    started = time.monotonic()
    subprocess.run(
        [sys.executable, "-m", "locowatch", "replay", "--config", str(demo / "facility.yaml"),
         "--recording", str(run.footage), "--state", str(state), "--no-progress"],
        check=True,
    )  # fmt: skip
    replay_s = time.monotonic() - started
    recorded_s = run.last_t - run.first_t

    results: dict[str, Any] = {
        "footage": run.footage.name,
        "recorded_s": round(recorded_s, 1),
        "replay_wall_s": round(replay_s, 1),
        "replay_speed": round(recorded_s / replay_s, 2),
        "tracks": tracks,
        "scored_from_scenario_s": scored_from_t,
        "flows": {},
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    flows = sorted({json.loads(x)["flow"] for x in state.read_text().splitlines()})
    truth = shifted(run.truth_wall, -run.played_at)
    since, until = run.truth_wall[0].time - 1, run.truth_wall[-1].time + 1
    for flow in flows:
        live = shifted(read_snapshots_from_db(db_url, flow, since, until), -run.played_at)
        replayed = shifted(read_snapshots(state, flow), -run.scenario_start)
        results["flows"][flow] = {
            "live": scores_of(truth, live, tracks, scored_from_t),
            "replay": scores_of(truth, replayed, tracks, scored_from_t),
            "agreement": _agreement(live, replayed, tracks, scored_from_t),
        }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "replay.json").write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    print(json.dumps(results, indent=2, ensure_ascii=False))


@dataclass(frozen=True)
class FinishedDemo:
    """What a finished ``locowatch demo --home HOME`` left: its footage and its ground
    truth, with the two clocks to line them up."""

    footage: Path
    truth_wall: list[Snapshot]  # on the live run's wall clock
    played_at: float  # wall time of scenario second 0 in the live run
    scenario_start: float  # the recording's time of scenario second 0
    first_t: float  # the scenario seconds the truth spans
    last_t: float

    @classmethod
    def at(cls, home: Path) -> FinishedDemo:
        (footage,) = (f for f in (home / "demo-footage").iterdir() if (f / "complete").exists())
        truth_path = home / "demo" / "ground_truth.jsonl"
        # each truth line has the wall time the live run played it at, and its scenario second
        lines = [json.loads(x) for x in truth_path.read_text().splitlines()]
        manifest = json.loads((footage / "manifest.json").read_text())
        return cls(
            footage=footage,
            truth_wall=list(read_snapshots(truth_path)),
            played_at=lines[0]["time"] - lines[0]["t"],
            scenario_start=datetime.fromisoformat(manifest["start_time"]).timestamp(),
            first_t=lines[0]["t"],
            last_t=lines[-1]["t"],
        )


def shifted(snapshots: Any, by: float) -> list[Snapshot]:
    """The snapshots on the scenario's clock (seconds of the twin's day)."""
    return [Snapshot(s.time + by, s.locos) for s in snapshots]


def scores_of(
    truth: list[Snapshot], state: list[Snapshot], tracks: list[str], from_t: float
) -> dict[str, Any]:
    scores = evaluate(
        [s for s in truth if s.time >= from_t - 1], [s for s in state if s.time >= from_t], None,
        tracks,
    )  # fmt: skip
    # of the locomotive-snapshots of a known series, the share the state names rightly
    # (None: no known series on the scored tracks)
    known = None
    if scores.series_accuracy is not None:
        known = round(scores.series_accuracy * (scores.series_coverage or 0.0), 4)
    return {
        "snapshots": scores.snapshots,
        "exact_count": round(scores.count_exact, 4),
        "end_error_median_m": scores.end_error_median_m,
        "end_error_p95_m": scores.end_error_p95_m,
        "id_switches": scores.id_switches,
        "known_series_right": known,
        "unknown_answered_unknown": scores.series_unknown_answered,
    }


def _agreement(
    live: list[Snapshot], replayed: list[Snapshot], tracks: list[str], from_t: float
) -> dict[str, Any]:
    """Per live snapshot, the replayed one of the same second: same count per track, and
    how far apart the ends of locomotives both have (paired in order along the track)."""
    times = np.array([s.time for s in replayed])
    same = total = 0
    ends: list[float] = []
    for snapshot in live:
        if snapshot.time < from_t or not len(times):
            continue
        other = replayed[int(np.argmin(abs(times - snapshot.time)))]
        if abs(other.time - snapshot.time) > 0.5:
            continue
        for track in tracks:
            a = sorted((lo.tail_m, lo.head_m) for lo in snapshot.locos if lo.track == track)
            b = sorted((lo.tail_m, lo.head_m) for lo in other.locos if lo.track == track)
            total += 1
            if len(a) == len(b):
                same += 1
                for (tail_a, head_a), (tail_b, head_b) in zip(a, b, strict=True):
                    ends += [abs(tail_a - tail_b), abs(head_a - head_b)]
    return {
        "track_snapshots": total,
        "same_count": round(same / total, 4) if total else None,
        "end_difference_median_m": round(statistics.median(ends), 3) if ends else None,
        "end_difference_p95_m": round(float(np.percentile(ends, 95)), 3) if ends else None,
    }


if __name__ == "__main__":
    main()
