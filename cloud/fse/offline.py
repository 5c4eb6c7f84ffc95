"""Run a flow's FSE over recorded envelopes without a server or a database.

The same validation and fusion ingest runs, for evaluations, benchmarks and for trying
FSE settings on stored estimations before giving them to a flow.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from cloud.fse.estimator import FacilityStateEstimator, Tick
from cloud.records import HealthRecord, Rejected
from cloud.validation import FacilityCatalog, Validator
from locowatch.facility.config import FacilityConfig
from locowatch.v1 import uplink_pb2


def fuse_offline(
    facility: FacilityConfig,
    flow: str,
    envelopes: Iterable[uplink_pb2.Envelope],
    fse: FacilityStateEstimator | None = None,
) -> Iterator[Tick]:
    """Ticks of ``flow``'s FSE over ``envelopes`` (in capture order); invalid ones skipped."""
    fse = fse or FacilityStateEstimator(facility, flow)
    validator = Validator(FacilityCatalog.from_config(facility), "offline")
    for envelope in envelopes:
        record = validator.check(envelope, now=float("inf"))
        if isinstance(record, Rejected):
            continue
        if isinstance(record, HealthRecord) or record.flow == flow:
            fse.add(record)
            yield from fse.advance()
