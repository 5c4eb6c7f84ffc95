"""Facility geometry: world <-> image <-> track metres.

The same functions run on the edge (to rectify a camera image along a track) and in the
cloud (to check that an interval lies on the track a camera sees). Arrays are NumPy,
points are rows: world points ``(n, 3)`` in metres, image points ``(n, 2)`` in pixels of
the distorted camera image (what the camera delivers).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cached_property

import cv2
import numpy as np
from numpy.typing import ArrayLike, NDArray

from locowatch.facility.config import Camera, FacilityConfig, PointPair, Track

FloatArray = NDArray[np.float64]

# Undistortion is iterative; OpenCV's default (5 iterations) leaves centimetres of error
# at the corners of a wide lens 30 m away. These settings keep it well under a millimetre.
_UNDISTORT_CRITERIA = (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 100, 1e-12)


def undistort_normalized(
    uv: FloatArray, camera_matrix: FloatArray, distortion: FloatArray
) -> FloatArray:
    """Normalised undistorted coordinates of distorted pixels, iterated to convergence."""
    if hasattr(cv2, "undistortPointsIter"):  # OpenCV 4.x spells the iterated variant so
        out = cv2.undistortPointsIter(
            uv, camera_matrix, distortion, None, None, _UNDISTORT_CRITERIA
        )
    else:  # OpenCV 5 folded it into undistortPoints
        out = cv2.undistortPoints(uv, camera_matrix, distortion, criteria=_UNDISTORT_CRITERIA)
    return np.asarray(out, dtype=np.float64)


def pose_looking_at(position: ArrayLike, target: ArrayLike) -> tuple[FloatArray, FloatArray]:
    """OpenCV ``(rvec, tvec)`` of an upright camera at ``position`` aimed at ``target``.

    Upright: the image x axis stays horizontal. Useful to place cameras in a twin or to
    seed a calibration from a tape-measured mounting point.
    """
    eye = np.asarray(position, dtype=np.float64)
    forward = np.asarray(target, dtype=np.float64) - eye
    forward /= np.linalg.norm(forward)
    right = np.cross(forward, [0.0, 0.0, 1.0])
    if np.linalg.norm(right) < 1e-9:
        raise ValueError("camera looks straight up or down: its roll is undefined")
    right /= np.linalg.norm(right)
    down = np.cross(forward, right)
    rotation = np.vstack([right, down, forward])  # rows: camera axes in world coordinates
    rvec, _ = cv2.Rodrigues(rotation)
    return np.asarray(rvec, dtype=np.float64).reshape(3), -rotation @ eye


def _points(values: ArrayLike, width: int, name: str) -> FloatArray:
    """Coerce to a float (n, width) array, with a clear error for a wrong shape."""
    array = np.asarray(values, dtype=np.float64)
    if array.ndim == 1 and array.shape[0] == width:
        array = array[None, :]
    if array.ndim != 2 or array.shape[1] != width:
        raise ValueError(f"{name}: expected (n, {width}), got {array.shape}")
    return array


@dataclass(frozen=True)
class TrackAxis:
    """A straight track: metre ``s`` and lateral offset ``d`` (left of travel) <-> world."""

    track_id: str
    length_m: float
    origin: FloatArray  # (2,) world x, y of metre 0
    direction: FloatArray  # (2,) unit vector of growing metres
    rail_z: float = 0.0  # world height of the rail head: heights on a track count from it

    @classmethod
    def from_config(cls, track: Track) -> TrackAxis:
        heading = math.radians(track.heading_deg)
        return cls(
            track_id=track.id,
            length_m=track.length_m,
            origin=np.array(track.origin, dtype=np.float64),
            direction=np.array([math.cos(heading), math.sin(heading)]),
            rail_z=track.rail_height_m,
        )

    @property
    def normal(self) -> FloatArray:
        """Unit vector to the left of the direction of growing metres."""
        return np.array([-self.direction[1], self.direction[0]])

    def to_world(
        self, s: ArrayLike, lateral: ArrayLike = 0.0, height: ArrayLike = 0.0
    ) -> FloatArray:
        """World points ``(n, 3)`` at metres ``s``, ``lateral`` metres left, ``height`` above
        the rail head."""
        s_arr, d_arr, h_arr = np.broadcast_arrays(
            np.atleast_1d(np.asarray(s, dtype=np.float64)),
            np.asarray(lateral, dtype=np.float64),
            np.asarray(height, dtype=np.float64),
        )
        xy = self.origin + s_arr[:, None] * self.direction + d_arr[:, None] * self.normal
        return np.column_stack([xy, h_arr + self.rail_z])

    def to_track(self, world: ArrayLike) -> tuple[FloatArray, FloatArray]:
        """Metres along the track and lateral offsets of world points (height ignored)."""
        xyz = np.asarray(world, dtype=np.float64)
        xy = _points(xyz[..., :2] if xyz.ndim else xyz, 2, "world points")
        rel = xy - self.origin
        return rel @ self.direction, rel @ self.normal


@dataclass(frozen=True)
class PoseSolution:
    rvec: FloatArray
    tvec: FloatArray
    rms_px: float  # reprojection error of the point pairs, pixels
    max_px: float
    errors_px: tuple[float, ...] = ()  # per point pair, in the order given


def solve_pose(
    pairs: list[PointPair], camera_matrix: FloatArray, distortion: FloatArray
) -> PoseSolution:
    """Solve a camera pose from surveyed image-to-world point pairs.

    SQPnP gives a global solution without an initial guess for planar and non-planar
    layouts alike; Levenberg-Marquardt then refines it on the same points.
    """
    world = np.array([p.world for p in pairs], dtype=np.float64)
    image = np.array([p.image for p in pairs], dtype=np.float64)
    ok, rvec, tvec = cv2.solvePnP(world, image, camera_matrix, distortion, flags=cv2.SOLVEPNP_SQPNP)
    if not ok:
        raise ValueError("solvePnP found no pose for these point pairs")
    rvec, tvec = cv2.solvePnPRefineLM(world, image, camera_matrix, distortion, rvec, tvec)
    projected, _ = cv2.projectPoints(world, rvec, tvec, camera_matrix, distortion)
    errors = np.linalg.norm(projected.reshape(-1, 2) - image, axis=1)
    return PoseSolution(
        rvec=np.asarray(rvec, dtype=np.float64).reshape(3),
        tvec=np.asarray(tvec, dtype=np.float64).reshape(3),
        rms_px=float(np.sqrt(np.mean(errors**2))),
        max_px=float(errors.max()),
        errors_px=tuple(float(e) for e in errors),
    )


@dataclass(frozen=True)
class CameraModel:
    """A calibrated camera: pinhole intrinsics, OpenCV lens distortion and a pose."""

    camera_id: str
    width: int
    height: int
    camera_matrix: FloatArray  # (3, 3)
    distortion: FloatArray  # (k,)
    rvec: FloatArray  # (3,) world -> camera rotation (Rodrigues)
    tvec: FloatArray  # (3,) world -> camera translation
    pose_rms_px: float | None = field(default=None, compare=False)  # when solved from pairs
    pose_errors_px: tuple[float, ...] = field(default=(), compare=False)  # per point pair

    @classmethod
    def from_config(cls, camera: Camera) -> CameraModel:
        """Build the model; the pose is solved from point pairs when no pose is given."""
        k = camera.intrinsics
        matrix = np.array([[k.fx, 0.0, k.cx], [0.0, k.fy, k.cy], [0.0, 0.0, 1.0]])
        distortion = np.array(camera.distortion, dtype=np.float64)
        rms: float | None = None
        errors: tuple[float, ...] = ()
        if camera.pose is not None:
            rvec = np.array(camera.pose.rvec, dtype=np.float64)
            tvec = np.array(camera.pose.tvec, dtype=np.float64)
        else:
            assert camera.point_pairs is not None  # guaranteed by the config validator
            solution = solve_pose(camera.point_pairs, matrix, distortion)
            rvec, tvec, rms = solution.rvec, solution.tvec, solution.rms_px
            errors = solution.errors_px
        return cls(
            camera_id=camera.id,
            width=camera.resolution.width,
            height=camera.resolution.height,
            camera_matrix=matrix,
            distortion=distortion,
            rvec=rvec,
            tvec=tvec,
            pose_rms_px=rms,
            pose_errors_px=errors,
        )

    @cached_property
    def rotation(self) -> FloatArray:
        """World -> camera rotation matrix."""
        matrix, _ = cv2.Rodrigues(self.rvec)
        return np.asarray(matrix, dtype=np.float64)

    @property
    def position(self) -> FloatArray:
        """Camera centre in world coordinates."""
        return np.asarray(-self.rotation.T @ self.tvec, dtype=np.float64)

    def project(self, world: ArrayLike) -> FloatArray:
        """Pixels ``(n, 2)`` where world points ``(n, 3)`` appear (lens distortion applied)."""
        xyz = _points(world, 3, "world points")
        pixels, _ = cv2.projectPoints(
            xyz, self.rvec, self.tvec, self.camera_matrix, self.distortion
        )
        return np.asarray(pixels, dtype=np.float64).reshape(-1, 2)

    @cached_property
    def field_radius(self) -> float:
        """Largest normalised radius (tan of the angle off-axis) the image covers.

        The distortion polynomial folds back for rays far outside the lens's field, so
        ``project`` alone can put a point behind the camera's shoulder inside the image;
        ``visible`` uses this radius to refuse such points.
        """
        w, h = self.width, self.height
        edge = np.array(
            [[0, 0], [w / 2, 0], [w, 0], [w, h / 2], [w, h], [w / 2, h], [0, h], [0, h / 2]],
            dtype=np.float64,
        )
        normalized = undistort_normalized(
            edge.reshape(-1, 1, 2), self.camera_matrix, self.distortion
        ).reshape(-1, 2)
        return float(np.linalg.norm(normalized, axis=1).max())

    def visible(self, world: ArrayLike) -> NDArray[np.bool_]:
        """Whether each world point appears in the image (in front, in the field, in frame)."""
        return self.image_points(world)[1]

    def image_points(self, world: ArrayLike) -> tuple[FloatArray, NDArray[np.bool_]]:
        """Pixels ``(n, 2)`` of world points ``(n, 3)`` and whether each appears in the
        image (in front, in the field, in frame): ``project`` and ``visible`` in one go."""
        xyz = _points(world, 3, "world points")
        cam = xyz @ self.rotation.T + self.tvec
        with np.errstate(divide="ignore", invalid="ignore"):
            radius = np.linalg.norm(cam[:, :2] / cam[:, 2:3], axis=1)
        pixels = self.project(xyz)
        inside = np.asarray(
            (cam[:, 2] > 0)
            & (radius <= self.field_radius * 1.01)
            & (pixels[:, 0] >= 0)
            & (pixels[:, 0] < self.width)
            & (pixels[:, 1] >= 0)
            & (pixels[:, 1] < self.height)
        )
        return pixels, inside

    def in_front(self, world: ArrayLike) -> NDArray[np.bool_]:
        """Whether each world point lies in front of the camera."""
        xyz = _points(world, 3, "world points")
        return np.asarray((xyz @ self.rotation.T + self.tvec)[:, 2] > 0)

    def rays(self, image: ArrayLike) -> FloatArray:
        """Unit viewing directions in world coordinates ``(n, 3)`` through pixels ``(n, 2)``."""
        uv = _points(image, 2, "image points").reshape(-1, 1, 2)
        normalized = undistort_normalized(uv, self.camera_matrix, self.distortion).reshape(-1, 2)
        in_camera = np.column_stack([normalized, np.ones(len(normalized))])
        in_world = in_camera @ self.rotation  # rotation.T applied to each row
        return np.asarray(in_world / np.linalg.norm(in_world, axis=1, keepdims=True))

    def image_to_plane(self, image: ArrayLike, height: float = 0.0) -> FloatArray:
        """World points ``(n, 3)`` where the rays through pixels meet the plane z = height.

        Rays parallel to the plane or meeting it behind the camera give NaN rows.
        """
        rays = self.rays(image)
        origin = self.position
        with np.errstate(divide="ignore", invalid="ignore"):
            t = (height - origin[2]) / rays[:, 2]
        t = np.where(t > 0, t, np.nan)
        return np.asarray(origin + t[:, None] * rays)


class FacilityGeometry:
    """Track axes and camera models of a facility, built once from its config."""

    def __init__(self, config: FacilityConfig) -> None:
        self.tracks = {t.id: TrackAxis.from_config(t) for t in config.tracks}
        self.cameras = {c.id: CameraModel.from_config(c) for c in config.cameras}

    def track_to_image(
        self,
        camera_id: str,
        track_id: str,
        s: ArrayLike,
        lateral: ArrayLike = 0.0,
        height: ArrayLike = 0.0,
    ) -> FloatArray:
        """Pixels where track points (metres, lateral offset, height) appear in a camera."""
        return self.cameras[camera_id].project(self.tracks[track_id].to_world(s, lateral, height))

    def image_to_track(
        self, camera_id: str, track_id: str, image: ArrayLike, height: float = 0.0
    ) -> tuple[FloatArray, FloatArray]:
        """Metres along a track and lateral offsets of pixels assumed at ``height`` above rail."""
        axis = self.tracks[track_id]
        world = self.cameras[camera_id].image_to_plane(image, axis.rail_z + height)
        return axis.to_track(world)
