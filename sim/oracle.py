"""Geometry and fusion alone: the twin's true intervals through the FSE, family by family.

A perfect position network would report, per camera frame and view, exactly the bodies
the camera sees: clipped to what is in frame, cut where a nearer locomotive hides the
track, with blind spans saying so (``twin_estimations`` with ``NOISELESS``). Whatever the
FSE then gets wrong is the fault of geometry and fusion, not of the networks. Scores count
only locomotives some camera has seen by then (``seen_once``).

    locowatch sim oracle --families along,across,sparse,roof --seeds 1,2 --duration 300
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cloud.fse import Snapshot
from cloud.fse.offline import fuse_offline
from sim.estimations import NOISELESS, twin_estimations
from sim.evaluation import Scores, evaluate, seen_once, snapshot_from_record
from sim.faults import NO_FAULTS
from sim.layout import CameraFamily, family_spec
from sim.scenario import ScenarioSpec
from sim.twin import Twin, TwinSpec


@dataclass(frozen=True)
class OracleRun:
    family: CameraFamily
    seed: int
    cameras: int
    scores: Scores


def oracle_twin(family: CameraFamily, seed: int, duration_s: float = 300.0) -> Twin:
    spec = TwinSpec(
        seed=seed,
        layout=family_spec(family),
        scenario=ScenarioSpec(duration_s=duration_s),
        faults=NO_FAULTS,
    )
    return Twin(spec)


def oracle_states(twin: Twin) -> tuple[list[Snapshot], list[dict[str, Any]]]:
    """The FSE's snapshots over the twin's perfect estimations, and the truth records of
    the same instants (only locomotives sighted so far)."""
    ticks = list(fuse_offline(twin.facility, "prod", twin_estimations(twin, noise=NOISELESS)))
    start = twin.scenario.spec.start_time.timestamp()
    truth = list(seen_once(twin.truth(tick.snapshot.time - start) for tick in ticks))
    return [tick.snapshot for tick in ticks], truth


def oracle_run(family: CameraFamily, seed: int, duration_s: float = 300.0) -> OracleRun:
    twin = oracle_twin(family, seed, duration_s)
    snapshots, truth = oracle_states(twin)
    estimates = [
        snapshot_from_record(
            {"time": s.time, "locomotives": [loco.to_json() for loco in s.locomotives]}
        )
        for s in snapshots
    ]
    lengths = {t.id: t.length_m for t in twin.facility.tracks}
    scores = evaluate([snapshot_from_record(r) for r in truth], estimates, lengths)
    return OracleRun(family, seed, len(twin.facility.cameras), scores)


def table(runs: list[OracleRun]) -> str:
    header = "| family | seed | cameras | exact count | paired / missed / false | "
    rows = [header + "head/tail median | id switches |", "|" + " --- |" * 7]
    for run in runs:
        s = run.scores
        median = "-" if s.end_error_median_m is None else f"{s.end_error_median_m:.2f} m"
        rows.append(
            f"| {run.family} | {run.seed} | {run.cameras} | {100 * s.count_exact:.1f} % | "
            f"{s.matched} / {s.missed} / {s.false_positives} | {median} | {s.id_switches} |"
        )
    return "\n".join(rows)
