"""Render one camera's view of the twin depot.

How a frame is made, and why:

1. The static hall (floor with pits, rails and paint, walls, windows, ceiling lamps) is ray
   cast once per camera into a *pinhole canvas*: an undistorted image with the camera's
   focal length, wide enough to cover everything the real lens sees.
2. Each frame draws the moving world (locomotives, people, crane, equipment, columns) on a
   copy of that canvas as convex solids, far to near, back faces culled, decals (windows,
   stripes, plates) right after their face. Moving solids get motion blur when the
   exposure is long enough to smear them.
3. A precomputed remap bends the canvas through the lens model (OpenCV distortion), so
   straight rails curve exactly as the calibration says.
4. Light of the hour (daylight through windows, hall lamps, infrared at night), sensor
   noise and JPEG compression finish the frame.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from locowatch.facility.config import FacilityConfig
from locowatch.facility.geometry import CameraModel, TrackAxis, undistort_normalized
from sim import variety
from sim.scene import Decal, Solid, track_box
from sim.variety import HallLook

NEAR_M = 0.15
_SIDE_LIGHT = np.array([0.35, -0.55, 0.2])
HALL_HEIGHT_M = 10.0
MAP_STEP_PX = 8  # the lens map is computed on this grid and interpolated
NOISE_LEVELS = (2.5, 5.0, 9.0)
PX_LIMIT = 2.0**24  # projected coordinates, times 16, stay inside int32
MAX_BLUR_PX = 40.0  # longest smear: a slower shutter than CCTV cameras use


@dataclass(frozen=True)
class Lighting:
    """The light a camera sees at one hour of the compressed day."""

    daylight: float  # 0 at night .. 1 at noon, through the windows
    lamps: float  # hall lamps
    infrared: bool  # the camera switched to its IR mode (greyscale, own illuminator)
    exposure_s: float

    @classmethod
    def at_hour(cls, hour: float) -> Lighting:
        daylight = max(0.0, math.sin(math.pi * (hour - 6.5) / 13.0)) if 6.5 < hour < 19.5 else 0.0
        lamps = 0.55 if 6.0 <= hour < 21.5 else 0.0
        level = 0.12 + 0.85 * daylight + lamps
        infrared = level < 0.35
        exposure = 1 / 250 if level > 0.9 else (1 / 60 if level > 0.5 else 1 / 12)
        return cls(daylight, lamps, infrared, exposure)

    @property
    def level(self) -> float:
        return 0.12 + 0.85 * self.daylight + self.lamps


@dataclass(frozen=True)
class Finish:
    """Sensor and codec of one camera."""

    jpeg_quality: int = 75
    noise_day: float = 2.5
    noise_night: float = 9.0


class CameraRenderer:
    """Renders frames of one camera; build once, call ``render`` per frame."""

    def __init__(
        self,
        camera: CameraModel,
        facility: FacilityConfig,
        finish: Finish | None = None,
        seed: int = 0,
        statics: tuple[Solid, ...] = (),
        hall: HallLook | None = None,
    ) -> None:
        self.camera = camera
        self.hall = hall or HallLook()
        self.facility = facility
        self.finish = finish or Finish()
        self.rng = np.random.default_rng(seed)
        self.axes = {t.id: TrackAxis.from_config(t) for t in facility.tracks}
        self._setup_canvas()
        self._setup_lens_map()
        self.background, emissive, sun = _hall_background(self)
        self.emissive = self._to_output(emissive)
        # Sun patches lie on the floor: they light it only where nothing stands on it, so
        # the bare hall is kept to tell, per frame, where the floor still shows.
        self._sun = sun
        self._bare = self.background.copy() if sun is not None else None
        # Things that never move (columns, equipment) are painted into the background once;
        # per frame, only those whose outline overlaps a moving solid's are painted again, in
        # order with it, which is all that occlusion needs.
        self.statics = [
            c
            for c in (*hall_columns(facility, self.axes, camera.position, self.hall), *statics)
            if self.sees(c.corners.reshape(-1, 3))
        ]
        self._static_boxes = np.array([self._screen_box(c) for c in self.statics]).reshape(-1, 4)
        for solid in _painter_order(self.statics, camera.position, self._static_boxes):
            self._draw_solid(self.background, solid)
        # Sensor noise comes from a few precomputed planes at a few strengths, cropped at a
        # random offset per frame: drawing 2.7 M normals per frame would cost 20 ms.
        self._noise = {
            sigma: np.clip(
                self.rng.normal(0, sigma, (camera.height + 32, camera.width + 32, 3)), -127, 127
            ).astype(np.int16)
            for sigma in self._noise_levels
        }

    @property
    def _noise_levels(self) -> tuple[float, ...]:
        """The precomputed strengths, and a noisier night where auto-gain pushes harder."""
        extra = self.finish.noise_night
        return NOISE_LEVELS + ((extra,) if extra > NOISE_LEVELS[-1] else ())

    # -- set-up ---------------------------------------------------------------------------

    def _setup_canvas(self) -> None:
        cam = self.camera
        us, vs = np.meshgrid(np.arange(0, cam.width + 1, 16), np.arange(0, cam.height + 1, 16))
        grid = np.column_stack([us.ravel(), vs.ravel()]).astype(np.float64)
        norm = undistort_normalized(
            grid.reshape(-1, 1, 2), cam.camera_matrix, cam.distortion
        ).reshape(-1, 2)
        f = float(cam.camera_matrix[0, 0])
        fy = float(cam.camera_matrix[1, 1])
        x0, x1 = np.percentile(norm[:, 0], [0, 100])
        y0, y1 = np.percentile(norm[:, 1], [0, 100])
        # a lens with strong barrel distortion could ask for a huge canvas: cap it
        x0, x1 = max(x0, -3 * cam.width / f), min(x1, 3 * cam.width / f)
        y0, y1 = max(y0, -3 * cam.height / fy), min(y1, 3 * cam.height / fy)
        self.canvas_size = (math.ceil((x1 - x0) * f) + 8, math.ceil((y1 - y0) * fy) + 8)
        self.canvas_matrix = np.array([[f, 0, -x0 * f + 4], [0, fy, -y0 * fy + 4], [0, 0, 1]])

    def _setup_lens_map(self) -> None:
        cam = self.camera
        us, vs = np.meshgrid(
            np.arange(0, cam.width + MAP_STEP_PX, MAP_STEP_PX),
            np.arange(0, cam.height + MAP_STEP_PX, MAP_STEP_PX),
        )
        grid = np.column_stack([us.ravel(), vs.ravel()]).astype(np.float64)
        norm = undistort_normalized(
            grid.reshape(-1, 1, 2), cam.camera_matrix, cam.distortion
        ).reshape(-1, 2)
        k = self.canvas_matrix
        map_x = (norm[:, 0] * k[0, 0] + k[0, 2]).reshape(us.shape).astype(np.float32)
        map_y = (norm[:, 1] * k[1, 1] + k[1, 2]).reshape(us.shape).astype(np.float32)
        size = (us.shape[1] * MAP_STEP_PX, us.shape[0] * MAP_STEP_PX)
        full_x = cv2.resize(map_x, size, interpolation=cv2.INTER_LINEAR)
        full_y = cv2.resize(map_y, size, interpolation=cv2.INTER_LINEAR)
        # resize aligns pixel centres; shift so that grid node i sits at pixel i * step
        shift = (MAP_STEP_PX - 1) / 2
        xs = np.clip(np.arange(cam.width) + shift, 0, size[0] - 1).astype(np.float32)
        ys = np.clip(np.arange(cam.height) + shift, 0, size[1] - 1).astype(np.float32)
        grid_x, grid_y = np.meshgrid(xs, ys)
        exact_x = cv2.remap(full_x, grid_x, grid_y, cv2.INTER_LINEAR)
        exact_y = cv2.remap(full_y, grid_x, grid_y, cv2.INTER_LINEAR)
        self.map1, self.map2 = cv2.convertMaps(exact_x, exact_y, cv2.CV_16SC2)

    def _to_output(self, canvas: np.ndarray) -> np.ndarray:
        return cv2.remap(
            canvas, self.map1, self.map2, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT
        )

    # -- per frame ------------------------------------------------------------------------

    def project_canvas(self, world: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Canvas pixels and camera depths of world points (no lens distortion)."""
        cam_pts = world @ self.camera.rotation.T + self.camera.tvec
        z = cam_pts[:, 2]
        with np.errstate(divide="ignore", invalid="ignore"):
            px = (cam_pts[:, :2] / z[:, None]) * np.diag(self.canvas_matrix)[
                :2
            ] + self.canvas_matrix[:2, 2]
        return px, z

    def render(
        self,
        solids: list[Solid],
        light: Lighting,
        rng: np.random.Generator | None = None,
        finish: bool = True,
        black: bool = False,
    ) -> np.ndarray:
        """A BGR frame of the camera's output size; ``black`` is a dead sensor (noise only)."""
        rng = rng or self.rng
        if black:
            frame = np.zeros((self.camera.height, self.camera.width, 3), np.uint8)
            return self._develop(frame, Lighting(0.0, 0.0, False, 0.1), rng)
        canvas = self.background.copy()
        moving = [s for s in solids if self.sees(s.corners.reshape(-1, 3))]
        boxes = np.array([self._screen_box(s) for s in moving]).reshape(-1, 4)
        touched = [
            self.statics[i] for i in np.flatnonzero(_overlaps_any(self._static_boxes, boxes))
        ]
        candidates = [*touched, *moving]
        everything = _painter_order(
            candidates,
            self.camera.position,
            np.vstack([self._static_boxes[_overlaps_any(self._static_boxes, boxes)], boxes]),
        )
        for solid in everything:
            self._draw_solid(canvas, solid)
        return self.develop_canvas(canvas, everything, light, rng, finish)

    def develop_canvas(
        self,
        canvas: np.ndarray,
        drawn: list[Solid],
        light: Lighting,
        rng: np.random.Generator,
        finish: bool = True,
    ) -> np.ndarray:
        """Steps 2's end, 3 and 4 on a drawn canvas: the moving ones of ``drawn`` smeared
        over the exposure, the lens map, and (``finish``) light, noise and JPEG."""
        blurred = [solid for solid in drawn if self._blur_px(solid, light) >= 1.5]
        if blurred:
            self._motion_blur(canvas, blurred, light)
        sun = None
        if self._sun is not None and self._bare is not None and light.daylight > 0:
            floor_shows = (canvas == self._bare).all(axis=2)
            sun = self._to_output(np.where(floor_shows[..., None], self._sun, 0).astype(np.uint8))
        frame = self._to_output(canvas)
        return self._develop(frame, light, rng, sun) if finish else frame

    def silhouette(self, solids: list[Solid]) -> np.ndarray:
        """A mask (255 where any of ``solids`` covers the output image), through the lens.

        The same projection, clipping and lens map as ``render``, without shading: what a
        pixel-exact label of where things are looks like.
        """
        canvas = np.zeros((self.canvas_size[1], self.canvas_size[0]), np.uint8)
        for solid in solids:
            for face in solid.faces:
                polygon = self._clip_and_project(face.corners)
                if polygon is not None:
                    cv2.fillPoly(canvas, [polygon], 255, shift=4)
        return np.asarray(self._to_output(canvas))

    def _draw_solid(self, canvas: np.ndarray, solid: Solid) -> None:
        corners = solid.corners  # (faces, 4, 3)
        cam_pts = corners @ self.camera.rotation.T + self.camera.tvec
        if not self._may_be_visible(cam_pts.reshape(-1, 3)):
            return
        normals, shades = face_shading(corners)
        middles = corners.mean(axis=1)
        facing = np.einsum("ij,ij->i", middles - self.camera.position, normals) < 0
        for index in np.flatnonzero(facing):
            face = solid.faces[index]
            shade = float(shades[index])
            self._fill_camera(canvas, cam_pts[index], variety.shade(face.colour, shade))
            for decal in face.decals:
                self._draw_decal(canvas, decal, shade)

    def _screen_box(self, solid: Solid) -> tuple[float, float, float, float]:
        """Canvas bounding box of a solid (the whole canvas if it reaches behind the eye)."""
        px, z = self.project_canvas(solid.corners.reshape(-1, 3))
        if (z <= NEAR_M).any():
            return (-1e9, -1e9, 1e9, 1e9)
        return (
            float(px[:, 0].min()),
            float(px[:, 1].min()),
            float(px[:, 0].max()),
            float(px[:, 1].max()),
        )

    def sees(self, world: np.ndarray) -> bool:
        """Whether any of the region spanned by these world points may be in view."""
        return self._may_be_visible(world @ self.camera.rotation.T + self.camera.tvec)

    def _may_be_visible(self, cam_pts: np.ndarray) -> bool:
        """Cheap frustum test on a solid's corners (camera coordinates)."""
        z = cam_pts[:, 2]
        if (z < NEAR_M).all():
            return False
        front = cam_pts[z >= NEAR_M]
        px = (
            front[:, :2] / front[:, 2:3] * np.diag(self.canvas_matrix)[:2]
            + self.canvas_matrix[:2, 2]
        )
        w, h = self.canvas_size
        if (z >= NEAR_M).all():
            return not (
                px[:, 0].max() < 0 or px[:, 0].min() > w or px[:, 1].max() < 0 or px[:, 1].min() > h
            )
        return True

    def _fill(self, canvas: np.ndarray, corners: np.ndarray, colour: tuple[int, int, int]) -> None:
        self._fill_camera(canvas, corners @ self.camera.rotation.T + self.camera.tvec, colour)

    def _fill_camera(
        self, canvas: np.ndarray, cam_pts: np.ndarray, colour: tuple[int, int, int]
    ) -> None:
        polygon = self._project_clipped(cam_pts)
        if polygon is not None:
            cv2.fillPoly(canvas, [polygon], colour, lineType=cv2.LINE_AA, shift=4)

    def _clip_and_project(self, corners: np.ndarray) -> np.ndarray | None:
        return self._project_clipped(corners @ self.camera.rotation.T + self.camera.tvec)

    def _project_clipped(self, cam_pts: np.ndarray) -> np.ndarray | None:
        cam_pts = _clip_near(cam_pts, NEAR_M)
        if len(cam_pts) < 3:
            return None
        px = (
            cam_pts[:, :2] / cam_pts[:, 2:3] * np.diag(self.canvas_matrix)[:2]
            + self.canvas_matrix[:2, 2]
        )
        # Only against int32 overflow (fillPoly's fixed point, 4 fractional bits): clamping
        # each axis near the canvas bent the outline of faces crossing the near plane.
        px = np.clip(px, -PX_LIMIT, PX_LIMIT)
        return np.round(px * 16).astype(np.int32)

    def _draw_decal(self, canvas: np.ndarray, decal: Decal, shade: float) -> None:
        if decal.texture is None:
            if decal.colour is not None:
                self._fill(canvas, decal.corners, variety.shade(decal.colour, shade))
            return
        px, z = self.project_canvas(decal.corners)
        if (z <= NEAR_M).any():
            return
        x0, y0 = np.floor(px.min(axis=0)).astype(int)
        x1, y1 = np.ceil(px.max(axis=0)).astype(int) + 1
        w, h = self.canvas_size
        x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
        if x1 - x0 < 2 or y1 - y0 < 2:
            return
        tex = decal.texture
        th, tw = tex.shape[:2]
        src = np.array([[0, 0], [tw, 0], [tw, th], [0, th]], np.float32)
        dst = (px - (x0, y0)).astype(np.float32)
        matrix = cv2.getPerspectiveTransform(src, dst)
        size = (x1 - x0, y1 - y0)
        # shrink the texture first when the plate is small, or warping aliases badly
        patch = cv2.warpPerspective(
            (tex * shade).clip(0, 255).astype(np.uint8),
            matrix,
            size,
            flags=cv2.INTER_AREA if size[0] < tw / 2 else cv2.INTER_LINEAR,
        )
        mask = cv2.warpPerspective(np.full((th, tw), 255, np.uint8), matrix, size)
        roi = canvas[y0:y1, x0:x1]
        alpha = (mask.astype(np.float32) / 255.0)[:, :, None]
        roi[:] = (patch * alpha + roi * (1 - alpha)).astype(np.uint8)

    def _blur_vector(self, solid: Solid, light: Lighting) -> np.ndarray:
        """Image motion (canvas pixels) of a solid over the exposure, at most MAX_BLUR_PX.

        Measured at the corners well in front of the camera: the centre of a long body
        passing beside the camera can sit near the image plane, where the projection of a
        few centimetres of motion explodes.
        """
        if solid.velocity is None or not np.any(solid.velocity):
            return np.zeros(2)
        corners = solid.corners.reshape(-1, 3)
        start, z = self.project_canvas(corners)
        end, _ = self.project_canvas(corners + solid.velocity * light.exposure_s)
        ahead = z > 1.0
        if not ahead.any():
            return np.zeros(2)
        motion = np.median(end[ahead] - start[ahead], axis=0)
        length = float(np.linalg.norm(motion))
        return motion * (MAX_BLUR_PX / length) if length > MAX_BLUR_PX else motion

    def _blur_px(self, solid: Solid, light: Lighting) -> float:
        return float(np.linalg.norm(self._blur_vector(solid, light)))

    def _motion_blur(self, canvas: np.ndarray, solids: list[Solid], light: Lighting) -> None:
        """Smear the moving solids along their image motion over the exposure."""
        mask = np.zeros(canvas.shape[:2], np.uint8)
        for solid in solids:
            for face in solid.faces:
                polygon = self._clip_and_project(face.corners)
                if polygon is not None:
                    cv2.fillPoly(mask, [polygon], 255, shift=4)
        dx, dy = self._blur_vector(solids[0], light)
        length = max(2, round(math.hypot(dx, dy)))
        kernel = np.zeros((2 * length + 1, 2 * length + 1), np.float32)
        cv2.line(kernel, (length, length), (round(length + dx), round(length + dy)), 1.0)
        kernel /= kernel.sum()
        ys, xs = np.nonzero(mask)
        if len(xs) == 0:
            return
        pad = length + 2
        y0, y1 = max(ys.min() - pad, 0), min(ys.max() + pad, canvas.shape[0])
        x0, x1 = max(xs.min() - pad, 0), min(xs.max() + pad, canvas.shape[1])
        roi = canvas[y0:y1, x0:x1]
        smeared = cv2.filter2D(roi, -1, kernel)
        alpha = cv2.filter2D(mask[y0:y1, x0:x1], -1, kernel).astype(np.float32)[:, :, None] / 255
        roi[:] = (smeared * alpha + roi * (1 - alpha)).astype(np.uint8)

    def _develop(
        self,
        frame: np.ndarray,
        light: Lighting,
        rng: np.random.Generator,
        sun: np.ndarray | None = None,
    ) -> np.ndarray:
        """Light of the hour, IR mode, sensor noise and JPEG: what the camera delivers."""
        if light.infrared:
            grey = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY).astype(np.float32)
            lit = np.asarray(cv2.multiply(grey * 0.85 + 10, self._vignette()))
            image = cv2.cvtColor(lit.clip(0, 255).astype(np.uint8), cv2.COLOR_GRAY2BGR)
            sigma = self.finish.noise_night
        else:
            gain = min(1.25, light.level)
            warm = light.lamps * (1 - light.daylight)  # lamps alone light the hall warmer
            tint = np.diag([gain * (1 - 0.08 * warm), gain, gain * (1 + 0.06 * warm)])
            image = cv2.transform(frame, tint.astype(np.float32))
            image = cv2.addWeighted(image, 1.0, self.emissive, light.daylight, 0)
            if sun is not None:
                image = cv2.addWeighted(image, 1.0, sun, light.daylight, 0)
            sigma = self.finish.noise_day + (self.finish.noise_night - self.finish.noise_day) * max(
                0.0, 1.0 - light.level
            )
        level = min(self._noise_levels, key=lambda candidate: abs(candidate - sigma))
        oy, ox = (int(v) for v in rng.integers(0, 32, 2))
        h, w = image.shape[:2]
        noisy = cv2.add(image, self._noise[level][oy : oy + h, ox : ox + w], dtype=cv2.CV_8U)
        ok, jpeg = cv2.imencode(".jpg", noisy, [cv2.IMWRITE_JPEG_QUALITY, self.finish.jpeg_quality])
        decoded = cv2.imdecode(jpeg, cv2.IMREAD_COLOR) if ok else None
        return np.asarray(noisy if decoded is None else decoded)

    def _vignette(self) -> np.ndarray:
        if not hasattr(self, "_vignette_cache"):
            h, w = self.camera.height, self.camera.width
            ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
            r = np.hypot((xs - w / 2) / (w / 2), (ys - h / 2) / (h / 2))
            self._vignette_cache = np.clip(1.05 - 0.55 * r**2, 0.25, 1.0).astype(np.float32)
        return self._vignette_cache


