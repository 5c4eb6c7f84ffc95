"""The twin's layout and day: deterministic by seed, physically possible, covered by cameras."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta, timezone

import numpy as np
import pytest

from locowatch.facility import FacilityGeometry
from sim.fleet import SERIES
from sim.layout import LayoutSpec, TwinLayout, build_layout, family_spec
from sim.scenario import MIN_GAP_M, Scenario, ScenarioSpec, build_scenario, recent_start


@pytest.fixture(scope="module")
def layout() -> TwinLayout:
    return build_layout(seed=0)


@pytest.fixture(scope="module")
def scenario(layout: TwinLayout) -> Scenario:
    return build_scenario(layout.config, seed=0)


def _snapshot(scenario: Scenario, t: float) -> list[tuple[str, str, float, float]]:
    return [
        (s.loco.loco_id, s.track, round(s.tail_m, 6), round(s.head_m, 6)) for s in scenario.at(t)
    ]


def test_same_seed_same_day_other_seed_other_day(layout: TwinLayout, scenario: Scenario) -> None:
    again = build_scenario(build_layout(seed=0).config, seed=0)
    other = build_scenario(layout.config, seed=1)
    times = np.arange(0, 600, 7.3)
    assert [_snapshot(again, t) for t in times] == [_snapshot(scenario, t) for t in times]
    assert [_snapshot(other, t) for t in times] != [_snapshot(scenario, t) for t in times]
    assert build_layout(seed=0).config == layout.config


def test_layout_is_a_depot_worth_watching(layout: TwinLayout) -> None:
    config = layout.config
    assert len(config.tracks) == 4
    assert all(120 <= t.length_m <= 200 for t in config.tracks)
    assert all(3 <= len(config.stations_on(t.id)) <= 5 for t in config.tracks)
    for track in config.tracks:
        spans = sorted(
            (v.start_m, v.end_m) for c in config.cameras for v in c.views if v.track == track.id
        )
        assert spans[0][0] <= 1.5 and spans[-1][1] >= track.length_m - 0.5
        for (_, end), (start, _) in itertools.pairwise(spans):
            assert start < end, f"{track.id}: nothing sees {end}..{start}"
        # no camera sees a whole locomotive of the longer series
        assert max(e - s for s, e in spans) < max(s.length_m for s in SERIES)


@pytest.mark.parametrize("family", ["along", "across"])
def test_a_larger_sensor_sees_the_same_depot_with_more_pixels(family: str) -> None:
    """Cameras drawn from 720p and 1440p sensors: the same poses, lenses and views as the
    720p depot, each point of the scene landing at the same place scaled to the sensor
    (a plate 8 px tall at 720p is 16 px at 1440p)."""
    base = build_layout(7, family_spec(family))  # type: ignore[arg-type]
    mixed = build_layout(7, family_spec(family, resolutions=("720p", "1440p")))  # type: ignore[arg-type]
    widths = {c.resolution.width for c in mixed.config.cameras}
    assert widths == {1280, 2560}
    point = np.array([[20.0, 0.0, 2.0], [40.0, 6.0, 3.5]])
    for old, new in zip(base.config.cameras, mixed.config.cameras, strict=True):
        assert (old.views, old.pose) == (new.views, new.pose)
        scale = new.resolution.width / old.resolution.width
        old_px = FacilityGeometry(base.config).cameras[old.id].project(point)
        new_px = FacilityGeometry(mixed.config).cameras[new.id].project(point)
        np.testing.assert_allclose(new_px, old_px * scale, rtol=1e-6, atol=1e-6)
    assert LayoutSpec().resolutions == ("720p",)


def test_installer_calibration_solves_close_to_the_true_pose(layout: TwinLayout) -> None:
    truth = FacilityGeometry(layout.config)
    surveyed = layout.installer_config(np.random.default_rng(5))
    assert all(c.pose is None and c.point_pairs for c in surveyed.cameras)
    solved = FacilityGeometry(surveyed)
    for camera_id, model in solved.cameras.items():
        assert model.pose_rms_px is not None and model.pose_rms_px < 0.8
        assert np.linalg.norm(model.position - truth.cameras[camera_id].position) < 0.15


def test_locomotives_never_overlap_and_keep_a_gap(scenario: Scenario) -> None:
    close = 0
    for t in np.arange(0.0, scenario.spec.duration_s, 0.25):
        states = scenario.at(float(t))
        ids = [s.loco.loco_id for s in states]
        assert len(ids) == len(set(ids)), f"a locomotive is in two places at {t}"
        for track in scenario.track_ids:
            on = sorted((s for s in states if s.track == track), key=lambda s: s.tail_m)
            for a, b in itertools.pairwise(on):
                gap = b.tail_m - a.head_m
                assert gap >= MIN_GAP_M - 1e-6, f"{a.loco.loco_id}/{b.loco.loco_id} at {t}: {gap}"
                close += gap <= 3.0
    assert close > 0, "the hard case (1-3 m apart) must occur"


def test_day_has_arrivals_departures_and_every_series(scenario: Scenario) -> None:
    seen_at = {t: {s.loco.loco_id for s in scenario.at(t)} for t in np.arange(0, 600, 1.0)}
    first, last = seen_at[0.0], seen_at[599.0]
    everyone = set().union(*seen_at.values())
    assert everyone - first, "nobody arrived"
    assert everyone - last, "nobody left"
    series = {s.loco.series.name for t in range(0, 600, 5) for s in scenario.at(float(t))}
    assert series == {s.name for s in SERIES}
    lengths = [s.length_m for s in SERIES]
    assert min(lengths) < 17.5 and max(lengths) > 39


def test_plates_are_unique_and_cyrillic(scenario: Scenario) -> None:
    plates = [loco.plate for loco in scenario.fleet]
    assert len(plates) == len(set(plates))
    assert all(any("А" <= ch <= "я" for ch in p) for p in plates)


def test_short_scenario_spec_is_respected(layout: TwinLayout) -> None:
    short = build_scenario(layout.config, seed=3, spec=ScenarioSpec(duration_s=60))
    assert short.times[-1] == pytest.approx(60)
    assert short.at(30.0)


def _utc(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 12, day, hour, minute, tzinfo=UTC)


@pytest.mark.parametrize(
    ("now", "span_s", "start"),
    [
        # a whole day fits between the day before's 05:00 in Moscow and now
        (_utc(6, 2, 28), 86_400.0, _utc(5, 2)),
        # a minute before 02:00 UTC, yesterday's 02:00 is less than a day back
        (_utc(6, 1, 59), 86_400.0, _utc(4, 2)),
        # a short scenario may start this morning, if it has ended by now
        (_utc(6, 2, 10), 600.0, _utc(6, 2)),
        (_utc(6, 2, 9), 600.0, _utc(5, 2)),
        # any time zone in, UTC out
        (datetime(2026, 12, 6, 8, 0, tzinfo=timezone(timedelta(hours=3))), 600.0, _utc(6, 2)),
    ],
)
def test_a_recent_start_is_the_latest_morning_the_span_ends_after(
    now: datetime, span_s: float, start: datetime
) -> None:
    assert recent_start(now, span_s) == start
    assert recent_start(now, span_s).tzinfo == UTC


@pytest.mark.calendar
def test_the_default_day_lies_in_the_recent_past_whatever_the_date() -> None:
    """Never past a database's retention, never refused as from the future."""
    spec = ScenarioSpec(duration_s=6 * 3600)
    age = datetime.now(UTC) - spec.start_time
    assert timedelta(days=1) <= age < timedelta(days=2)
    assert (spec.start_time.hour, spec.start_time.minute) == (2, 0)  # 05:00 in Moscow
