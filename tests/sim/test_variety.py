"""The varied twin: families of locomotives, liveries, plates and halls, and leaving one out."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from locowatch.cli import cli
from sim.datasets import plate_shows
from sim.faults import NO_FAULTS
from sim.fleet import SERIES
from sim.layout import LayoutSpec
from sim.render import Lighting
from sim.scenario import ScenarioSpec
from sim.scene import locomotive_solids, plates_of
from sim.twin import Twin, TwinSpec
from sim.variety import (
    BUILDS,
    GEOMETRY_FAMILIES,
    HALL_FAMILIES,
    KNOWN_BUILDS,
    PLATE_FAMILIES,
    UNKNOWN_SERIES,
    VarietySpec,
    catalogue,
    draw_hall,
    family_of,
    series_pool,
    varied_fleet,
)

ALL = VarietySpec.parse("all")


def varied(seed: int = 1, variety: VarietySpec = ALL, **layout: object) -> Twin:
    return Twin(
        TwinSpec(
            seed=seed,
            layout=LayoutSpec(**layout),  # type: ignore[arg-type]
            scenario=ScenarioSpec(duration_s=600),
            faults=NO_FAULTS,
            variety=variety,
        )
    )


def test_the_default_twin_is_the_classic_one() -> None:
    assert VarietySpec().classic and VarietySpec.parse("classic") == VarietySpec()
    twin = Twin(TwinSpec(seed=1, scenario=ScenarioSpec(duration_s=600)))
    assert all(loco.look is None for loco in twin.scenario.fleet)
    assert twin.hall == draw_hall(1, VarietySpec())


def test_every_catalogue_series_has_a_build_and_lengths_span_real_ones() -> None:
    lengths = [s.length_m for s in (*UNKNOWN_SERIES,)] + [
        loco.series.length_m for loco in varied_fleet(0, 60, ALL)
    ]
    assert min(lengths) < 13 and max(lengths) > 39
    assert set(KNOWN_BUILDS) | {s.name for s in UNKNOWN_SERIES} == set(BUILDS)
    assert {b.family for b in BUILDS.values()} == set(GEOMETRY_FAMILIES)


@pytest.mark.parametrize("family", GEOMETRY_FAMILIES)
def test_a_geometry_family_left_out_never_appears(family: str) -> None:
    """Leave-one-family-out: the training spec never draws it, the held-out spec only it."""
    train = replace(ALL, series=("known", "unknown", "other")).without("geometry", family)
    for seed in range(4):
        fleet = varied_fleet(seed, 24, train)
        assert all(family_of(loco.series) != family for loco in fleet)
    held_out = replace(train, geometry=(family,))
    assert {family_of(loco.series) for loco in varied_fleet(7, 24, held_out)} == {family}


def test_unknown_series_are_never_the_known_six() -> None:
    fleet = varied_fleet(3, 24, replace(ALL, series=("unknown",)))
    assert {loco.series.name for loco in fleet} <= {s.name for s in UNKNOWN_SERIES}


def test_plates_stand_where_their_place_says() -> None:
    """Each plate family puts the number where real depots do, with the section letter on
    two-section units, and at least one plate on every locomotive."""
    twin = varied(seed=2)
    axis = twin.layout.axis(twin.facility.tracks[0].id)
    seen: set[str] = set()
    for loco in twin.scenario.fleet:
        assert loco.look is not None
        plates = plates_of(locomotive_solids(loco, axis, 10.0), axis)
        assert plates, loco
        series = loco.series
        texts = {series.plate(loco.number, k if series.sections > 1 else None) for k in range(2)}
        assert {p.text for p in plates} <= texts
        for place in loco.look.plates:
            seen.add(place.place)
        head = 10.0 + series.length_m
        for plate in plates:
            on_end = plate.end_m - plate.start_m < 0.1
            if on_end:  # across an end face: at one of the two ends
                assert min(abs(plate.start_m - 10.0), abs(plate.start_m - head)) < 3.0
                assert plate.bottom_m >= 0.85 - 1e-6
            else:
                assert 10.0 < plate.start_m < plate.end_m < head
    assert seen == set(PLATE_FAMILIES)


@pytest.mark.parametrize("renderer", ["painter", "gl"])
def test_a_varied_plate_shows_in_the_frame(renderer: str) -> None:
    """The plates a varied locomotive carries are drawn where a camera can see them, by
    both renderers."""
    twin = Twin(replace(varied(seed=1).spec, renderer=renderer))  # type: ignore[arg-type]
    shown = []
    for camera in twin.camera_ids[:4]:
        renderer_ = twin.renderer(camera)
        for t in (120.0, 300.0):
            for solid_plate in plates_of(twin.solids(renderer_, t), _axis_of(twin, camera)):
                shown.append(plate_shows(twin, camera, t, solid_plate))
            if any(s > 0.8 for s in shown):
                return
    pytest.fail(f"no plate shows in the first four cameras: {shown}")


def _axis_of(twin: Twin, camera_id: str):  # type: ignore[no-untyped-def]
    camera = next(c for c in twin.facility.cameras if c.id == camera_id)
    return twin.layout.axis(camera.views[0].track)


def test_a_varied_locomotive_looks_unlike_its_classic_box() -> None:
    """Same day, same series and place: the detailed build differs from the painted box
    (wheels, louvres, windows) over much of its outline."""
    classic = Twin(TwinSpec(seed=1, scenario=ScenarioSpec(duration_s=600), faults=NO_FAULTS))
    camera = classic.camera_ids[1]
    renderer = classic.renderer(camera)
    track = classic.facility.cameras[1].views[0].track
    axis = renderer.axes[track]
    states = [s for t in range(60, 600, 60) for s in classic.scenario.at(float(t))]
    state = max(
        (s for s in states if s.track == track),
        key=lambda s: (renderer.silhouette(locomotive_solids(s.loco, axis, s.tail_m)) > 127).mean(),
    )
    look = varied_fleet(1, 6, VarietySpec.parse("livery=plain,plates=cab-side"))[0].look
    detailed = replace(state.loco, look=look)
    light = Lighting.at_hour(12.0)
    box = renderer.render(locomotive_solids(state.loco, axis, state.tail_m), light, finish=False)
    built = renderer.render(locomotive_solids(detailed, axis, state.tail_m), light, finish=False)
    body = renderer.silhouette(locomotive_solids(state.loco, axis, state.tail_m)) > 127
    assert body.mean() > 0.05
    differs = np.abs(box.astype(np.int16) - built).max(axis=2) > 40
    assert differs[body].mean() > 0.2


def test_halls_differ_by_family() -> None:
    halls = {family: draw_hall(5, VarietySpec(hall=(family,))) for family in HALL_FAMILIES}
    assert halls["classic"] == draw_hall(5, VarietySpec())
    assert halls["bright"].floor[0] > halls["dark"].floor[0] + 40
    assert halls["marked"].crosses_every_m > 0 and halls["marked"].hatched_zones > 0
    twin = varied(seed=5, variety=VarietySpec(hall=("dark",)), family="across")
    frame = twin.frame(twin.camera_ids[0], 300.0)
    classic = Twin(replace(twin.spec, variety=VarietySpec())).frame(twin.camera_ids[0], 300.0)
    assert frame is not None and classic is not None
    assert frame.mean() < classic.mean() - 10


def test_variety_specs_parse_and_refuse_what_they_do_not_know() -> None:
    spec = VarietySpec.parse("geometry=hood+centre,plates=end-low,series=any")
    assert spec.geometry == ("hood", "centre") and spec.plates == ("end-low",)
    assert spec.livery == ALL.livery and spec.series == ("known", "unknown", "other")
    with pytest.raises(ValueError, match="no family 'boxy'"):
        VarietySpec.parse("geometry=boxy")
    with pytest.raises(ValueError, match="unknown factor"):
        VarietySpec.parse("colour=red")
    with pytest.raises(ValueError, match="leaves no geometry"):
        VarietySpec(geometry=("hood",)).without("geometry", "hood")


def test_a_training_set_records_the_families_it_drew_from(tmp_path: Path) -> None:
    out = tmp_path / "set"
    result = CliRunner().invoke(
        cli,
        [
            "sim", "dataset", "--out", str(out), "--seed", "4", "--duration", "60",
            "--every", "30", "--cameras", "1", "--jobs", "1", "--kinds", "model",
            "--family", "across", "--variety", "geometry=carbody+streamlined,hall=marked",
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["camera_family"] == "across" and manifest["hall"] == "marked"
    assert manifest["variety"]["geometry"] == ["carbody", "streamlined"]
    assert manifest["variety"]["ranges"]["length_m"] == [12.0, 40.0]
    assert {family_of_name(n) for n in manifest["series"]} <= {"carbody", "streamlined"}
    bad = CliRunner().invoke(cli, ["sim", "dataset", "--out", str(out), "--variety", "x=y"])
    assert bad.exit_code == 2 and "unknown factor" in bad.output


def family_of_name(name: str) -> str:
    return BUILDS[name].family


def test_other_series_are_built_at_random_and_never_a_real_one() -> None:
    """The ``other`` pool: series nobody built, the same for the same seed, different for
    another; what a series classifier's "unknown" learns from, so that the real unknown
    series stay unseen."""
    spec = VarietySpec.parse("series=other")
    first = catalogue(spec, seed=3)
    assert first == catalogue(spec, seed=3) and first != catalogue(spec, seed=4)
    real = {s.name for s in SERIES} | {s.name for s in UNKNOWN_SERIES}
    assert all(series_pool(s.name) == "other" and s.name not in real for s in first)
    assert {family_of(s) for s in first} == set(GEOMETRY_FAMILIES)
    assert all(12.0 <= s.length_m <= 40.0 for s in first)
    assert series_pool("ТЭМ18") == "known" and series_pool("ЧС2") == "unknown"
    fleet = varied_fleet(3, 12, spec)
    twin_axis = varied(seed=3).layout.axis("T1")
    assert all(plates_of(locomotive_solids(loco, twin_axis, 5.0), twin_axis) for loco in fleet)
    # a worn unit whose cab leaves little side for grime (ХПТ53 of seed 9) is still built
    assert all(locomotive_solids(loco, twin_axis, 5.0) for loco in varied_fleet(9, 8, spec))


def test_daylight_patches_light_the_floor_not_what_stands_on_it() -> None:
    """Sun patches and a varied hall's windows light only the bare hall where it shows: a
    locomotive standing in a patch is not striped by it."""
    from sim.render import CameraRenderer
    from sim.scene import track_box
    from sim.variety import HallLook

    twin = varied(seed=1)
    far = max(twin.facility.tracks, key=lambda t: t.origin[1])  # patches lie near that wall
    index = next(i for i, c in enumerate(twin.facility.cameras) if c.views[0].track == far.id)
    camera, track = twin.facility.cameras[index].id, far.id
    lit, plain = (
        HallLook(family="bright", floor=(170, 170, 165), sun_patches=sun) for sun in (True, False)
    )
    renderers = [
        CameraRenderer(twin.geometry.cameras[camera], twin.facility, seed=3, hall=h)
        for h in (lit, plain)
    ]
    axis = renderers[0].axes[track]
    view = twin.facility.cameras[index].views[0]
    body = track_box(
        axis, (view.start_m, view.start_m + 12.0), (-1.6, 1.6), (0.0, 4.5), (90, 60, 40)
    )
    noon = Lighting.at_hour(12.0)
    frames = [r.render([body], noon, np.random.default_rng(0)).astype(np.int16) for r in renderers]
    inside = renderers[0].silhouette([body]) > 127
    inside = cv2.erode(inside.astype(np.uint8), np.ones((15, 15), np.uint8)) > 0
    differs = np.abs(frames[0] - frames[1]).max(axis=2) > 12
    assert inside.sum() > 5000
    assert differs[inside].mean() < 0.01  # the body is the same with or without sun
    assert differs[~inside].mean() > 0.03  # the floor shows the patches
