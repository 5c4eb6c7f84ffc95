"""eval: a perfect score for the truth itself, and known penalties for known mistakes."""

from __future__ import annotations

import copy
import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from sim.evaluation import evaluate, seen_once, snapshot_from_record
from sim.faults import NO_FAULTS
from sim.scenario import ScenarioSpec
from sim.twin import Twin, TwinSpec

Record = dict[str, Any]


@pytest.fixture(scope="module")
def truth() -> list[Record]:
    twin = Twin(TwinSpec(seed=4, scenario=ScenarioSpec(duration_s=300), faults=NO_FAULTS))
    return [twin.truth(float(t)) for t in np.arange(0.0, 300.0, 0.5)]


def _estimate(truth: list[Record]) -> list[Record]:
    """The truth, dressed as a state stream (fse ids, a flow)."""
    out = copy.deepcopy(truth)
    for record in out:
        record["flow"] = "prod"
        for loco in record["locomotives"]:
            loco["id"] = f"fse-{loco['id']}"
    return out


def _score(truth: list[Record], estimate: list[Record]) -> Any:
    return evaluate(
        [snapshot_from_record(r) for r in truth], [snapshot_from_record(r) for r in estimate]
    )


def test_truth_scores_perfectly(truth: list[Record]) -> None:
    scores = _score(truth, _estimate(truth))
    assert scores.snapshots == len(truth)
    assert scores.count_exact == 1.0 and scores.track_count_exact == 1.0
    assert scores.missed == 0 and scores.false_positives == 0
    assert scores.end_error_median_m == 0.0 and scores.end_error_p95_m == 0.0
    assert scores.id_switches == 0
    assert scores.series_accuracy == 1.0 and scores.plate_exact == 1.0 and scores.plate_cer == 0.0
    assert scores.detection_delay_median_s == 0.0


def test_shifted_copy_costs_exactly_the_shift(truth: list[Record]) -> None:
    estimate = _estimate(truth)
    for record in estimate:
        for loco in record["locomotives"]:
            loco["tail_m"] += 0.5
            loco["head_m"] += 0.5
    scores = _score(truth, estimate)
    assert scores.end_error_median_m == pytest.approx(0.5)
    assert scores.end_error_p95_m == pytest.approx(0.5)
    assert scores.count_exact == 1.0 and scores.id_switches == 0


def test_missing_locomotive_in_every_tenth_snapshot(truth: list[Record]) -> None:
    estimate = _estimate(truth)
    dropped = 0
    for record in estimate[::10]:
        assert record["locomotives"], "the scenario keeps locomotives inside"
        if any(loco["seen_m"] < 0.75 for loco in record["locomotives"]):
            continue  # one in the doorway: a count one short is no error there
        record["locomotives"].pop(0)
        dropped += 1
    scores = _score(truth, estimate)
    assert scores.count_exact == pytest.approx(1 - dropped / len(truth))
    assert scores.missed == dropped and scores.false_positives == 0


def test_identity_switch_and_wrong_identity_are_counted(truth: list[Record]) -> None:
    estimate = _estimate(truth)
    target = truth[0]["locomotives"][0]["id"]
    pairs = 0
    for index, record in enumerate(estimate):
        for loco in record["locomotives"]:
            if loco["id"] != f"fse-{target}":
                continue
            pairs += 1
            if index >= len(estimate) // 2:
                loco["id"] = "fse-new"  # the tracker lost it and made a new id: one switch
            loco["plate"] = loco["plate"][:-1] + ("0" if loco["plate"][-1] != "0" else "1")
            loco["series"] = "ТЭМ2"
    scores = _score(truth, estimate)
    assert scores.id_switches == 1
    total = scores.matched
    assert scores.plate_exact == pytest.approx(1 - pairs / total)
    assert scores.series_accuracy == pytest.approx(1 - pairs / total)
    plate_length = len(truth[0]["locomotives"][0]["plate"])
    assert scores.plate_cer == pytest.approx(pairs / total / plate_length)


def test_latency_from_written_at(truth: list[Record]) -> None:
    estimate = _estimate(truth)
    for record in estimate:
        written = datetime.fromisoformat(record["time"]) + timedelta(seconds=1.5)
        record["written_at"] = written.isoformat()
    scores = _score(truth, estimate)
    assert scores.latency_median_s == pytest.approx(1.5)


def test_tracks_outside_the_scored_ones_are_left_out(truth: list[Record]) -> None:
    """A demo scores its scope's tracks; its cameras also see others, where the state
    holds locomotives the truth (kept to the scope) does not: those are not errors."""
    scored = {loco["track"] for r in truth for loco in r["locomotives"]}
    estimate = _estimate(truth)
    for record in estimate:
        record["locomotives"].append({**record["locomotives"][0], "id": "x", "track": "T-other"})
    assert _score(truth, estimate).count_exact == 0.0
    only = evaluate(
        [snapshot_from_record(r) for r in truth],
        [snapshot_from_record(r) for r in estimate],
        tracks=scored,
    )
    assert only.count_exact == 1.0 and only.false_positives == 0