# -- geometry helpers ---------------------------------------------------------------------


def face_shading(corners: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Outward unit normals of a convex solid's faces (``corners``: faces x 4 x 3) and the
    shade each face gets from the hall's light (overhead and one side)."""
    normals = np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0])
    normals /= np.linalg.norm(normals, axis=1, keepdims=True).clip(1e-12)
    middles = corners.mean(axis=1)
    flip = np.einsum("ij,ij->i", normals, middles - corners.reshape(-1, 3).mean(axis=0)) < 0
    normals[flip] *= -1
    shades = 0.62 + 0.3 * normals[:, 2].clip(0) + 0.12 * (normals @ _SIDE_LIGHT)
    return normals, shades


def _overlaps_any(boxes: np.ndarray, others: np.ndarray) -> np.ndarray:
    """Which of ``boxes`` (x0, y0, x1, y1 rows) overlap at least one of ``others``."""
    if len(boxes) == 0 or len(others) == 0:
        return np.zeros(len(boxes), bool)
    overlap = (
        (boxes[:, None, 0] < others[None, :, 2])
        & (others[None, :, 0] < boxes[:, None, 2])
        & (boxes[:, None, 1] < others[None, :, 3])
        & (others[None, :, 1] < boxes[:, None, 3])
    )
    return np.asarray(overlap.any(axis=1))


