"""Which readings of an attribute estimator are published: those of the form its flow
accepts (``accept:`` in the facility file, a regular expression matched in full).

A plate reader that sees half a plate reads a fragment ("8", "80С-26"); published, such
a reading votes in the FSE and can be what the state shows until better ones outvote it.
Refused here, it is counted per camera and logged (the first at once, then one summary
line a minute per camera), so a camera whose readings are all refused is visible.
"""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass, field

from edge.estimators import metrics
from locowatch.v1 import estimation_pb2

log = logging.getLogger(__name__)

SUMMARY_EVERY_S = 60.0


@dataclass
class _CameraRefusals:
    since_log: int = 0
    logged_at: float | None = None


@dataclass
class Acceptance:
    """The accepted form of one attribute's readings, with the count of those refused."""

    attribute: str
    pattern: re.Pattern[str]
    _cameras: dict[str, _CameraRefusals] = field(default_factory=dict)

    @classmethod
    def of(cls, attribute: str, accept: str | None) -> Acceptance | None:
        return None if accept is None else cls(attribute, re.compile(accept))

    def check(
        self, estimation: estimation_pb2.AttributeEstimation
    ) -> estimation_pb2.AttributeEstimation | None:
        """``estimation`` with only accepted alternatives, or None when its value is refused."""
        if self.pattern.fullmatch(estimation.value) is None:
            self._refused(estimation)
            return None
        kept = [a for a in estimation.alternatives if self.pattern.fullmatch(a.value)]
        if len(kept) < len(estimation.alternatives):
            del estimation.alternatives[:]
            estimation.alternatives.extend(kept)
        return estimation

    def _refused(self, estimation: estimation_pb2.AttributeEstimation) -> None:
        camera = estimation.camera_id
        metrics.READINGS_REFUSED.labels(self.attribute, camera).inc()
        state = self._cameras.setdefault(camera, _CameraRefusals())
        state.since_log += 1
        now = time.monotonic()
        if state.logged_at is not None and now - state.logged_at < SUMMARY_EVERY_S:
            return
        log.info(
            "camera %s: refused %d %s reading(s) not of the accepted form %r (latest %r)",
            camera,
            state.since_log,
            self.attribute,
            self.pattern.pattern,
            estimation.value,
        )
        state.since_log, state.logged_at = 0, now
