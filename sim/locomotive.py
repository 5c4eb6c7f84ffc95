"""The locomotives of a varied twin: a series' ``Build`` and a locomotive's ``Look`` as solids.

Built, like the classic boxes of ``sim.scene``, from convex solids with decals, at metre 0
of a track, then shifted. What it adds is what real locomotives show a camera: bogies with
wheels, axle boxes and springs, buffer beams, fuel tanks, cab windows and doors, louvre
panels, handrails, roof equipment, pantographs, liveries with wear, and number plates in
the places the ``Look`` names, both sides detailed (wall cameras see either side).

Decals on one face are drawn in order (both renderers), so the later of two overlapping
decals shows: livery first, then windows and louvres, then dirt.
"""

from __future__ import annotations

import zlib

import numpy as np

from locowatch.facility.geometry import TrackAxis
from sim.fleet import SECTION_GAP_M, Colour, Locomotive
from sim.plates import plate_texture
from sim.scene import WINDOW, Decal, Face, Solid, nose_wedge, track_box
from sim.variety import BUILDS, Build, Livery, Look, PlatePlace, shade

DARK: Colour = (28, 28, 30)
BOGIE: Colour = (38, 40, 42)
WHEEL: Colour = (58, 58, 60)
STEEL: Colour = (110, 112, 115)
RUST: Colour = (30, 60, 105)
LAMP: Colour = (210, 230, 235)
PLATE_PROUD_M = 0.02  # plates stand this far off the body: a plate is a solid, not a decal

Point = tuple[float, float, float]  # metres along, lateral (left +), height


def detailed_solids(loco: Locomotive, look: Look, axis: TrackAxis) -> list[Solid]:
    """The solids of a varied-twin locomotive with its lower-metre end at metre 0."""
    series, build = loco.series, BUILDS[loco.series.name]
    rng = np.random.default_rng(zlib.crc32(loco.loco_id.encode()))
    solids: list[Solid] = []
    for section in range(series.sections):
        s0 = section * (series.section_length_m + SECTION_GAP_M)
        s1 = s0 + series.section_length_m
        part = _Section(loco, look, build, axis, s0, s1, section, rng)
        solids += part.solids()
    return solids