def _painter_order(
    solids: list[Solid], eye: np.ndarray, screen: np.ndarray | None = None
) -> list[Solid]:
    """Solids in an order that paints occluders last.

    The twin's solids are boxes aligned with the facility axes (its tracks run along x),
    so two solids that do not intersect are separated by a plane across some axis, and
    the one on the eye's side of that plane may hide the other, never the reverse. These
    "draw before" relations, kept only for solids whose outlines overlap on the screen
    (``screen``: one (x0, y0, x1, y1) box per solid), are sorted topologically, ties far
    to near. Sorting by centre distance alone fails for a long locomotive beside a column.
    """
    count = len(solids)
    if count < 2:
        return list(solids)
    corners = [s.corners.reshape(-1, 3) for s in solids]
    lo = np.array([c.min(axis=0) for c in corners])
    hi = np.array([c.max(axis=0) for c in corners])
    distance = np.array([float(np.linalg.norm(s.centre - eye)) for s in solids])
    nearer = np.zeros((count, count), bool)  # nearer[i, j]: j may hide i, i cannot hide j
    for axis in range(3):
        below = hi[:, None, axis] <= lo[None, :, axis] + 1e-6  # i entirely below j
        eye_j_side = eye[axis] >= lo[None, :, axis]
        eye_i_side = eye[axis] <= hi[:, None, axis]
        nearer |= below & eye_j_side & ~eye_i_side
        nearer |= (below & eye_i_side & ~eye_j_side).T
    before = nearer & ~nearer.T  # both ways: they cannot hide each other at all
    if screen is not None:
        overlap = (
            (screen[:, None, 0] < screen[None, :, 2])
            & (screen[None, :, 0] < screen[:, None, 2])
            & (screen[:, None, 1] < screen[None, :, 3])
            & (screen[None, :, 1] < screen[:, None, 3])
        )
        before &= overlap
    np.fill_diagonal(before, False)
    blockers = before.sum(axis=0)  # how many must be drawn before each
    order: list[int] = []
    placed = np.zeros(count, bool)
    ready = sorted(np.flatnonzero(blockers == 0).tolist(), key=lambda i: -distance[i])
    while len(order) < count:
        if not ready:  # a cycle (rare): break it at the farthest unplaced solid
            ready = [int(max(np.flatnonzero(~placed), key=lambda i: distance[i]))]
        i = ready.pop(0)
        if placed[i]:
            continue
        placed[i] = True
        order.append(i)
        for j in np.flatnonzero(before[i]).tolist():
            blockers[j] -= 1
            if blockers[j] == 0 and not placed[j]:
                ready.append(j)
        ready.sort(key=lambda k: -distance[k])
    return [solids[i] for i in order]


