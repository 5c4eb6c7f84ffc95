"""What stands in the depot at an instant, as convex solids the renderer can draw.

Every object is built from convex solids (boxes and wedges) whose faces carry a base
colour and decals (windows, livery stripes, plates). Convex solids need no depth sorting
inside themselves (back faces are culled); the renderer sorts solids far to near.

Positions are given in track terms (metres along, lateral offset, height) and turned into
world points with the track's axis, so the scene follows the facility config exactly.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from functools import cache, cached_property

import numpy as np

from locowatch.facility.config import FacilityConfig
from locowatch.facility.geometry import CameraModel, TrackAxis
from sim.fleet import SECTION_GAP_M, Colour, Locomotive, Series
from sim.plates import plate_texture

PLATE_LENGTH_M = 1.6
PLATE_HEIGHT_M = 0.4
DARK: Colour = (28, 28, 30)
WINDOW: Colour = (70, 55, 40)
BOGIE: Colour = (35, 38, 40)


@dataclass
class Decal:
    """A flat polygon on a face: filled with ``colour``, or ``texture`` mapped onto 4 corners.

    Texture corners run top-left, top-right, bottom-right, bottom-left as seen from outside.
    """

    corners: np.ndarray  # (k, 3) world
    colour: Colour | None = None
    texture: np.ndarray | None = None
    text: str | None = None  # what a textured decal reads (plates): the training label
    style: tuple[Colour, Colour, bool] | None = None  # plates: background, ink, border


@dataclass
class Face:
    corners: np.ndarray  # (k, 3) world, planar, in order around the polygon
    colour: Colour
    decals: list[Decal] = field(default_factory=list)


@dataclass
class Solid:
    """A convex solid; ``tag`` names what it belongs to (a locomotive id, 'person', ...).

    The renderer orders solids by the planes that separate them (see
    ``sim.render._painter_order``), so a solid needs no depth hint of its own.
    """

    faces: list[Face]
    tag: str
    velocity: np.ndarray | None = None  # world m/s, for motion blur

    def shifted(self, offset: np.ndarray, velocity: np.ndarray | None = None) -> Solid:
        """A copy moved by ``offset`` (world metres); textures are shared, not copied."""
        faces = [
            Face(
                face.corners + offset,
                face.colour,
                [
                    Decal(d.corners + offset, d.colour, d.texture, d.text, d.style)
                    for d in face.decals
                ],
            )
            for face in self.faces
        ]
        return Solid(faces, self.tag, velocity)

    @cached_property
    def corners(self) -> np.ndarray:
        """All face corners stacked: (faces, 4, 3). Every face of our solids is a quad."""
        return np.stack([f.corners for f in self.faces])

    @cached_property
    def centre(self) -> np.ndarray:
        return np.asarray(self.corners.reshape(-1, 3).mean(axis=0))


def track_box(
    axis: TrackAxis,
    s: tuple[float, float],
    lateral: tuple[float, float],
    z: tuple[float, float],
    colour: Colour,
    top: Colour | None = None,
    tag: str = "",
) -> Solid:
    """An axis-aligned box in track coordinates: metres ``s``, ``lateral``, heights ``z``."""
    (s0, s1), (d0, d1), (z0, z1) = s, lateral, z
    index = [(i, j, k) for i in (0, 1) for j in (0, 1) for k in (0, 1)]
    world = axis.to_world(
        [(s0, s1)[i] for i, _, _ in index],
        [(d0, d1)[j] for _, j, _ in index],
        [(z0, z1)[k] for _, _, k in index],
    )
    p = dict(zip(index, world, strict=True))

    def quad(
        a: tuple[int, int, int],
        b: tuple[int, int, int],
        c: tuple[int, int, int],
        d: tuple[int, int, int],
        col: Colour,
    ) -> Face:
        return Face(np.array([p[a], p[b], p[c], p[d]]), col)

    faces = [
        quad((0, 0, 0), (1, 0, 0), (1, 0, 1), (0, 0, 1), colour),  # right side (lateral d0)
        quad((0, 1, 0), (0, 1, 1), (1, 1, 1), (1, 1, 0), colour),  # left side (lateral d1)
        quad((0, 0, 0), (0, 0, 1), (0, 1, 1), (0, 1, 0), colour),  # low-metre end
        quad((1, 0, 0), (1, 1, 0), (1, 1, 1), (1, 0, 1), colour),  # high-metre end
        quad((0, 0, 1), (1, 0, 1), (1, 1, 1), (0, 1, 1), top or colour),  # top
        quad((0, 0, 0), (0, 1, 0), (1, 1, 0), (1, 0, 0), colour),  # bottom
    ]
    return Solid(faces, tag)


def nose_wedge(
    axis: TrackAxis,
    end_m: float,
    direction: int,
    width: float,
    z: tuple[float, float],
    depth: float,
    colour: Colour,
    top: Colour,
    tag: str,
) -> Solid:
    """A streamlined cab nose: full width, its top edge set back by ``depth`` metres."""
    z0, z1 = z
    w = width / 2
    back = end_m - direction * depth

    def pt(s: float, d: float, h: float) -> np.ndarray:
        return axis.to_world(s, d, h)[0]

    bottom_front = [pt(end_m, -w, z0), pt(end_m, w, z0)]
    low_front = [pt(end_m, -w, z0 + 0.45 * (z1 - z0)), pt(end_m, w, z0 + 0.45 * (z1 - z0))]
    bottom_back = [pt(back, -w, z0), pt(back, w, z0)]
    top_back = [pt(back, -w, z1), pt(back, w, z1)]
    faces = [
        Face(np.array([bottom_back[0], bottom_front[0], low_front[0], top_back[0]]), colour),
        Face(np.array([bottom_back[1], top_back[1], low_front[1], bottom_front[1]]), colour),
        Face(np.array([bottom_front[0], bottom_front[1], low_front[1], low_front[0]]), colour),
        Face(
            np.array([low_front[0], low_front[1], top_back[1], top_back[0]]),
            top,
            decals=[
                Decal(
                    np.array(
                        [
                            _lerp(low_front[0], top_back[0], 0.35),
                            _lerp(low_front[1], top_back[1], 0.35),
                            _lerp(low_front[1], top_back[1], 0.85),
                            _lerp(low_front[0], top_back[0], 0.85),
                        ]
                    ),
                    WINDOW,
                )
            ],
        ),
        Face(np.array([bottom_back[0], top_back[0], top_back[1], bottom_back[1]]), colour),
        Face(np.array([bottom_back[0], bottom_back[1], bottom_front[1], bottom_front[0]]), colour),
    ]
    return Solid(faces, tag)


def _lerp(a: np.ndarray | float, b: np.ndarray | float, w: float) -> np.ndarray:
    return np.asarray(a) + (np.asarray(b) - np.asarray(a)) * w


def locomotive_solids(
    loco: Locomotive, axis: TrackAxis, tail_m: float, speed_mps: float = 0.0
) -> list[Solid]:
    """The solids of a locomotive standing with its lower-metre end at ``tail_m``.

    A locomotive is built once per track at metre 0 and then shifted: building it (boxes,
    windows, plates) costs far more than moving its corners.
    """
    plain = loco if loco.painted is None else replace(loco, painted=None)  # one template
    template = _template(
        plain,
        axis.track_id,
        tuple(axis.origin),
        tuple(axis.direction),
        axis.length_m,
    )
    offset = np.append(axis.direction * tail_m, 0.0)
    velocity = np.append(axis.direction * speed_mps, 0.0)
    solids = [solid.shifted(offset, velocity) for solid in template]
    if loco.painted is not None:
        _paint_plates(solids, loco.painted)
    return solids


def _paint_plates(solids: list[Solid], text: str) -> None:
    """Paint ``text`` over the plates of shifted copies (whose decals are their own)."""
    for decal in plate_decals(solids):
        texture = plate_texture(text, *decal.style) if decal.style else plate_texture(text)
        decal.text, decal.texture = text, texture


@cache
def _template(
    loco: Locomotive,
    track_id: str,
    origin: tuple[float, ...],
    direction: tuple[float, ...],
    length_m: float,
) -> tuple[Solid, ...]:
    axis = TrackAxis(track_id, length_m, np.array(origin), np.array(direction))
    if loco.look is not None:
        from sim.locomotive import detailed_solids  # it builds on this module

        return tuple(detailed_solids(loco, loco.look, axis))
    series = loco.series
    solids: list[Solid] = []
    for section in range(series.sections):
        s0 = section * (series.section_length_m + SECTION_GAP_M)
        s1 = s0 + series.section_length_m
        outer_low = section == 0
        outer_high = section == series.sections - 1
        solids += _running_gear(axis, s0, s1, series.width_m, loco.loco_id)
        solids += _body(loco, axis, s0, s1, section, outer_low, outer_high)
    _end_plates(solids, loco, axis, 0.0)
    return tuple(solids)


END_PLATE_LENGTH_M = 1.2
END_PLATE_Z = (2.0, 2.3)


def _end_plates(solids: list[Solid], loco: Locomotive, axis: TrackAxis, tail_m: float) -> None:
    """Numbers on both outer end faces (cab fronts and hood ends), as real locomotives have.

    The plate goes on the outermost end face that spans the plate's height; its text reads
    left to right for someone standing in front of that end.
    """
    series = loco.series
    head_m = tail_m + series.length_m
    for direction, section in ((-1, 0), (1, series.sections - 1)):
        best: tuple[float, Face] | None = None
        for solid in solids:
            for face in solid.faces:
                s, _ = axis.to_track(face.corners)
                z = face.corners[:, 2]
                flat_across = s.max() - s.min() < 1e-6
                spans = z.min() <= END_PLATE_Z[0] and z.max() >= END_PLATE_Z[1]
                outward = (s.mean() - (tail_m + head_m) / 2) * direction > 0
                if flat_across and spans and outward:
                    reach = float(s.mean()) * direction
                    if best is None or reach > best[0]:
                        best = (reach, face)
        if best is None:
            continue
        s_face = best[0] * direction + direction * 0.01
        half = END_PLATE_LENGTH_M / 2
        left, right = (half, -half) if direction < 0 else (-half, half)
        z0, z1 = END_PLATE_Z
        corners = np.array(
            [
                axis.to_world(s_face, d, h)[0]
                for d, h in ((left, z1), (right, z1), (right, z0), (left, z0))
            ]
        )
        text = series.plate(loco.number, section if series.sections > 1 else None)
        best[1].decals.append(Decal(corners, texture=plate_texture(text), text=text))


def _running_gear(axis: TrackAxis, s0: float, s1: float, width: float, tag: str) -> list[Solid]:
    half = width / 2 - 0.25
    frame = track_box(axis, (s0, s1), (-width / 2, width / 2), (1.0, 1.35), DARK, tag=tag)
    bogies = [
        track_box(axis, (a, a + 3.2), (-half, half), (0.05, 1.0), BOGIE, tag=tag)
        for a in (s0 + 1.2, s1 - 4.4)
    ]
    return [frame, *bogies]


def _body(
    loco: Locomotive,
    axis: TrackAxis,
    s0: float,
    s1: float,
    section: int,
    outer_low: bool,
    outer_high: bool,
) -> list[Solid]:
    series, tag = loco.series, loco.loco_id
    w, h, base = series.width_m, series.height_m, 1.35
    plate = series.plate(loco.number, section if series.sections > 1 else None)
    if series.cab == "hood":
        cab = (s1 - 4.2, s1)  # one cab, at the head end
        hood = _hood(axis, (s0 + 0.4, cab[0]), h - 1.0, series, tag)
        return [hood, _cab_box(axis, cab, w, (base, h), series, tag, plate)]
    if series.cab == "centre":
        cab = (s0 + 0.62 * (s1 - s0), s0 + 0.62 * (s1 - s0) + 3.6)
        low = _hood(axis, (s0 + 0.4, cab[0]), h - 1.1, series, tag)
        high = _hood(axis, (cab[1], s1 - 0.4), h - 1.1, series, tag)
        return [low, _cab_box(axis, cab, w, (base, h), series, tag, plate), high]
    nose = 1.6 if series.cab == "streamlined" else 0.0
    b0 = s0 + (nose if outer_low else 0.0)
    b1 = s1 - (nose if outer_high else 0.0)
    body = track_box(axis, (b0, b1), (-w / 2, w / 2), (base, h), series.body, series.roof, tag)
    _stripe(
        body, axis, hood_side=-w / 2, s=(b0, b1), z=(base + 0.9, base + 1.2), colour=series.stripe
    )
    solids = [body]
    for is_outer, end, direction in ((outer_low, s0, -1), (outer_high, s1, 1)):
        if not is_outer:
            continue
        cab_edge = b1 if direction > 0 else b0
        _side_windows(body, axis, cab_edge, direction, w, (h - 1.55, h - 0.6))
        _plate(body, axis, cab_edge - direction * 3.2, w, base + 1.35, plate)
        if nose:
            solids.append(
                nose_wedge(axis, end, direction, w, (base, h), nose, series.body, series.roof, tag)
            )
        else:
            face = body.faces[3 if direction > 0 else 2]
            _end_windows(face, axis, end, w, (h - 1.55, h - 0.6))
    return solids


def _hood(
    axis: TrackAxis, span: tuple[float, float], top: float, series: Series, tag: str
) -> Solid:
    """The narrower, lower engine hood of a shunter, with its livery stripe."""
    side = -series.width_m / 2 + 0.3
    base = 1.35
    hood = track_box(axis, span, (side, -side), (base, top), series.body, series.roof, tag)
    _stripe(hood, axis, hood_side=side, s=span, z=(base + 0.5, base + 0.75), colour=series.stripe)
    return hood


def _cab_box(
    axis: TrackAxis,
    span: tuple[float, float],
    width: float,
    z: tuple[float, float],
    series: Series,
    tag: str,
    plate: str,
) -> Solid:
    cab = track_box(axis, span, (-width / 2, width / 2), z, series.body, series.roof, tag)
    _side_windows(
        cab,
        axis,
        span[1] - 0.3,
        1,
        width,
        (z[1] - 1.45, z[1] - 0.55),
        length=span[1] - span[0] - 0.6,
    )
    _plate(cab, axis, (span[0] + span[1]) / 2 + PLATE_LENGTH_M / 2, width, z[0] + 1.1, plate)
    return cab


def _stripe(
    solid: Solid,
    axis: TrackAxis,
    hood_side: float,
    s: tuple[float, float],
    z: tuple[float, float],
    colour: Colour,
) -> None:
    side = solid.faces[0]
    side.decals.append(Decal(_rect(axis, s, hood_side, z), colour))


def _side_windows(
    solid: Solid,
    axis: TrackAxis,
    cab_edge: float,
    direction: int,
    width: float,
    z: tuple[float, float],
    length: float = 1.6,
) -> None:
    """A cab side window just behind the cab end, on the camera (right) side."""
    a = cab_edge - direction * 0.4
    b = a - direction * length
    solid.faces[0].decals.append(Decal(_rect(axis, (min(a, b), max(a, b)), -width / 2, z), WINDOW))


def _end_windows(
    face: Face, axis: TrackAxis, end: float, width: float, z: tuple[float, float]
) -> None:
    for d0, d1 in ((-width / 2 + 0.25, -0.1), (0.1, width / 2 - 0.25)):
        corners = np.array(
            [
                axis.to_world(end, d, h)[0]
                for d, h in ((d0, z[0]), (d1, z[0]), (d1, z[1]), (d0, z[1]))
            ]
        )
        face.decals.append(Decal(corners, WINDOW))


def _plate(solid: Solid, axis: TrackAxis, end_s: float, width: float, z0: float, text: str) -> None:
    """A plate on the right side, its text running along growing metres (read from outside)."""
    s0 = min(end_s, end_s - PLATE_LENGTH_M)
    s1 = s0 + PLATE_LENGTH_M
    d = -width / 2 - 0.01
    z1 = z0 + PLATE_HEIGHT_M
    corners = np.array(
        [axis.to_world(s, d, h)[0] for s, h in ((s0, z1), (s1, z1), (s1, z0), (s0, z0))]
    )
    solid.faces[0].decals.append(Decal(corners, texture=plate_texture(text), text=text))


def _rect(
    axis: TrackAxis, s: tuple[float, float], lateral: float, z: tuple[float, float]
) -> np.ndarray:
    return np.array(
        [
            axis.to_world(si, lateral, zi)[0]
            for si, zi in ((s[0], z[0]), (s[1], z[0]), (s[1], z[1]), (s[0], z[1]))
        ]
    )


# -- the rest of the depot ----------------------------------------------------------------


@dataclass(frozen=True)
class Walker:
    """A worker pacing along a walkway beside a track."""

    track: str
    lateral: float
    start_m: float
    span_m: float
    speed_mps: float
    phase_s: float
    vest: Colour

    def position(self, t: float) -> float:
        period = 2 * self.span_m / self.speed_mps
        x = ((t + self.phase_s) % period) / period  # 0..1 over a round trip
        return self.start_m + self.span_m * (1 - abs(2 * x - 1))


@dataclass(frozen=True)
class Props:
    """Occluders of the depot: walkers, equipment and the overhead crane's hook."""

    walkers: list[Walker]
    equipment: list[tuple[str, float, float, float, float, Colour]]  # track, s, lateral, len, h
    crane_speed_mps: float
    crane_span_x: tuple[float, float]

    def solids(self, facility: FacilityConfig, axes: dict[str, TrackAxis], t: float) -> list[Solid]:
        out: list[Solid] = []
        for number, walker in enumerate(self.walkers):
            axis = axes[walker.track]
            s = walker.position(t)
            d = walker.lateral
            out.append(
                track_box(
                    axis,
                    (s - 0.22, s + 0.22),
                    (d - 0.15, d + 0.15),
                    (0.0, 1.45),
                    walker.vest,
                    tag=f"person-{number}",
                )
            )
            out.append(
                track_box(
                    axis,
                    (s - 0.11, s + 0.11),
                    (d - 0.11, d + 0.11),
                    (1.47, 1.72),
                    (120, 150, 190),
                    tag=f"person-{number}",
                )
            )
        out += self._crane(facility, t)
        return out

    def static_solids(self, axes: dict[str, TrackAxis]) -> list[Solid]:
        """Equipment beside the tracks: it never moves."""
        out: list[Solid] = []
        for number, (track, s, d, length, height, colour) in enumerate(self.equipment):
            out.append(
                track_box(
                    axes[track],
                    (s, s + length),
                    (d - 0.4, d + 0.4),
                    (0.0, height),
                    colour,
                    tag=f"equipment-{number}",
                )
            )
        return out

    def _crane(self, facility: FacilityConfig, t: float) -> list[Solid]:
        x0, x1 = self.crane_span_x
        period = 2 * (x1 - x0) / self.crane_speed_mps
        u = (t % period) / period
        x = x0 + (x1 - x0) * (1 - abs(2 * u - 1))
        ys = [track.origin[1] for track in facility.tracks]
        y0, y1 = min(ys) - 6.0, max(ys) + 6.0
        beam = _world_box((x - 0.6, x + 0.6), (y0, y1), (8.6, 9.4), (30, 160, 220), "crane")
        hook_y = ys[len(ys) // 2] - 3.5  # over the walkway between two tracks
        cable = _world_box(
            (x - 0.03, x + 0.03), (hook_y - 0.03, hook_y + 0.03), (5.2, 8.6), (40, 40, 40), "crane"
        )
        block = _world_box(
            (x - 0.35, x + 0.35), (hook_y - 0.3, hook_y + 0.3), (4.4, 5.2), (20, 150, 230), "crane"
        )
        return [beam, cable, block]


def _world_box(
    x: tuple[float, float], y: tuple[float, float], z: tuple[float, float], colour: Colour, tag: str
) -> Solid:
    axis = TrackAxis("world", math.inf, np.zeros(2), np.array([1.0, 0.0]))
    return track_box(axis, x, y, z, colour, tag=tag)


def make_props(facility: FacilityConfig, rng: np.random.Generator) -> Props:
    walkers, equipment = [], []
    vests = [(0, 140, 255), (0, 200, 240), (200, 120, 20)]
    for track in facility.tracks:
        for _ in range(2):
            span = float(rng.uniform(15, 45))
            walkers.append(
                Walker(
                    track=track.id,
                    lateral=float(rng.choice([-2.6, 2.6])),
                    start_m=float(rng.uniform(0, max(1.0, track.length_m - span))),
                    span_m=span,
                    speed_mps=float(rng.uniform(0.6, 1.3)),
                    phase_s=float(rng.uniform(0, 200)),
                    vest=vests[int(rng.integers(len(vests)))],
                )
            )
        for _ in range(int(rng.integers(2, 5))):
            equipment.append(
                (
                    track.id,
                    float(rng.uniform(0, track.length_m - 2)),
                    float(rng.choice([-2.9, 2.9])),
                    float(rng.uniform(0.8, 1.8)),
                    float(rng.uniform(0.7, 1.6)),
                    (
                        int(rng.integers(40, 90)),
                        int(rng.integers(60, 120)),
                        int(rng.integers(90, 160)),
                    ),
                )
            )
    xs = [track.length_m for track in facility.tracks]
    return Props(walkers, equipment, crane_speed_mps=0.5, crane_span_x=(5.0, max(xs) - 5.0))


@dataclass(frozen=True)
class PlatePlacement:
    text: str
    start_m: float
    end_m: float
    bottom_m: float
    top_m: float
    corners: np.ndarray  # world corners (4, 3), to say how large the plate looks to a camera
    lateral_m: float = 0.0  # mean offset from the track's centreline (its sign: the side)

    @property
    def on_side(self) -> bool:
        """On a body side (cab or body), not across an end face."""
        return self.end_m - self.start_m >= 0.05

    def size_px(self, camera: CameraModel) -> tuple[float, float]:
        """How large the plate looks in ``camera``'s image: its height (the shorter of its
        upright edges, not how many rows it spans: a long plate seen at a slant spans
        many rows with short letters) and the width of one letter (the shorter of its top
        and bottom edges over its letters), in pixels."""
        return self.size_in(camera.project(self.corners))

    def size_in(self, pixels: np.ndarray) -> tuple[float, float]:
        """``size_px`` from the plate's corners already projected into the image."""
        top_left, top_right, bottom_right, bottom_left = pixels[:4]
        height = min(_length(bottom_left - top_left), _length(bottom_right - top_right))
        width = min(_length(top_right - top_left), _length(bottom_right - bottom_left))
        return round(height, 1), round(width / max(len(self.text), 1), 1)

    def faces(self, camera: CameraModel) -> bool:
        """Whether the plate's front faces the camera (its text reads left to right)."""
        return faces_in(camera.project(self.corners))


def faces_in(pixels: np.ndarray) -> bool:
    """Whether 4 corners (top-left, top-right, bottom-right, bottom-left as seen from the
    front) projected into an image run clockwise there: the front faces the camera."""
    x, y = pixels[:4, 0], pixels[:4, 1]
    turn = [1, 2, 3, 0]
    return float(x @ y[turn] - x[turn] @ y) > 0


def _length(vector: np.ndarray) -> float:
    return float(np.hypot(vector[0], vector[1]))


def plate_decals(solids: list[Solid]) -> Iterator[Decal]:
    """The number plates among the decals of ``solids`` (the decals that read a text)."""
    for solid in solids:
        for face in solid.faces:
            yield from (decal for decal in face.decals if decal.text is not None)


def plates_of(solids: list[Solid], axis: TrackAxis) -> list[PlatePlacement]:
    """Where the plates among ``solids`` are, in track metres and heights."""
    placements = []
    for decal in plate_decals(solids):
        s, lateral = axis.to_track(decal.corners)
        z = decal.corners[:, 2]
        placements.append(
            PlatePlacement(
                str(decal.text),
                float(s.min()),
                float(s.max()),
                float(z.min()),
                float(z.max()),
                decal.corners,
                float(lateral.mean()),
            )
        )
    return placements
