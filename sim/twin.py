"""The facility twin: one object that knows the depot, its day, and what each camera shows.

``Twin(seed)`` builds the layout, the scenario, the occluders and the fault plan; then
``frame(camera_id, t)`` renders what that camera delivers at scenario time ``t`` (or
None during a dropout) and ``truth(t)`` says where every locomotive really is.
Frames are reproducible: each one draws its noise from (seed, camera, frame time).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field, replace
from functools import cache, cached_property, lru_cache
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from locowatch.facility.config import FacilityConfig, TrackView
from locowatch.facility.geometry import FacilityGeometry, FloatArray, TrackAxis
from locowatch.facility.rectify import BODY_HALF_WIDTH_M
from locowatch.facility.visibility import (
    GRID_M,
    FacilityVisibility,
    Span,
    flag_spans,
    merge_spans,
    subtract_spans,
)
from locowatch.models.attributes import large_enough_to_read
from sim.faults import FaultPlan, FaultSpec
from sim.layout import LayoutSpec, TwinLayout, build_layout
from sim.render import CameraRenderer, Finish, Lighting, hall_columns
from sim.scenario import LocoState, Scenario, ScenarioSpec, build_scenario
from sim.scene import PlatePlacement, Solid, faces_in, locomotive_solids, make_props, plates_of
from sim.variety import VarietySpec, draw_hall, varied_fleet

if TYPE_CHECKING:
    from sim.gl_render import GlCanvas

# How frames are drawn: the hand-written painter's renderer (sim/render.py), or its canvas
# step on OpenGL (sim/gl_render.py, docs/twin.md "Renderer").
RendererKind = Literal["painter", "gl"]

MIN_BLIND_M = 0.5


@dataclass(frozen=True)
class TwinSpec:
    seed: int = 0
    layout: LayoutSpec = field(default_factory=LayoutSpec)
    scenario: ScenarioSpec = field(default_factory=ScenarioSpec)
    faults: FaultSpec = field(default_factory=FaultSpec)
    renderer: RendererKind = "painter"
    # which families of locomotives, liveries, plates and halls the twin draws from
    # (sim/variety.py); the default is the classic twin
    variety: VarietySpec = field(default_factory=VarietySpec)


class Twin:
    def __init__(self, spec: TwinSpec | None = None) -> None:
        self.spec = spec or TwinSpec()
        seed = self.spec.seed
        self.layout: TwinLayout = build_layout(seed, self.spec.layout)
        self.facility: FacilityConfig = self.layout.config
        variety = self.spec.variety
        fleet = (
            None if variety.classic else varied_fleet(seed, self.spec.scenario.fleet_size, variety)
        )
        self.scenario: Scenario = build_scenario(self.facility, seed, self.spec.scenario, fleet)
        self.hall = draw_hall(seed, variety)
        self.geometry = FacilityGeometry(self.facility)  # true poses
        self.props = make_props(self.facility, np.random.default_rng([seed, 1]))
        self.faults = FaultPlan.draw(
            [c.id for c in self.facility.cameras],
            self.spec.scenario.duration_s,
            np.random.default_rng([seed, 2]),
            self.spec.faults,
        )
        self._renderers: dict[str, CameraRenderer] = {}
        self._canvases: dict[str, GlCanvas] = {}
        self._camera_index = {c.id: i for i, c in enumerate(self.facility.cameras)}

    @property
    def camera_ids(self) -> list[str]:
        return [c.id for c in self.facility.cameras]

    def renderer(self, camera_id: str) -> CameraRenderer:
        if camera_id not in self._renderers:
            index = self._camera_index[camera_id]
            finish = Finish(jpeg_quality=60 + (index * 7) % 30, noise_night=self.hall.night_noise)
            self._renderers[camera_id] = CameraRenderer(
                self.geometry.cameras[camera_id],
                self.facility,
                finish,
                seed=self.spec.seed * 1000 + index,
                statics=tuple(self.props.static_solids(self.axes)),
                hall=self.hall,
            )
        return self._renderers[camera_id]

    def frame(self, camera_id: str, t: float) -> np.ndarray | None:
        """What the camera delivers at ``t``: a BGR image, or None while it is dropped out."""
        fault = self.faults.active(camera_id, t)
        if fault is not None and fault.kind == "dropout":
            return None
        if fault is not None and fault.kind == "freeze":
            t = fault.start_s  # the picture stopped changing when the freeze began
        rng = np.random.default_rng(
            [self.spec.seed, self._camera_index[camera_id], round(t * 1000)]
        )
        renderer = self.renderer(camera_id)
        light = Lighting.at_hour(self.scenario.hour_of_day(t))
        if fault is not None and fault.kind == "black":
            return renderer.render([], light, rng, black=True)
        return self.draw(camera_id, self.solids(renderer, t), light, rng)

    def draw(
        self,
        camera_id: str,
        solids: list[Solid],
        light: Lighting,
        rng: np.random.Generator | None = None,
        finish: bool = True,
    ) -> np.ndarray:
        """The camera's image of ``solids``, with the renderer the spec names."""
        renderer = self.renderer(camera_id)
        if self.spec.renderer == "painter":
            return renderer.render(solids, light, rng, finish=finish)
        from sim.gl_render import GlCanvas, render_gl

        if camera_id not in self._canvases:
            self._canvases[camera_id] = GlCanvas(renderer)
        return render_gl(renderer, self._canvases[camera_id], solids, light, rng, finish)

    def solids(self, renderer: CameraRenderer, t: float) -> list[Solid]:
        """Everything that may be in the renderer's view at ``t``."""
        solids: list[Solid] = []
        for state in self.scenario.at(t):
            if renderer.sees(_bounding_box(self, state)):
                axis = renderer.axes[state.track]
                solids += locomotive_solids(state.loco, axis, state.tail_m, state.speed_mps)
        solids += [
            s
            for s in self.props.solids(self.facility, renderer.axes, t)
            if renderer.sees(s.corners.reshape(-1, 3))
        ]
        return solids

    @cached_property
    def axes(self) -> dict[str, TrackAxis]:
        """Every track's axis, by track id."""
        return {t.id: self.layout.axis(t.id) for t in self.facility.tracks}

    @cached_property
    def visibility(self) -> FacilityVisibility:
        """The product's visibility model on the true poses."""
        return FacilityVisibility(self.facility)

    def seen(
        self, camera_id: str, view: TrackView, states: list[LocoState]
    ) -> tuple[list[Span], list[tuple[float, float, bool]]]:
        """What ``camera_id`` really sees of ``view`` with these locomotives inside: the
        seen stretches, and the blind ones as (start, end, hidden) (the rest is out of view).

        Hidden is what the bodies on nearer tracks cover (``Shadow`` with the generic
        body size, a little more than a real body hides) and what the hall's columns
        cover; slivers under 0.5 m at a view's edge are not worth a blind span.
        """
        span = (view.start_m, view.end_m)
        camera = self.visibility.cameras[camera_id]
        out = self._out_of_view(camera_id, view)
        columns = self._behind_columns(camera_id, view)
        if view.track not in camera.shadows and not out and not columns:
            return [span], []  # the common case of cameras along a track: all of it seen
        near = {shadow.near_track for shadow in camera.shadows.get(view.track, [])}
        in_the_way = tuple(sorted((s.track, s.tail_m, s.head_m) for s in states if s.track in near))
        seen, blind = self._seen_past(camera_id, view, in_the_way)
        return list(seen), list(blind)

    @lru_cache(maxsize=8192)  # noqa: B019 (bodies stand still far more often than they move)
    def _seen_past(
        self, camera_id: str, view: TrackView, in_the_way: tuple[tuple[str, float, float], ...]
    ) -> tuple[tuple[Span, ...], tuple[tuple[float, float, bool], ...]]:
        """``seen`` with the bodies on the tracks that can hide ``view`` as (track, tail,
        head)."""
        span = (view.start_m, view.end_m)
        out = self._out_of_view(camera_id, view)
        bodies: dict[str, list[Span]] = {}
        for track, tail_m, head_m in in_the_way:
            bodies.setdefault(track, []).append((tail_m, head_m))
        camera = self.visibility.cameras[camera_id]
        behind = [h for h in camera.hidden(view.track, bodies) if h[1] > span[0] and h[0] < span[1]]
        columns = self._behind_columns(camera_id, view)
        hidden = subtract_spans(merge_spans(behind + columns), out)
        hidden = [(max(a, span[0]), min(b, span[1])) for a, b in hidden]
        blind = [(a, b, False) for a, b in out] + [(a, b, True) for a, b in hidden]
        return tuple(subtract_spans([span], out + hidden)), tuple(sorted(blind))

    @cache  # noqa: B019 (a twin lives as long as its process uses it)
    def _out_of_view(self, camera_id: str, view: TrackView) -> list[Span]:
        span = (view.start_m, view.end_m)
        low = self.visibility.track(camera_id, view.track).low_spans(span)
        return [b for b in subtract_spans([span], low) if b[1] - b[0] >= MIN_BLIND_M]

    @cache  # noqa: B019 (a twin lives as long as its process uses it)
    def _behind_columns(self, camera_id: str, view: TrackView) -> list[Span]:
        position = self.geometry.cameras[camera_id].position
        columns = hall_columns(self.facility, self.axes, position, self.hall)
        corners = [c.corners.reshape(-1, 3) for c in columns]
        return column_shadows(position, self.axes[view.track], (view.start_m, view.end_m), corners)

    def truth(self, t: float, camera_ids: Collection[str] | None = None) -> dict[str, Any]:
        """The ground truth record of scenario time ``t`` (one line of ground_truth.jsonl);
        with ``camera_ids``, what those cameras see (a run that streams only some)."""
        records = []
        states = self.scenario.at(t)
        for state in sorted(states, key=lambda s: (s.track, s.tail_m)):
            records.append(
                {
                    "id": state.loco.loco_id,
                    "track": state.track,
                    "tail_m": round(state.tail_m, 3),
                    "head_m": round(state.head_m, 3),
                    "series": state.loco.series.name,
                    "plate": state.loco.plate,
                    "speed_mps": round(state.speed_mps, 3),
                    "station": self.facility.station_of(state.track, state.tail_m, state.head_m),
                    **self.sightings(state, t, states, camera_ids),
                }
            )
        return {
            "t": round(t, 3),
            "time": self.scenario.clock(t).isoformat(),
            "locomotives": records,
        }

    def sightings(
        self,
        state: LocoState,
        t: float,
        states: list[LocoState] | None = None,
        camera_ids: Collection[str] | None = None,
    ) -> dict[str, Any]:
        """``cameras``: those that deliver a live image and see part of the body (in
        their view of its track, in frame, not hidden behind a body on a nearer track);
        ``seen_m``: the longest stretch of the body one of them sees; ``plate_cameras``:
        those of them that show one of its plates whole and large enough to read."""
        seeing, longest, reading = [], 0.0, []
        states = self.scenario.at(t) if states is None else states
        plates = self.plates(state)
        for camera in self.facility.cameras:
            if camera_ids is not None and camera.id not in camera_ids:
                continue
            fault = self.faults.active(camera.id, t)
            if fault is not None:
                continue
            for view in camera.views:
                if view.track != state.track:
                    continue
                seen, _ = self.seen(camera.id, view, states)
                parts = [min(b, state.head_m) - max(a, state.tail_m) for a, b in seen]
                if any(part > 0 for part in parts):
                    seeing.append(camera.id)
                    longest = max(longest, *parts)
                    if self._shows_one(camera.id, plates, seen, state, states):
                        reading.append(camera.id)
        return {"cameras": seeing, "seen_m": round(longest, 2), "plate_cameras": reading}

    def plates(self, state: LocoState) -> list[PlatePlacement]:
        """The plates of a locomotive where it stands (built once, then moved along)."""
        axis = self.axes[state.track]
        shift = np.array([*axis.direction, 0.0]) * state.tail_m
        return [
            replace(
                p,
                start_m=p.start_m + state.tail_m,
                end_m=p.end_m + state.tail_m,
                corners=p.corners + shift,
            )
            for p in self._plates_at_zero(state.loco.loco_id, state.track)
        ]

    @cache  # noqa: B019 (a twin lives as long as its process uses it)
    def _plates_at_zero(self, loco_id: str, track: str) -> tuple[PlatePlacement, ...]:
        loco = next(loco for loco in self.scenario.fleet if loco.loco_id == loco_id)
        axis = self.axes[track]
        return tuple(plates_of(locomotive_solids(loco, axis, 0.0), axis))

    def _shows_one(
        self,
        camera_id: str,
        plates: list[PlatePlacement],
        seen: list[Span],
        state: LocoState,
        states: list[LocoState],
    ) -> bool:
        """Whether the camera shows one of the plates whole and large enough to read: in
        frame, facing it, in a stretch it sees (a plate on an end face: with no other body
        on the track between it and the camera). People and the crane hook are not judged."""
        # the cheap tests first (most plates are out of a camera's seen stretches), then
        # one projection of the plates left (cv2's cost is mostly per call)
        camera = self.geometry.cameras[camera_id]
        left = [p for p in plates if self._in_seen_stretch(camera_id, p, seen, state, states)]
        if not left:
            return False
        pixels, inside = camera.image_points(np.concatenate([p.corners for p in left]))
        corners = pixels.reshape(len(left), 4, 2)
        whole = np.all(inside.reshape(len(left), 4), axis=1).tolist()
        return any(
            whole[k] and faces_in(corners[k]) and large_enough_to_read(*plate.size_in(corners[k]))
            for k, plate in enumerate(left)
        )

    def _in_seen_stretch(
        self,
        camera_id: str,
        plate: PlatePlacement,
        seen: list[Span],
        state: LocoState,
        states: list[LocoState],
    ) -> bool:
        if plate.on_side:
            return any(a <= plate.start_m and plate.end_m <= b for a, b in seen)
        if not any(a <= plate.start_m <= b for a, b in seen):
            return False
        metre = self._camera_metre(camera_id, state.track)
        lo, hi = sorted((plate.start_m, metre))
        others = (o for o in states if o.track == state.track and o is not state)
        return not any(o.tail_m < hi and o.head_m > lo for o in others)

    @cache  # noqa: B019 (a twin lives as long as its process uses it)
    def _camera_metre(self, camera_id: str, track: str) -> float:
        """Where along ``track`` the camera stands."""
        position = self.geometry.cameras[camera_id].position
        return float(self.axes[track].to_track(position)[0][0])