def _clip_near(points: np.ndarray, near: float) -> np.ndarray:
    """Sutherland-Hodgman clip of a polygon (camera coordinates) to z >= near."""
    if (points[:, 2] >= near).all():
        return points
    out = []
    count = len(points)
    for i in range(count):
        a, b = points[i], points[(i + 1) % count]
        a_in, b_in = a[2] >= near, b[2] >= near
        if a_in:
            out.append(a)
        if a_in != b_in:
            t = (near - a[2]) / (b[2] - a[2])
            out.append(a + t * (b - a))
    return np.array(out) if out else np.zeros((0, 3))


def hall_columns(
    facility: FacilityConfig,
    axes: dict[str, TrackAxis],
    camera_position: np.ndarray,
    hall: HallLook,
) -> list[Solid]:
    """Steel columns along each camera row (3.5 m right of each track in the classic hall)."""
    columns: list[Solid] = []
    half, lateral = hall.column_half_m, hall.column_lateral_m
    for index, track in enumerate(facility.tracks):
        if index % hall.column_rows:
            continue
        axis = axes[track.id]
        s = -6.0
        while s <= track.length_m + 6:
            base = axis.to_world(s, lateral)[0]
            if np.hypot(*(base[:2] - camera_position[:2])) > 1.0:
                columns.append(
                    track_box(
                        axis,
                        (s - half, s + half),
                        (lateral - half, lateral + half),
                        (0.0, HALL_HEIGHT_M),
                        hall.column_colour,
                        tag=f"column-{len(columns)}",
                    )
                )
            s += hall.column_every_m
    return columns


