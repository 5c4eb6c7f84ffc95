"""Facility state estimation: per-camera intervals in, locomotives with ids out.

``fusion`` merges the cameras' views of one track into bodies, ``tracker`` follows
locomotives along a track and derives events, ``identity`` tallies series and plate
readings, and ``estimator`` runs them for one facility and flow on the capture clock.
"""

from cloud.fse.estimator import FacilityStateEstimator, LocoState, Snapshot, Tick
from cloud.fse.tracker import Event

__all__ = ["Event", "FacilityStateEstimator", "LocoState", "Snapshot", "Tick"]
