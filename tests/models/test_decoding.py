"""What the edge makes of network outputs: intervals in metres, classes, plate text."""

from __future__ import annotations

import numpy as np

from locowatch.models import position as pos
from locowatch.models.attributes import PLATE_ALPHABET, decode_class, decode_ctc

LOGIT = 8.0


def strip_logits(
    width: int, bodies: list[tuple[float, float, bool, bool]], start_m: float = 0.0
) -> np.ndarray:
    """Confident logits for bodies (tail_m, head_m, tail_real, head_real) on a strip."""
    logits = np.full((3, width), -LOGIT, np.float32)
    columns = np.arange(width)
    centres = start_m + (columns + 0.5) * pos.STRIP_METRES_PER_PX
    for tail, head, tail_real, head_real in bodies:
        logits[pos.OCCUPIED, (centres >= tail) & (centres <= head)] = LOGIT
        for channel, metre, real in ((pos.TAIL, tail, tail_real), (pos.HEAD, head, head_real)):
            if real:
                c = pos.end_column(metre, start_m)
                bump = np.exp(-0.5 * ((columns - c) / pos.END_SIGMA_COLUMNS) ** 2)
                p = np.clip(bump, 1e-4, 1 - 1e-4)
                logits[channel] = np.maximum(logits[channel], np.log(p / (1 - p)))
    return logits


def test_a_body_inside_the_view_has_two_real_ends_at_sub_column_precision() -> None:
    intervals = pos.decode(strip_logits(240, [(40.0 + 5.03, 40.0 + 19.27, True, True)], 40.0), 40.0)
    assert len(intervals) == 1
    body = intervals[0]
    assert body.start_real and body.end_real
    assert abs(body.start_m - 45.03) < 0.03
    assert abs(body.end_m - 59.27) < 0.03


def test_a_body_running_out_of_the_view_is_cut_there() -> None:
    logits = strip_logits(240, [(10.0, 24.0, True, False)])
    [body] = pos.decode(logits, 0.0, covered=(0.0, 24.0))
    assert body.start_real and not body.end_real
    assert body.end_m == 24.0


def test_an_end_without_end_evidence_is_cut_by_an_occluder() -> None:
    [body] = pos.decode(strip_logits(240, [(3.0, 12.0, False, True)]), 0.0)
    assert not body.start_real and body.end_real
    assert abs(body.start_m - 3.0) < 0.1


def test_two_bodies_a_metre_apart_stay_two() -> None:
    intervals = pos.decode(
        strip_logits(240, [(2.0, 10.0, True, True), (11.0, 20.0, True, True)]), 0.0
    )
    assert [(round(i.start_m, 1), round(i.end_m, 1)) for i in intervals] == [
        (2.0, 10.0),
        (11.0, 20.0),
    ]


def test_touching_bodies_are_split_where_a_head_meets_a_tail() -> None:
    logits = strip_logits(240, [(2.0, 10.0, True, True), (10.0, 20.0, True, True)])
    logits[pos.OCCUPIED] = np.where(logits[pos.OCCUPIED] > 0, LOGIT, -LOGIT)
    logits[pos.OCCUPIED, 95:105] = LOGIT  # the occupancy misses the gap entirely
    intervals = pos.decode(logits, 0.0)
    assert len(intervals) == 2
    assert abs(intervals[0].end_m - 10.0) < 0.1 and abs(intervals[1].start_m - 10.0) < 0.1


def test_only_the_covered_span_is_reported() -> None:
    logits = strip_logits(240, [(1.0, 23.0, True, True)])
    [body] = pos.decode(logits, 0.0, covered=(5.0, 15.0))
    assert (body.start_m, body.end_m) == (5.0, 15.0)
    assert not body.start_real and not body.end_real


def test_an_empty_view_has_no_intervals_and_is_confident() -> None:
    logits = strip_logits(240, [])
    assert pos.decode(logits, 0.0) == []
    assert pos.view_confidence(logits) > 0.99


def test_class_decoding_ranks_alternatives() -> None:
    reading = decode_class(np.array([0.1, 3.0, 1.0], np.float32), ("ВЛ80С", "ТЭМ18", "ЧМЭ3"))
    assert reading.value == "ТЭМ18"
    assert [value for value, _ in reading.alternatives] == ["ЧМЭ3", "ВЛ80С"]
    assert 0.7 < reading.confidence < 0.9