def test_eval_command_prints_a_table_and_writes_json(
    truth: list[Record], tmp_path: Path, locowatch_cli: Any
) -> None:
    truth_path, state_path = tmp_path / "ground_truth.jsonl", tmp_path / "state.jsonl"
    truth_path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in truth))
    estimate = _estimate(truth)
    other_flow = [{**r, "flow": "dev", "locomotives": []} for r in estimate]
    state_path.write_text(
        "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in estimate + other_flow)
    )
    result = locowatch_cli(
        "eval",
        "--truth",
        str(truth_path),
        "--state",
        str(state_path),
        "--flow",
        "prod",
        "--tracks",
        ",".join(sorted({loco["track"] for r in truth for loco in r["locomotives"]})),
        "--json",
        str(tmp_path / "scores.json"),
    )
    assert result.returncode == 0, result.stderr
    table = {line[:32].strip(): line[32:].strip() for line in result.stdout.splitlines()}
    assert table["exact count (facility)"] == "100.00 %"
    assert table["id switches"] == "0"
    scores = json.loads((tmp_path / "scores.json").read_text())
    assert scores["count_exact"] == 1.0 and scores["snapshots"] == len(truth)

    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"time": "2026-11-02T02:00:00+00:00"}\n')
    failed = locowatch_cli(
        "eval",
        "--truth",
        str(truth_path),
        "--state",
        str(bad),
    )
    assert failed.returncode == 1 and f"{bad}:1: not a snapshot line" in failed.stderr


@pytest.mark.db
def test_eval_reads_state_snapshots_from_timescaledb(
    truth: list[Record], tmp_path: Path, test_db_url: str, locowatch_cli: Any
) -> None:
    import psycopg
    from psycopg.types.json import Jsonb

    estimate = _estimate(truth)
    estimate[5]["locomotives"] = []  # one snapshot with nobody in it: a row all the same
    with psycopg.connect(test_db_url) as conn:
        conn.execute(
            "CREATE TABLE state_snapshots (time timestamptz NOT NULL, flow text NOT NULL, "
            "written_at timestamptz, locomotives jsonb NOT NULL)"
        )
        conn.execute("SELECT create_hypertable('state_snapshots', by_range('time'))")
        with conn.cursor() as cursor:
            cursor.executemany(
                "INSERT INTO state_snapshots VALUES (%s, %s, %s, %s)",
                [
                    (r["time"], flow, r["time"], Jsonb(r["locomotives"]))
                    for r in estimate
                    for flow in ("prod", "dev")
                ],
            )
    truth_path = tmp_path / "ground_truth.jsonl"
    truth_path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in truth))
    result = locowatch_cli(
        "eval",
        "--truth",
        str(truth_path),
        "--db",
        test_db_url,
        "--flow",
        "prod",
        "--tracks",
        ",".join(sorted({loco["track"] for r in truth for loco in r["locomotives"]})),
        "--json",
        str(tmp_path / "scores.json"),
    )
    assert result.returncode == 0, result.stderr
    scores = json.loads((tmp_path / "scores.json").read_text())
    assert scores["snapshots"] == len(truth)  # prod only, the empty one included
    assert scores["count_exact"] == pytest.approx(1 - 1 / len(truth))
    assert scores["latency_median_s"] == 0.0


def test_an_empty_stretch_scores_as_exact_not_as_an_error() -> None:
    """A stretch where no locomotive stood and none was reported (a cut camera's view
    after they left) is scored, not divided by zero."""
    truth = [snapshot_from_record({"time": 100.0 + i, "locomotives": []}) for i in range(3)]
    estimates = [snapshot_from_record({"time": 100.0 + i, "locomotives": []}) for i in range(3)]
    scores = evaluate(truth, estimates)
    assert (scores.snapshots, scores.count_exact, scores.track_count_exact) == (3, 1.0, 1.0)
    assert scores.missed == scores.false_positives == 0


def test_a_locomotive_only_glimpsed_may_be_counted_either_way() -> None:
    """Sparse coverage: a sliver of a locomotive (under ``DOOR_M``) is seen once, then it
    is hidden. Counting it from the sliver, or not, is no error; one seen well once must
    be counted while it is out of sight."""

    def loco(seen_m: float, cameras: list[str]) -> Record:
        return {"id": "L1", "track": "T1", "tail_m": 30.0, "head_m": 50.0,
                "seen_m": seen_m, "cameras": cameras}  # fmt: skip

    def scored(first_seen_m: float, reported: bool) -> float:
        sightings = [loco(first_seen_m, ["cam-1"]), loco(0.0, []), loco(0.0, [])]
        truth = list(
            seen_once({"time": float(t), "locomotives": [s]} for t, s in enumerate(sightings))
        )
        estimate = [
            {
                "time": float(t),
                "locomotives": [{**loco(0.0, []), "id": "fse-1"}] if reported else [],
            }
            for t in range(3)
        ]
        return _score(truth, estimate).count_exact

    assert scored(0.5, reported=True) == scored(0.5, reported=False) == 1.0
    assert scored(5.0, reported=True) == 1.0
    assert scored(5.0, reported=False) == 0.0


