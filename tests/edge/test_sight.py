"""Position estimations say what a camera could not see: stretches behind nearer bodies."""

from __future__ import annotations

import pytest

from edge.estimators.sight import Sight
from locowatch.facility.config import FacilityConfig
from locowatch.facility.visibility import FacilityVisibility, Shadow
from locowatch.v1 import common_pb2, estimation_pb2
from sim.layout import build_layout, family_spec

REAL = estimation_pb2.END_KIND_REAL
HIDDEN = estimation_pb2.BLIND_KIND_HIDDEN


@pytest.fixture(scope="module")
def across() -> FacilityConfig:
    return build_layout(1, family_spec("across")).config


def _estimation(camera: str, track: str, covered: tuple[float, float],
                *intervals: tuple[float, float]) -> estimation_pb2.PositionEstimation:  # fmt: skip
    return estimation_pb2.PositionEstimation(
        camera_id=camera,
        covered=common_pb2.TrackSpan(track_id=track, start_m=covered[0], end_m=covered[1]),
        intervals=[
            estimation_pb2.OccupiedInterval(
                start_m=a, end_m=b, start_kind=REAL, end_kind=REAL, confidence=0.9
            )
            for a, b in intervals
        ],
    )


@pytest.fixture(scope="module")
def visibility(across: FacilityConfig) -> FacilityVisibility:
    return FacilityVisibility(across)


def _shadowed(
    across: FacilityConfig, visibility: FacilityVisibility
) -> tuple[str, str, str, Shadow, dict[str, tuple[float, float]]]:
    """A camera viewing a near and a far track, the shadow one casts on the other, and its
    views by track."""
    camera, near, far, shadow = next(
        (c.id, s.near_track, s.far_track, s)
        for c in across.cameras
        for shadows in visibility.cameras[c.id].shadows.values()
        for s in shadows
        if {v.track for v in c.views} >= {s.near_track, s.far_track}
    )
    views = {v.track: (v.start_m, v.end_m) for v in across.camera_by_id[camera].views}
    return camera, near, far, shadow, views


def test_a_far_track_behind_a_near_body_is_blind_and_its_phantom_cut(
    across: FacilityConfig, visibility: FacilityVisibility
) -> None:
    camera, near, far, shadow, views = _shadowed(across, visibility)
    body = (views[near][0] + 2.0, views[near][0] + 19.0)  # a locomotive on the near track
    (behind,) = shadow.hidden([body])[:1]
    behind = (max(behind[0], views[far][0]), min(behind[1], views[far][1]))
    assert behind[1] - behind[0] > 3.0
    middle = (behind[0] + behind[1]) / 2
    phantom = (middle - 1.0, middle + 1.0)  # the near body's side, read on the far strip
    far_estimation = _estimation(camera, far, views[far], phantom)
    near_estimation = _estimation(camera, near, views[near], body)

    # the far track's strip may come first in a batch: the near one is done first anyway
    out_far, out_near = Sight(visibility).apply([far_estimation, near_estimation])

    assert (out_far.covered.track_id, out_near.covered.track_id) == (far, near)
    assert list(out_far.intervals) == []  # the phantom was inside what is hidden
    blind = [(b.start_m, b.end_m, b.kind) for b in out_far.blind]
    assert any(a <= behind[0] + 0.3 and b >= behind[1] - 0.3 and k == HIDDEN for a, b, k in blind)
    assert list(out_near.blind) == [] and len(out_near.intervals) == 1
    assert len(far_estimation.intervals) == 1 and not far_estimation.blind  # copies changed


def test_a_body_reaching_out_from_behind_keeps_its_seen_part_with_a_cut_end(
    across: FacilityConfig, visibility: FacilityVisibility
) -> None:
    sight = Sight(visibility)
    camera, near, far, shadow, views = _shadowed(across, visibility)
    body = (views[near][0] + 2.0, views[near][0] + 19.0)
    sight.apply([_estimation(camera, near, views[near], body)])  # an earlier frame
    behind = shadow.hidden([body])[0]
    start = max(views[far][0], behind[0] - 6.0)
    reaching = (start, behind[0] + 2.0)  # a far body whose end is behind the near one
    (out,) = sight.apply([_estimation(camera, far, views[far], reaching)])
    (piece,) = out.intervals
    assert piece.start_m == pytest.approx(reaching[0])
    assert piece.end_m == pytest.approx(max(behind[0], views[far][0]), abs=1e-6)
    assert piece.start_kind == REAL and piece.end_kind == estimation_pb2.END_KIND_CUT