def test_ctc_decoding_merges_repeats_and_drops_blanks() -> None:
    text = "ЧМЭ3-0066"
    path = []
    for char in text:  # each letter twice, a blank between letters (needed for "66")
        index = PLATE_ALPHABET.index(char) + 1
        path += [index, index, 0]
    logits = np.full((len(path), len(PLATE_ALPHABET) + 1), -5.0, np.float32)
    logits[np.arange(len(path)), path] = 5.0
    reading = decode_ctc(logits, PLATE_ALPHABET)
    assert reading.value == text
    assert reading.confidence > 0.5


def test_hidden_columns_become_hidden_spans_and_three_score_networks_have_none() -> None:
    """position@2 scores a fourth channel, hidden behind something nearer: runs of it
    inside the covered span are the stretches the edge reports as hidden blind spans;
    runs under half a metre are noise (a post, a person)."""
    three = strip_logits(240, [(45.0, 59.0, True, True)], 40.0)
    assert pos.hidden_spans(three, 40.0) == []
    four = np.concatenate([three, np.full((1, 240), -LOGIT, np.float32)])
    centres = 40.0 + (np.arange(240) + 0.5) * pos.STRIP_METRES_PER_PX
    four[pos.HIDDEN, (centres > 50.0) & (centres < 55.0)] = LOGIT
    four[pos.HIDDEN, (centres > 60.0) & (centres < 60.3)] = LOGIT  # too short to count
    four[pos.HIDDEN, centres > 62.0] = LOGIT  # runs past the covered span's end
    spans = pos.hidden_spans(four, 40.0, covered=(40.0, 63.0))
    assert [(round(a, 1), round(b, 1)) for a, b in spans] == [(50.0, 55.0), (62.0, 63.0)]


def test_the_position_estimator_sends_what_the_network_calls_hidden_as_blind() -> None:
    """The edge's position task turns a four-score network's hidden runs into hidden blind
    spans of its estimation, inside the covered span, beside the intervals."""
    from edge.estimators.tasks import HIDDEN, PositionTask
    from locowatch.v1 import common_pb2, frames_pb2

    three = strip_logits(240, [(45.0, 50.0, True, True)], 40.0)
    output = np.concatenate([three, np.full((1, 240), -LOGIT, np.float32)])
    centres = 40.0 + (np.arange(240) + 0.5) * pos.STRIP_METRES_PER_PX
    output[pos.HIDDEN, (centres > 52.0) & (centres < 58.0)] = LOGIT
    packet = frames_pb2.Packet(
        camera_id="cam-07",
        span=common_pb2.TrackSpan(track_id="T2", start_m=40.0, end_m=64.0),
        covered=common_pb2.TrackSpan(track_id="T2", start_m=41.0, end_m=64.0),
    )
    estimation = PositionTask().estimate(packet, output)
    assert [(round(i.start_m, 1), round(i.end_m, 1)) for i in estimation.intervals] == [
        (45.0, 50.0)
    ]
    assert [(round(b.start_m, 1), round(b.end_m, 1), b.kind) for b in estimation.blind] == [
        (52.0, 58.0, HIDDEN)
    ]
    assert not PositionTask().estimate(packet, three).blind  # position@1: none


def test_a_short_run_whose_end_peaks_cross_is_reported_with_cut_ends() -> None:
    """A run of 0.5 m with a head peak at its left and a tail peak at its right (seen on a
    roof view of a gap between two bodies) decoded as [73.26, 72.68] m; ingest refuses an
    interval that ends before it starts, and with it the camera's whole view."""
    logits = np.full((3, 240), -LOGIT, np.float32)
    logits[pos.OCCUPIED, 100:105] = LOGIT
    columns = np.arange(240)
    for channel, column in ((pos.TAIL, 106), (pos.HEAD, 98)):
        bump = np.clip(
            np.exp(-0.5 * ((columns - column) / pos.END_SIGMA_COLUMNS) ** 2), 1e-4, 0.9999
        )
        logits[channel] = np.log(bump / (1 - bump))
    [run] = pos.decode(logits, 0.0)
    assert (round(run.start_m, 2), round(run.end_m, 2)) == (10.0, 10.5)
    assert not run.start_real and not run.end_real
