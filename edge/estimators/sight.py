"""What a camera could not see in a frame, said in its position estimations.

A camera looking across several tracks sees a far track only where nothing stands on
the nearer ones in between, and the position network, reading the far track's strip
there, sees the nearer locomotive's side and may report it as a body on the far track.
So before an estimation leaves, the stretches of its track hidden behind the bodies this
camera saw on nearer tracks (in this frame, or the one before when that track's strip is
still to come) become blind spans, and intervals there are cut away: the FSE then neither
counts a phantom there nor reads the stretch as seen empty.
"""

from __future__ import annotations

from collections.abc import Iterable

from locowatch.facility.visibility import FacilityVisibility, Span, subtract_spans
from locowatch.v1 import estimation_pb2

CUT = estimation_pb2.END_KIND_CUT
HIDDEN = estimation_pb2.BLIND_KIND_HIDDEN
MIN_PIECE_M = 0.3  # what is left of an interval between hidden stretches, below this, goes


class Sight:
    """Per camera, the bodies it saw last on each track, and the hidden stretches they cast."""

    def __init__(self, visibility: FacilityVisibility) -> None:
        self.visibility = visibility
        self._seen: dict[str, dict[str, list[Span]]] = {}  # camera -> track -> bodies

    def apply(
        self, estimations: Iterable[estimation_pb2.PositionEstimation]
    ) -> list[estimation_pb2.PositionEstimation]:
        """Copies of the estimations, in the same order, with hidden stretches blind and
        cut away; each camera's nearest track is done first, so the farther tracks of a
        frame see the bodies of its nearer ones."""
        copies = []
        for estimation in estimations:
            copy = estimation_pb2.PositionEstimation()
            copy.CopyFrom(estimation)
            copies.append(copy)
        for copy in sorted(copies, key=self._nearness):
            self._apply(copy)
        return copies

    def _nearness(self, estimation: estimation_pb2.PositionEstimation) -> tuple[str, int]:
        camera = self.visibility.cameras.get(estimation.camera_id)
        order = camera.nearest_first if camera is not None else []
        track = estimation.covered.track_id
        return estimation.camera_id, order.index(track) if track in order else len(order)

    def _apply(self, estimation: estimation_pb2.PositionEstimation) -> None:
        camera = self.visibility.cameras.get(estimation.camera_id)
        if camera is None:
            return
        track, covered = estimation.covered.track_id, estimation.covered
        seen = self._seen.setdefault(estimation.camera_id, {})
        hidden = [
            (max(a, covered.start_m), min(b, covered.end_m))
            for a, b in camera.hidden(track, seen)
            if b > covered.start_m and a < covered.end_m
        ]
        if hidden:
            _cut_away(estimation, hidden)
            for a, b in hidden:
                estimation.blind.add(start_m=a, end_m=b, kind=HIDDEN)
        seen[track] = [(i.start_m, i.end_m) for i in estimation.intervals]


def _cut_away(estimation: estimation_pb2.PositionEstimation, hidden: list[Span]) -> None:
    """Keep the parts of each interval outside the hidden stretches; ends made there are cut."""
    kept = []
    for interval in estimation.intervals:
        for a, b in subtract_spans([(interval.start_m, interval.end_m)], hidden):
            if b - a < MIN_PIECE_M:
                continue
            piece = estimation_pb2.OccupiedInterval()
            piece.CopyFrom(interval)
            piece.start_m, piece.end_m = a, b
            if a > interval.start_m:
                piece.start_kind = CUT
            if b < interval.end_m:
                piece.end_kind = CUT
            kept.append(piece)
    del estimation.intervals[:]
    estimation.intervals.extend(kept)