class _Section:
    """One section of a locomotive (a two-section unit is two, joined by a gangway)."""

    def __init__(
        self,
        loco: Locomotive,
        look: Look,
        build: Build,
        axis: TrackAxis,
        s0: float,
        s1: float,
        section: int,
        rng: np.random.Generator,
    ) -> None:
        series = loco.series
        self.loco, self.look, self.build, self.axis = loco, look, build, axis
        self.s0, self.s1 = s0, s1
        self.w, self.h = series.width_m, series.height_m
        self.tag = loco.loco_id
        self.rng = rng
        self.outer_low = section == 0
        self.outer_high = section == series.sections - 1
        self.text = series.plate(loco.number, section if series.sections > 1 else None)
        self.deck = build.frame_z[1]

    @property
    def livery(self) -> Livery:
        return self.look.livery

    def solids(self) -> list[Solid]:
        out = self._running_gear()
        family = self.build.family
        if family == "hood":
            out += self._hood_unit()
        elif family == "centre":
            out += self._centre_unit()
        else:
            out += self._carbody_unit(nose=self.build.nose_m if family == "streamlined" else 0.0)
        out += self._roof_equipment()
        return out

    # -- below the deck ---------------------------------------------------------------

    def _running_gear(self) -> list[Solid]:
        b, w, s0, s1 = self.build, self.w, self.s0, self.s1
        frame = track_box(
            self.axis,
            (s0 + 0.3, s1 - 0.3),
            (-w / 2 + 0.05, w / 2 - 0.05),
            b.frame_z,
            DARK,
            tag=self.tag,
        )
        out = [frame]
        for outer, end, sign in ((self.outer_low, s0, 1), (self.outer_high, s1, -1)):
            span = (end, end + sign * 0.3)
            beam = track_box(
                self.axis,
                (min(span), max(span)),
                (-w / 2, w / 2),
                (0.85, max(1.6, b.frame_z[1])),
                self.livery.front if outer else DARK,
                tag=self.tag,
            )
            if outer:
                self._lamps(beam.faces[2 if sign > 0 else 3], end, z=1.45)
            out.append(beam)
        spacing = b.wheel_diameter_m + 0.8
        bogie_len = (b.axles_per_bogie - 1) * spacing + b.wheel_diameter_m + 0.8
        inset = 1.0 + (s1 - s0 - 12.0) * 0.05
        for a in (s0 + inset, s1 - inset - bogie_len):
            out.append(self._bogie(a, bogie_len, spacing))
        if b.fuel_tank and s1 - s0 - 2 * inset - 2 * bogie_len > 3.0:
            mid, half = (s0 + s1) / 2, (s1 - s0 - 2 * inset - 2 * bogie_len) / 2 - 0.6
            out.append(
                track_box(
                    self.axis,
                    (mid - half, mid + half),
                    (-w / 2 + 0.45, w / 2 - 0.45),
                    (0.5, b.frame_z[0]),
                    (45, 48, 50),
                    tag=self.tag,
                )
            )
        return out

    def _bogie(self, a: float, length: float, spacing: float) -> Solid:
        b, half = self.build, self.w / 2 - 0.3
        top = b.frame_z[0] - 0.02
        bogie = track_box(
            self.axis, (a, a + length), (-half, half), (0.08, top), BOGIE, tag=self.tag
        )
        radius = min(b.wheel_diameter_m / 2, top / 2)
        for side, face in ((-half - 0.005, bogie.faces[0]), (half + 0.005, bogie.faces[1])):
            for k in range(b.axles_per_bogie):
                centre = a + 0.4 + b.wheel_diameter_m / 2 + k * spacing
                face.decals.append(Decal(self._disc(centre, side, radius + 0.04, radius), WHEEL))
                face.decals.append(
                    Decal(
                        self._rect(
                            (centre - 0.17, centre + 0.17), side, (radius - 0.17, radius + 0.17)
                        ),
                        DARK,
                    )
                )
                if k < b.axles_per_bogie - 1:  # a spring between two axles
                    mid = centre + spacing / 2
                    face.decals.append(
                        Decal(
                            self._rect((mid - 0.2, mid + 0.2), side, (radius, top - 0.05)),
                            (80, 80, 70),
                        )
                    )
        return bogie

    # -- bodies -----------------------------------------------------------------------

    def _carbody_unit(self, nose: float) -> list[Solid]:
        lv, w = self.livery, self.w
        b0 = self.s0 + (nose if self.outer_low else 0.0)
        b1 = self.s1 - (nose if self.outer_high else 0.0)
        bottom = self.build.frame_z[0] if self.build.skirt else self.deck
        body = track_box(
            self.axis, (b0, b1), (-w / 2, w / 2), (bottom, self.h), lv.body, lv.roof, self.tag
        )
        solids = [body]
        self._paint_sides(body, (b0, b1), (bottom, self.h))
        windows_z = (self.h - 1.5, self.h - 0.6)
        for outer, end, sign, edge in (
            (self.outer_low, self.s0, -1, b0),
            (self.outer_high, self.s1, 1, b1),
        ):
            if not outer:
                continue
            for face in body.faces[:2]:
                self._cab_side(face, edge, sign, windows_z)
            if nose:
                wedge = nose_wedge(
                    self.axis, end, sign, w, (bottom, self.h), nose, lv.body, lv.roof, self.tag
                )
                front_face = wedge.faces[2]  # the low vertical front: the warning panel
                front_face.colour = lv.front
                self._lamps(front_face, end, z=bottom + 0.35)
                solids.append(wedge)
                low_top = bottom + 0.45 * (self.h - bottom)
                solids += self._end_plates(end, sign, (bottom + 0.15, low_top - 0.1), high=True)
            else:
                end_face = body.faces[3 if sign > 0 else 2]
                self._end_windows(end_face, end, windows_z)
                end_face.decals.append(
                    Decal(self._across(end, (-w / 2, w / 2), (bottom, bottom + 0.9)), lv.front)
                )
                self._lamps(end_face, end, z=windows_z[0] - 0.35)
                solids += self._end_plates(
                    end, sign, (bottom + 0.95, windows_z[0] - 0.1), high=True
                )
            solids += self._end_plates(end, sign, (0.95, 1.5), high=False)
            solids += self._grab_rails(edge, sign)
        solids += self._side_plates(
            (b0, b1),
            windows_z,
            cab_edges=(b0 if self.outer_low else None, b1 if self.outer_high else None),
        )
        return solids

    def _hood_unit(self) -> list[Solid]:
        lv, w, b = self.livery, self.w, self.build
        cab = (self.s1 - b.cab_length_m, self.s1)
        hood_top = self.h - b.hood_drop_m
        side = w / 2 - b.hood_inset_m
        hood = track_box(
            self.axis,
            (self.s0 + 0.4, cab[0]),
            (-side, side),
            (self.deck, hood_top),
            lv.body,
            lv.roof,
            self.tag,
        )
        self._paint_sides(hood, (self.s0 + 0.4, cab[0]), (self.deck, hood_top))
        cab_box = self._cab(cab)
        low_end = hood.faces[2]
        self._lamps(low_end, self.s0 + 0.4, z=hood_top - 0.4)
        low_end.decals.append(
            Decal(
                self._across(self.s0 + 0.4, (-side, side), (self.deck, self.deck + 0.6)), lv.front
            )
        )
        solids = [hood, cab_box, *self._handrails((self.s0 + 0.3, cab[0]), side + 0.35)]
        solids += self._end_plates(
            self.s0 + 0.4, -1, (self.deck + 0.7, hood_top - 0.6), high=True, half_width=side
        )
        solids += self._end_plates(self.s1, 1, (self.deck + 0.1, self.h - 1.7), high=True)
        return solids + self._cab_unit_plates(cab, hood_top, side)

    def _centre_unit(self) -> list[Solid]:
        lv, w, b = self.livery, self.w, self.build
        start = self.s0 + 0.62 * (self.s1 - self.s0)
        cab = (start, start + b.cab_length_m)
        hood_top = self.h - b.hood_drop_m - 0.1
        side = w / 2 - b.hood_inset_m
        solids: list[Solid] = []
        for span, end, sign in (
            ((self.s0 + 0.4, cab[0]), self.s0 + 0.4, -1),
            ((cab[1], self.s1 - 0.4), self.s1 - 0.4, 1),
        ):
            hood = track_box(
                self.axis, span, (-side, side), (self.deck, hood_top), lv.body, lv.roof, self.tag
            )
            self._paint_sides(hood, span, (self.deck, hood_top))
            end_face = hood.faces[2 if sign < 0 else 3]
            self._lamps(end_face, end, z=hood_top - 0.4)
            end_face.decals.append(
                Decal(self._across(end, (-side, side), (self.deck, self.deck + 0.6)), lv.front)
            )
            solids.append(hood)
            solids += self._handrails(span, side + 0.35)
            solids += self._end_plates(
                end, sign, (self.deck + 0.7, hood_top - 0.6), high=True, half_width=side
            )
        solids.append(self._cab(cab))
        return solids + self._cab_unit_plates(cab, hood_top, side)

    def _cab_unit_plates(
        self, cab: tuple[float, float], hood_top: float, side: float
    ) -> list[Solid]:
        """Hood and centre units alike: numbers low on both buffer beams, beside the cab
        windows, and along the hood before the cab."""
        solids: list[Solid] = []
        for end, sign in ((self.s0, -1), (self.s1, 1)):
            solids += self._end_plates(end, sign, (0.95, 1.5), high=False)
        solids += self._side_plates(
            cab, (self.h - 1.5, self.h - 0.6), cab_edges=(None, None), on_cab=True
        )
        solids += self._side_plates(
            (self.s0 + 0.4, cab[0]),
            (hood_top, hood_top),
            cab_edges=(None, None),
            half_width=side,
            body_only=True,
        )
        return solids

    def _cab(self, span: tuple[float, float]) -> Solid:
        lv, w = self.livery, self.w
        cab = track_box(
            self.axis, span, (-w / 2, w / 2), (self.deck, self.h), lv.body, lv.roof, self.tag
        )
        self._paint_sides(cab, span, (self.deck, self.h), louvres=False)
        windows_z = (self.h - 1.45, self.h - 0.55)
        for face, d in ((cab.faces[0], -w / 2 - 0.005), (cab.faces[1], w / 2 + 0.005)):
            length = span[1] - span[0]
            face.decals.append(
                Decal(
                    self._rect((span[0] + 0.3, span[0] + 0.3 + 0.35 * length), d, windows_z), WINDOW
                )
            )
            door = (span[0] + 0.45 * length, span[0] + 0.45 * length + 0.75)
            face.decals.append(
                Decal(self._rect(door, d, (self.deck + 0.1, self.h - 0.4)), shade(lv.body, 0.8))
            )
            face.decals.append(
                Decal(self._rect((door[0] + 0.12, door[1] - 0.12), d, windows_z), WINDOW)
            )
        for index, end in ((2, span[0]), (3, span[1])):
            self._end_windows(cab.faces[index], end, windows_z)
        return cab

    # -- decals -----------------------------------------------------------------------

    def _paint_sides(
        self, solid: Solid, span: tuple[float, float], z: tuple[float, float], louvres: bool = True
    ) -> None:
        """Livery, louvres and wear on both long sides of ``solid``."""
        lv, b = self.livery, self.build
        half = float(np.abs(self.axis.to_track(solid.faces[0].corners)[1]).max())
        height = z[1] - z[0]
        for face, d in ((solid.faces[0], -half - 0.005), (solid.faces[1], half + 0.005)):
            if lv.lower != lv.body:
                face.decals.append(
                    Decal(self._rect(span, d, (z[0], z[0] + 0.45 * height)), lv.lower)
                )
            for lo, hi in lv.stripes:
                face.decals.append(
                    Decal(self._rect(span, d, (z[0] + lo * height, z[0] + hi * height)), lv.stripe)
                )
            if louvres and b.louvre_panels:
                self._louvres(face, span, d, z)
            if lv.wear > 0.05:
                self._dirt(face, span, d, z)

    def _louvres(
        self, face: Face, span: tuple[float, float], d: float, z: tuple[float, float]
    ) -> None:
        b = self.build
        length = span[1] - span[0]
        panel = min(1.4, length / (b.louvre_panels * 1.6 + 1))
        gap = (length - b.louvre_panels * panel) / (b.louvre_panels + 1)
        top = z[1] - 0.35
        bottom = max(z[0] + 0.5, top - 1.1)
        for k in range(b.louvre_panels):
            a = span[0] + gap + k * (panel + gap)
            face.decals.append(
                Decal(self._rect((a, a + panel), d, (bottom, top)), shade(self.livery.body, 0.7))
            )
            pitch = (top - bottom) / b.louvre_slats
            for j in range(b.louvre_slats):
                y = bottom + (j + 0.3) * pitch
                face.decals.append(
                    Decal(
                        self._rect((a + 0.05, a + panel - 0.05), d, (y, y + 0.35 * pitch)),
                        shade(self.livery.body, 0.35),
                    )
                )

    def _dirt(
        self, face: Face, span: tuple[float, float], d: float, z: tuple[float, float]
    ) -> None:
        lv, rng = self.livery, self.rng
        grime = shade(lv.lower, 1 - 0.45 * lv.wear)
        face.decals.append(Decal(self._rect(span, d, (z[0], z[0] + 0.15 + 0.5 * lv.wear)), grime))
        width, height = span[1] - span[0], z[1] - z[0]
        streaks = int(lv.wear * 8) if width > 0.8 and height > 1.1 else 0  # room for them
        for _ in range(streaks):
            a = float(rng.uniform(span[0] + 0.3, span[1] - 0.5))
            top = float(rng.uniform(z[0] + 0.8, z[1] - 0.3))
            face.decals.append(
                Decal(
                    self._rect((a, a + float(rng.uniform(0.05, 0.2))), d, (z[0] + 0.2, top)),
                    shade(lv.body, 0.75),
                )
            )
        for _ in range(int(lv.wear * 5) if width > 1.0 and height > 0.5 else 0):
            c = (
                float(rng.uniform(span[0] + 0.5, span[1] - 0.5)),
                float(rng.uniform(z[0] + 0.2, z[1] - 0.3)),
            )
            face.decals.append(
                Decal(self._disc(c[0], d, float(rng.uniform(0.08, 0.3)), c[1], sides=6), RUST)
            )

    def _cab_side(self, face: Face, edge: float, sign: int, z: tuple[float, float]) -> None:
        d = self._side_of(face)
        a = edge - sign * 0.35
        b = a - sign * 1.3
        face.decals.append(Decal(self._rect((min(a, b), max(a, b)), d, z), WINDOW))
        door0 = b - sign * 0.25
        door1 = door0 - sign * 0.75
        door = (min(door0, door1), max(door0, door1))
        face.decals.append(
            Decal(
                self._rect(door, d, (self.deck + 0.15, self.h - 0.45)),
                shade(self.livery.body, 0.82),
            )
        )
        face.decals.append(Decal(self._rect((door[0] + 0.12, door[1] - 0.12), d, z), WINDOW))
        windows = self.build.side_windows
        if windows:  # machine-room windows in a row along the upper body
            far = (self.s0 + self.s1) / 2
            per_end = max(1, windows // 2) if self.loco.series.sections == 1 else windows
            for k in range(per_end):
                c = door0 - sign * (1.5 + k * 1.6)
                if (c - far) * sign < 0:
                    break
                face.decals.append(
                    Decal(self._rect((c - 0.4, c + 0.4), d, (self.h - 1.2, self.h - 0.65)), WINDOW)
                )

    def _end_windows(self, face: Face, end: float, z: tuple[float, float]) -> None:
        w = self.w
        for d0, d1 in ((-w / 2 + 0.25, -0.1), (0.1, w / 2 - 0.25)):
            face.decals.append(Decal(self._across(end, (d0, d1), z), WINDOW))

    def _lamps(self, face: Face, end: float, z: float) -> None:
        for d in (-self.w / 2 + 0.45, self.w / 2 - 0.45):
            face.decals.append(
                Decal(self._across(end, (d - 0.1, d + 0.1), (z - 0.1, z + 0.1)), LAMP)
            )

    # -- small solids -----------------------------------------------------------------

    def _handrails(self, span: tuple[float, float], half: float) -> list[Solid]:
        if not self.build.handrails:
            return []
        rail_z = self.deck + 1.0
        out = []
        for d in (-half + 0.05, half - 0.05):
            out.append(
                rod(
                    self.axis,
                    (span[0], d, rail_z),
                    (span[1], d, rail_z),
                    0.025,
                    (30, 200, 240),
                    self.tag,
                )
            )
            s = span[0] + 0.2
            while s < span[1]:
                out.append(
                    rod(
                        self.axis, (s, d, self.deck), (s, d, rail_z), 0.02, (30, 200, 240), self.tag
                    )
                )
                s += 2.5
        return out

    def _grab_rails(self, edge: float, sign: int) -> list[Solid]:
        if not self.build.handrails:
            return []
        s = edge - sign * 2.0
        return [
            rod(self.axis, (s, d, self.deck + 0.3), (s, d, self.h - 0.6), 0.02, STEEL, self.tag)
            for d in (-self.w / 2 - 0.06, self.w / 2 + 0.06)
        ]

    def _roof_equipment(self) -> list[Solid]:
        b, out = self.build, []
        top = self.h if b.family in ("carbody", "streamlined") else self.h - b.hood_drop_m
        length = self.s1 - self.s0
        if b.family in ("hood", "centre"):  # on the engine hood, clear of the cab
            first, length = self.s0 + 1.0, 0.55 * length
        else:
            first = self.s0
        for k in range(b.roof_boxes):
            c = first + length * (k + 1) / (b.roof_boxes + 1)
            box = track_box(
                self.axis,
                (c - 0.9, c + 0.9),
                (-0.8, 0.8),
                (top, top + 0.35),
                (90, 92, 95),
                (70, 72, 75),
                self.tag,
            )
            for j in range(5):
                y = c - 0.8 + j * 0.35
                box.faces[4].decals.append(
                    Decal(
                        np.array(
                            [
                                self.axis.to_world(s, dd, top + 0.351)[0]
                                for s, dd in (
                                    (y, -0.7),
                                    (y + 0.15, -0.7),
                                    (y + 0.15, 0.7),
                                    (y, 0.7),
                                )
                            ]
                        ),
                        (30, 30, 32),
                    )
                )
            out.append(box)
        for k in range(b.pantographs):
            c = self.s0 + 3.0 if k == 0 else self.s1 - 3.0
            out += pantograph(self.axis, c, self.h, self.tag, lean=1 if k == 0 else -1)
        return out

    # -- plates -----------------------------------------------------------------------

    def _places(self, *names: str) -> list[PlatePlace]:
        return [p for p in self.look.plates if p.place in names]

    def _end_plates(
        self,
        end: float,
        sign: int,
        z: tuple[float, float],
        high: bool,
        half_width: float | None = None,
    ) -> list[Solid]:
        """Plates on the end face at metre ``end`` (facing ``sign``), within heights ``z``."""
        outer = self.outer_low if sign < 0 else self.outer_high
        if not outer:
            return []
        out = []
        room = 2 * (half_width if half_width is not None else self.w / 2) - 0.3
        for place in self._places("end-high" if high else "end-low"):
            length = min(place.length_m, room)
            height = min(place.height_m, z[1] - z[0])
            if height < 0.08:
                continue
            zc = (z[0] + z[1]) / 2
            out.append(
                self._plate_solid(
                    place,
                    end,
                    sign,
                    (-length / 2, length / 2),
                    (zc - height / 2, zc + height / 2),
                    across=True,
                )
            )
        return out

    def _side_plates(
        self,
        span: tuple[float, float],
        windows_z: tuple[float, float],
        cab_edges: tuple[float | None, float | None],
        half_width: float | None = None,
        on_cab: bool = False,
        body_only: bool = False,
    ) -> list[Solid]:
        half = half_width if half_width is not None else self.w / 2
        out = []
        for place in self.look.plates:
            if place.place == "cab-side" and not body_only:
                anchors = [e for e in cab_edges if e is not None]
                if on_cab:
                    anchors = [(span[0] + span[1]) / 2]
                for anchor in anchors:
                    sign = 1 if anchor >= (span[0] + span[1]) / 2 else -1
                    c = anchor if on_cab else anchor - sign * 1.0
                    top = windows_z[0] - 0.15
                    out += self._both_sides(
                        place,
                        (c - place.length_m / 2, c + place.length_m / 2),
                        (top - place.height_m, top),
                        half,
                    )
            elif (
                place.place == "body-side"
                and (body_only or not on_cab)
                and span[1] - span[0] > place.length_m + 1
            ):
                c = span[0] + 0.5 + place.along * (span[1] - span[0] - 1.0)
                zc = self.deck + 0.4 * (windows_z[1] - self.deck)
                out += self._both_sides(
                    place,
                    (c - place.length_m / 2, c + place.length_m / 2),
                    (zc - place.height_m / 2, zc + place.height_m / 2),
                    half,
                )
        return out

    def _both_sides(
        self, place: PlatePlace, s: tuple[float, float], z: tuple[float, float], half: float
    ) -> list[Solid]:
        return [self._plate_solid(place, half * side, side, s, z, across=False) for side in (-1, 1)]

    def _plate_solid(
        self,
        place: PlatePlace,
        at: float,
        sign: int,
        extent: tuple[float, float],
        z: tuple[float, float],
        across: bool,
    ) -> Solid:
        """A plate standing ``PLATE_PROUD_M`` off the plane at ``at`` (a metre when ``across``,
        an end face; a lateral offset otherwise, a side), facing ``sign``."""
        background = place.background or self.livery.body
        texture = plate_texture(self.text, background, place.ink, place.background is not None)
        out_plane = at + sign * PLATE_PROUD_M
        if across:
            box = track_box(
                self.axis,
                (min(at, out_plane), max(at, out_plane)),
                extent,
                z,
                background,
                tag=self.tag,
            )
            face = box.faces[3 if sign > 0 else 2]
            # read from in front of the end: left is +lateral at the high end, - at the low
            left, right = (extent[0], extent[1]) if sign > 0 else (extent[1], extent[0])
            corners = [
                self.axis.to_world(out_plane + sign * 0.002, d, h)[0]
                for d, h in ((left, z[1]), (right, z[1]), (right, z[0]), (left, z[0]))
            ]
        else:
            box = track_box(
                self.axis,
                extent,
                (min(at, out_plane), max(at, out_plane)),
                z,
                background,
                tag=self.tag,
            )
            face = box.faces[1 if sign > 0 else 0]
            # read from outside: metres grow to the right on the right side (-lateral)
            left, right = (extent[1], extent[0]) if sign > 0 else (extent[0], extent[1])
            corners = [
                self.axis.to_world(s, out_plane + sign * 0.002, h)[0]
                for s, h in ((left, z[1]), (right, z[1]), (right, z[0]), (left, z[0]))
            ]
        face.decals.append(
            Decal(
                np.array(corners),
                texture=texture,
                text=self.text,
                style=(background, place.ink, place.background is not None),
            )
        )
        return box

    # -- geometry helpers ---------------------------------------------------------------

    def _side_of(self, face: Face) -> float:
        _, d = self.axis.to_track(face.corners)
        side = float(d.mean())
        return side + (0.005 if side > 0 else -0.005)

    def _rect(self, s: tuple[float, float], d: float, z: tuple[float, float]) -> np.ndarray:
        return np.array(
            [
                self.axis.to_world(si, d, zi)[0]
                for si, zi in ((s[0], z[0]), (s[1], z[0]), (s[1], z[1]), (s[0], z[1]))
            ]
        )

    def _across(self, s: float, d: tuple[float, float], z: tuple[float, float]) -> np.ndarray:
        s_out = s + (0.005 if s >= (self.s0 + self.s1) / 2 else -0.005)
        return np.array(
            [
                self.axis.to_world(s_out, di, zi)[0]
                for di, zi in ((d[0], z[0]), (d[1], z[0]), (d[1], z[1]), (d[0], z[1]))
            ]
        )

    def _disc(self, s: float, d: float, radius: float, z: float, sides: int = 8) -> np.ndarray:
        angles = np.linspace(0, 2 * np.pi, sides, endpoint=False) + np.pi / sides
        return self.axis.to_world(s + radius * np.cos(angles), d, z + radius * np.sin(angles))


def rod(axis: TrackAxis, a: Point, b: Point, r: float, colour: Colour, tag: str) -> Solid:
    """A thin square bar from ``a`` to ``b`` (track metres, lateral, height): handrails,
    pantograph arms."""
    pa, pb = np.array(a, float), np.array(b, float)
    u = (pb - pa) / max(float(np.linalg.norm(pb - pa)), 1e-9)
    helper = np.array([0.0, 0.0, 1.0]) if abs(u[2]) < 0.9 else np.array([1.0, 0.0, 0.0])
    v = np.cross(u, helper)
    v /= np.linalg.norm(v)
    w = np.cross(u, v)
    ends = [pa, pb]
    corners = {
        (i, j, k): ends[i] + r * (2 * j - 1) * v + r * (2 * k - 1) * w
        for i in (0, 1)
        for j in (0, 1)
        for k in (0, 1)
    }
    track = np.array(list(corners.values()))
    world = dict(zip(corners, axis.to_world(track[:, 0], track[:, 1], track[:, 2]), strict=True))
    quads = (
        ((0, 0, 0), (1, 0, 0), (1, 0, 1), (0, 0, 1)),
        ((0, 1, 0), (0, 1, 1), (1, 1, 1), (1, 1, 0)),
        ((0, 0, 0), (0, 0, 1), (0, 1, 1), (0, 1, 0)),
        ((1, 0, 0), (1, 1, 0), (1, 1, 1), (1, 0, 1)),
        ((0, 0, 1), (1, 0, 1), (1, 1, 1), (0, 1, 1)),
        ((0, 0, 0), (0, 1, 0), (1, 1, 0), (1, 0, 0)),
    )
    return Solid([Face(np.array([world[c] for c in quad]), colour) for quad in quads], tag)


def pantograph(axis: TrackAxis, s: float, roof: float, tag: str, lean: int = 1) -> list[Solid]:
    """A raised single-arm pantograph standing on insulators at metre ``s``."""
    base = track_box(
        axis, (s - 0.6, s + 0.6), (-0.7, 0.7), (roof, roof + 0.25), (60, 60, 62), tag=tag
    )
    knee = (s + lean * 1.1, 0.0, roof + 0.9)
    head = (s - lean * 0.1, 0.0, roof + 1.7)
    parts = [base]
    for d in (-0.35, 0.35):
        parts.append(rod(axis, (s, d, roof + 0.25), (knee[0], d, knee[2]), 0.03, STEEL, tag))
    parts.append(rod(axis, knee, head, 0.03, STEEL, tag))
    parts.append(
        track_box(
            axis,
            (head[0] - 0.15, head[0] + 0.15),
            (-0.95, 0.95),
            (head[2], head[2] + 0.08),
            STEEL,
            tag=tag,
        )
    )
    return parts