def test_a_series_never_taught_is_right_only_when_answered_unknown(truth: list[Record]) -> None:
    """A locomotive of a series outside the known six (a varied twin's unknown or other
    pool) counts apart: right when the state says "unknown", never in series accuracy."""
    unseen = copy.deepcopy(truth)
    first = next(loco["id"] for r in unseen for loco in r["locomotives"])
    for record in unseen:
        for loco in record["locomotives"]:
            if loco["id"] == first:
                loco["series"] = "ЧС2"
    estimate = _estimate(unseen)
    scores = _score(unseen, estimate)
    assert scores.series_unknown_answered == 0.0 and scores.series_accuracy == 1.0
    for record in estimate:
        for loco in record["locomotives"]:
            if loco["id"] == f"fse-{first}":
                loco["series"] = "unknown"
    assert _score(unseen, estimate).series_unknown_answered == 1.0
    assert _score(truth, _estimate(truth)).series_unknown_answered is None


def test_a_plate_counts_as_missed_only_once_a_camera_showed_it_readable(
    truth: list[Record],
) -> None:
    """The plate score counts the locomotive-snapshots after a camera first showed one of
    the locomotive's plates large enough to read in this visit (``plate_cameras``): a
    state that reads each plate the moment it shows scores 100 %; one that never reads
    scores 0 %; before a plate showed, no plate is expected."""
    assert any(loco["plate_cameras"] for r in truth for loco in r["locomotives"])
    shown: set[str] = set()
    on_time = _estimate(truth)
    for record, estimated in zip(truth, on_time, strict=True):
        shown &= {loco["id"] for loco in record["locomotives"]}
        shown |= {loco["id"] for loco in record["locomotives"] if loco["plate_cameras"]}
        for true, loco in zip(record["locomotives"], estimated["locomotives"], strict=True):
            loco["plate"] = true["plate"] if true["id"] in shown else None
    scores = _score(truth, on_time)
    assert scores.plate_read_where_shown == 1.0 and scores.plate_exact_where_shown == 1.0
    assert scores.plate_coverage is not None and scores.plate_coverage < 1.0  # not before
    never = _estimate(truth)
    for record in never:
        for loco in record["locomotives"]:
            loco["plate"] = None
    assert _score(truth, never).plate_read_where_shown == 0.0
    late = copy.deepcopy(on_time)  # each plate read one snapshot after it showed
    for record, previous in zip(late[1:], on_time, strict=False):
        before = {loco["id"]: loco["plate"] for loco in previous["locomotives"]}
        for loco in record["locomotives"]:
            loco["plate"] = before.get(loco["id"])
    assert 0.9 < _score(truth, late).plate_read_where_shown < 1.0  # type: ignore[operator]


def test_the_truth_says_which_cameras_show_a_plate_one_can_read() -> None:
    """``plate_cameras``: cameras that see the locomotive and show one of its plates
    facing them (the plate's front towards the camera), whole and large enough to read:
    some of the time, not all of it."""
    twin = Twin(TwinSpec(seed=4, scenario=ScenarioSpec(duration_s=300), faults=NO_FAULTS))
    lines = [
        loco for t in np.arange(0.0, 300.0, 5.0) for loco in twin.truth(float(t))["locomotives"]
    ]
    assert all(set(loco["plate_cameras"]) <= set(loco["cameras"]) for loco in lines)
    some = twin.camera_ids[::2]  # a run that streams only some cameras scores what they see
    partial = twin.truth(150.0, some)["locomotives"]
    assert any(loco["cameras"] for loco in partial)
    for loco in partial:
        assert set(loco["cameras"]) <= set(some) and set(loco["plate_cameras"]) <= set(some)
    seen = [loco for loco in lines if loco["cameras"]]
    readable = [loco for loco in seen if loco["plate_cameras"]]
    assert 0.2 < len(readable) / len(seen) < 0.9
    state = next(s for t in np.arange(0.0, 300.0, 5.0) for s in twin.scenario.at(float(t)))
    for plate in twin.plates(state):
        for camera_id in twin.camera_ids:
            camera = twin.geometry.cameras[camera_id]
            if plate.faces(camera):
                away = plate.corners.mean(axis=0) - camera.position
                towards = np.cross(
                    plate.corners[1] - plate.corners[0], plate.corners[3] - plate.corners[0]
                )
                assert float(np.dot(towards, away)) > 0 or not camera.visible(plate.corners).all()