def _hall_background(
    renderer: CameraRenderer,
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Ray cast the static hall into the canvas: albedo image, daylight (window) image, and
    the sun patches' image on the floor (None in a hall without them)."""
    w, h = renderer.canvas_size
    k = renderer.canvas_matrix
    us, vs = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    rays_cam = np.stack(
        [(us - k[0, 2]) / k[0, 0], (vs - k[1, 2]) / k[1, 1], np.ones_like(us)], axis=-1
    )
    rays = rays_cam @ renderer.camera.rotation.astype(np.float32)  # camera -> world
    eye = renderer.camera.position.astype(np.float32)
    facility = renderer.facility
    ys = [t.origin[1] for t in facility.tracks]
    xs_max = max(t.origin[0] + t.length_m for t in facility.tracks)
    bounds = {"x": (-25.0, xs_max + 25.0), "y": (min(ys) - 7.0, max(ys) + 7.0)}
    big = np.float32(1e9)
    with np.errstate(divide="ignore", invalid="ignore"):
        t_floor = np.where(rays[..., 2] < 0, (0 - eye[2]) / rays[..., 2], big)
        t_ceiling = np.where(rays[..., 2] > 0, (HALL_HEIGHT_M - eye[2]) / rays[..., 2], big)
        t_x = np.where(
            rays[..., 0] > 0,
            (bounds["x"][1] - eye[0]) / rays[..., 0],
            np.where(rays[..., 0] < 0, (bounds["x"][0] - eye[0]) / rays[..., 0], big),
        )
        t_y = np.where(
            rays[..., 1] > 0,
            (bounds["y"][1] - eye[1]) / rays[..., 1],
            np.where(rays[..., 1] < 0, (bounds["y"][0] - eye[1]) / rays[..., 1], big),
        )
    t_all = np.stack([t_floor, t_ceiling, t_x, t_y])
    t_all = np.where(t_all > 0, t_all, big)
    which = np.argmin(t_all, axis=0)
    t_hit = np.min(t_all, axis=0)
    hit = eye + rays * t_hit[..., None]
    albedo = np.zeros((h, w, 3), np.float32)
    emissive = np.zeros((h, w, 3), np.float32)
    texture = _concrete_texture(renderer.rng)

    floor = which == 0
    hall = renderer.hall
    albedo[floor] = _floor_colour(hit[floor], facility, renderer.axes, texture, hall)
    ceiling = which == 1
    lamp = ceiling & ((np.abs((hit[..., 1] % 7.0) - 3.5) < 0.25) & ((hit[..., 0] % 6.0) < 3.0))
    albedo[ceiling] = (62, 64, 68)
    albedo[lamp] = (210, 225, 235)
    wall = (which == 2) | (which == 3)
    along = np.where(which == 2, hit[..., 1], hit[..., 0])
    wall_colour = np.where(
        (np.abs(along % 3.0) < 0.05)[..., None], hall.wall_seam, hall.wall
    ).astype(np.float32)
    band = hit[..., 2] < 1.2
    wall_colour[band] = hall.wall_band
    albedo[wall] = wall_colour[wall]
    window = wall & (hit[..., 2] > 5.0) & (hit[..., 2] < 8.2) & ((np.abs(along) % 6.0) < 4.2)
    window &= hall.windows
    albedo[window] = (40, 38, 36)
    emissive[window] = (215, 205, 190)
    emissive, sun = _daylight(hit, floor, bounds["y"][1], hall, emissive)
    return albedo.clip(0, 255).astype(np.uint8), emissive.clip(0, 255).astype(np.uint8), sun


def _daylight(
    hit: np.ndarray, floor: np.ndarray, far_wall_y: float, hall: HallLook, emissive: np.ndarray
) -> tuple[np.ndarray, np.ndarray | None]:
    """The daylight images: what lights everything (the classic hall's windows) and what
    lights only the bare hall where it still shows (a varied hall's windows and its sun
    patches on the floor, through the high windows of the far wall)."""
    sun = None
    if hall.sun_patches:
        x, y = hit[..., 0], hit[..., 1]
        slant = (x + 0.7 * (far_wall_y - y)) % 6.0
        patch = floor & (np.abs(slant - 2.0) < 1.4) & (far_wall_y - y < 14.0)
        sun = np.zeros(emissive.shape, np.float32)
        sun[patch] = (120, 135, 150)
    if hall == HallLook():  # the classic hall keeps its frames as they were: windows over all
        return emissive, sun
    masked = emissive + (0 if sun is None else sun)
    return np.zeros_like(emissive), masked.clip(0, 255).astype(np.uint8)


def _concrete_texture(rng: np.random.Generator) -> np.ndarray:
    coarse = cv2.resize(
        rng.normal(0, 1, (32, 32)).astype(np.float32), (256, 256), interpolation=cv2.INTER_CUBIC
    )
    fine = rng.normal(0, 0.6, (256, 256)).astype(np.float32)
    return (coarse * 0.6 + cv2.GaussianBlur(fine, (3, 3), 0)).astype(np.float32)


def _floor_colour(
    points: np.ndarray,
    facility: FacilityConfig,
    axes: dict[str, TrackAxis],
    texture: np.ndarray,
    hall: HallLook,
) -> np.ndarray:
    x, y = points[:, 0], points[:, 1]
    tx = (x * 10).astype(np.int64) % texture.shape[1]
    ty = (y * 10).astype(np.int64) % texture.shape[0]
    grain = texture[ty, tx]
    fb, fg, fr = hall.floor
    g = hall.grain
    colour = np.stack([fb + g * grain, fg + g * grain, fr + g * grain], axis=-1)
    for track in facility.tracks:
        axis = axes[track.id]
        rel = points[:, :2] - axis.origin
        s = rel @ axis.direction
        d = rel @ axis.normal
        on = (s > -20) & (s < track.length_m + 20)
        pit = on & (np.abs(d) < 0.62)
        if hall.pit == "open":
            colour[pit] = np.stack(
                [40 + 4 * grain[pit], 41 + 4 * grain[pit], 44 + 4 * grain[pit]], -1
            )
        elif hall.pit == "covered":  # chequer plates with seams every 1.5 m
            plate = pit & ((s % 1.5) > 0.04)
            colour[plate] = np.stack([92 + 6 * grain[plate]] * 3, -1)
            colour[pit & ~plate] = (40, 40, 42)
        rail = on & (np.abs(np.abs(d) - 0.76) < 0.036)
        colour[rail] = (150, 152, 158)
        foot = on & (np.abs(np.abs(d) - 0.76) >= 0.036) & (np.abs(np.abs(d) - 0.76) < 0.075)
        colour[foot] = (70, 72, 76)
        inside = (s > 0) & (s < track.length_m)
        if hall.walkway_line is not None:
            walkway = inside & (np.abs(np.abs(d) - hall.walkway_offset_m) < 0.05)
            colour[walkway] = hall.walkway_line
        if hall.station_lines:
            for station in facility.stations_on(track.id):
                for edge in (station.start_m, station.end_m):
                    line = (np.abs(s - edge) < 0.06) & (np.abs(d) > 0.9) & (np.abs(d) < 2.2)
                    colour[line] = (230, 230, 230)
        if hall.crosses_every_m:
            _survey_crosses(colour, s, d, inside, hall.crosses_every_m)
        for zone in range(hall.hatched_zones):
            _hatched_zone(colour, s, d, track.length_m * (zone + 0.5) / hall.hatched_zones)
    return colour


def _survey_crosses(
    colour: np.ndarray, s: np.ndarray, d: np.ndarray, inside: np.ndarray, every_m: float
) -> None:
    """White survey crosses between the rails' feet and the walkway, every ``every_m``."""
    ds = np.abs(((s + every_m / 2) % every_m) - every_m / 2)
    dd = np.abs(np.abs(d) - 1.3)
    arm = inside & (((ds < 0.25) & (dd < 0.025)) | ((dd < 0.25) & (ds < 0.025)))
    colour[arm] = (240, 240, 240)


def _hatched_zone(colour: np.ndarray, s: np.ndarray, d: np.ndarray, centre_m: float) -> None:
    """A yellow-black hatched keep-clear zone on the right walkway around ``centre_m``."""
    zone = (np.abs(s - centre_m) < 2.5) & (d < -1.2) & (d > -3.0)
    stripe = ((s + d) % 0.6) < 0.3
    colour[zone & stripe] = (20, 190, 230)
    colour[zone & ~stripe] = (30, 30, 30)
