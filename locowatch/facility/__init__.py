"""The shared description of a facility: its config schema and its geometry.

Edge and cloud both import this package; nothing here talks to a camera or a database.
"""

from locowatch.facility.config import (
    Camera,
    EstimatorRef,
    FacilityConfig,
    Flow,
    FseSettings,
    Gateway,
    PointPair,
    Pose,
    Station,
    Track,
    TrackView,
)
from locowatch.facility.geometry import (
    CameraModel,
    FacilityGeometry,
    PoseSolution,
    TrackAxis,
    pose_looking_at,
    solve_pose,
)
from locowatch.facility.loading import ConfigProblem, FacilityConfigError, load_facility

__all__ = [
    "Camera",
    "CameraModel",
    "ConfigProblem",
    "EstimatorRef",
    "FacilityConfig",
    "FacilityConfigError",
    "FacilityGeometry",
    "Flow",
    "FseSettings",
    "Gateway",
    "PointPair",
    "Pose",
    "PoseSolution",
    "Station",
    "Track",
    "TrackAxis",
    "TrackView",
    "load_facility",
    "pose_looking_at",
    "solve_pose",
]
