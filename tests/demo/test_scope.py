"""What part of the depot a demo runs (``demo.scope``)."""

from __future__ import annotations

from demo.scope import DemoScope, choose_cameras, coverage, scoped_facility
from locowatch.facility.config import FacilityConfig
from sim.layout import family_spec
from sim.twin import Twin, TwinSpec


def test_a_track_its_cameras_see_only_part_of_ends_in_a_door_where_they_stop() -> None:
    """16 of a roof track's 26 cameras see it to 146 m of 180: the demo's gateway and FSE
    get a track that ends there in a door, so a locomotive driving on past the last camera
    leaves the demo, as the truth (clipped to those metres) says, instead of being kept
    in track no camera of the demo watches."""
    depot = Twin(TwinSpec(seed=104, layout=family_spec("roof"))).facility
    tracks, cameras = choose_cameras(depot, 16)
    covered = coverage(depot, tracks, cameras)
    scope = DemoScope(tuple(tracks), tuple(cameras), covered, (0.0, 60.0))
    track = next(t for t in depot.tracks if t.id == tracks[0])
    assert covered[track.id][1] < track.length_m

    scoped = FacilityConfig.model_validate(scoped_facility(depot, scope).model_dump())
    cut = next(t for t in scoped.tracks if t.id == track.id)
    assert cut.length_m == covered[track.id][1]
    assert "end" in cut.doors and ("start" in cut.doors) == ("start" in track.doors)
    assert all(s.end_m <= cut.length_m for s in scoped.stations if s.track == cut.id)
    kept = {s.id for s in scoped.stations if s.track == cut.id}
    assert kept == {s.id for s in depot.stations if s.track == cut.id and s.start_m < cut.length_m}
    assert [c.id for c in scoped.cameras] == list(cameras)


def test_the_cameras_keep_their_views_of_the_tracks_in_front() -> None:
    """A wall camera looking at the far track sees the near ones in front of it: the
    gateway keeps those views (and their tracks, whole), so that it sees the bodies there
    and what they hide, as at a depot where every view is configured."""
    depot = Twin(TwinSpec(seed=105, layout=family_spec("across"))).facility
    tracks, cameras = choose_cameras(depot, 16)
    scope = DemoScope(tuple(tracks), tuple(cameras), coverage(depot, tracks, cameras), (0, 60))
    scoped = FacilityConfig.model_validate(scoped_facility(depot, scope).model_dump())
    original = {c.id: c for c in depot.cameras}
    assert all(c.views == original[c.id].views for c in scoped.cameras)
    viewed = {v.track for c in scoped.cameras for v in c.views}
    assert viewed - set(tracks), "the across family's cameras see more than the scope's track"
    assert {t.id for t in scoped.tracks} == viewed | set(tracks)


def test_whole_tracks_keep_their_length_and_doors() -> None:
    depot = Twin(TwinSpec(seed=104, layout=family_spec("across"))).facility
    tracks, cameras = choose_cameras(depot, 16)
    scope = DemoScope(tuple(tracks), tuple(cameras), coverage(depot, tracks, cameras), (0, 60))
    scoped = scoped_facility(depot, scope)
    for track in scoped.tracks:
        assert track == next(t for t in depot.tracks if t.id == track.id)


def test_a_locomotive_leaving_past_the_last_camera_counts_either_way() -> None:
    """Truth clipped where the demo's cameras stop (its track's door there): one driving
    out through it, no longer seen, may already have left the state."""
    from demo.scoring import _clipped
    from sim.evaluation import evaluate, snapshot_from_record

    scope = DemoScope(("T1",), ("cam-06",), {"T1": (0.0, 146.0)}, (0.0, 60.0))
    leaving = {"id": "L020", "track": "T1", "tail_m": 137.2, "head_m": 174.1,
               "cameras": [], "seen_m": 0.0}  # fmt: skip
    standing = {"id": "L002", "track": "T1", "tail_m": 99.4, "head_m": 116.3,
                "cameras": ["cam-06"], "seen_m": 16.9}  # fmt: skip
    clipped = _clipped(leaving, scope)
    assert clipped is not None and clipped["head_m"] == 146.0 and clipped["in_door"]
    assert _clipped({**leaving, "tail_m": 150.0}, scope) is None
    truth = snapshot_from_record({"time": 1.0, "locomotives": [clipped, _clipped(standing, scope)]})
    state = {"id": "fse-2", "track": "T1", "tail_m": 99.6, "head_m": 115.7}
    without = snapshot_from_record({"time": 1.0, "locomotives": [state]})
    assert evaluate([truth], [without]).count_exact == 1.0
    in_sight = {**clipped, "seen_m": 8.8, "cameras": ["cam-06"]}
    seen = snapshot_from_record({"time": 1.0, "locomotives": [in_sight, _clipped(standing, scope)]})
    assert evaluate([seen], [without]).count_exact == 0.0  # seen there, so it must count