def _bounding_box(twin: Twin, state: LocoState) -> np.ndarray:
    axis = twin.layout.axis(state.track)
    half = state.loco.series.width_m / 2
    s = [state.tail_m, state.head_m]
    return axis.to_world(
        np.repeat(s, 4),
        np.tile(np.repeat([-half, half], 2), 2),
        np.tile([0.0, state.loco.series.height_m + 2.0], 4),  # pantographs stand above
    )


def column_shadows(
    camera: FloatArray, axis: TrackAxis, span: Span, columns: list[FloatArray]
) -> list[Span]:
    """Stretches of ``span`` that columns (their corners, world metres) hide from a camera.

    A column stands floor to roof, so it hides a metre of the track at every height when,
    seen from above, it stands on the line from the camera to the side of a body there
    nearest the camera; shadows under MIN_BLIND_M are slivers, not blind spans."""
    metres = np.arange(span[0] + GRID_M / 2, span[1], GRID_M)
    _, camera_lateral = axis.to_track(camera.reshape(1, 3))
    side = float(np.clip(camera_lateral[0], -BODY_HALF_WIDTH_M, BODY_HALF_WIDTH_M))
    points = axis.to_world(metres, np.full_like(metres, side), np.zeros_like(metres))
    rays = points[:, :2] - camera[:2]
    bearing, reach = np.arctan2(rays[:, 1], rays[:, 0]), np.hypot(rays[:, 0], rays[:, 1])
    hidden = np.zeros(len(metres), dtype=bool)
    for corners in columns:
        offsets = corners[:, :2] - camera[:2]
        ahead = float(np.hypot(offsets[:, 0], offsets[:, 1]).min())
        middle = float(np.arctan2(*offsets.mean(axis=0)[::-1]))
        turns = _wrapped(np.arctan2(offsets[:, 1], offsets[:, 0]) - middle)
        along = _wrapped(bearing - middle)
        hidden |= (along >= turns.min()) & (along <= turns.max()) & (reach > ahead)
    return flag_spans(metres, hidden, span, min_m=MIN_BLIND_M)


def _wrapped(angles: FloatArray) -> FloatArray:
    return (angles + np.pi) % (2 * np.pi) - np.pi
