"""Run a flow's FSE over recorded envelopes without a server or a database.

The same validation and fusion ingest runs, for evaluations, benchmarks and for trying
FSE settings on stored estimations before giving them to a flow.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING

from cloud.fse.estimator import FacilityStateEstimator, Tick
from cloud.records import HealthRecord, Record, Rejected
from cloud.validation import FacilityCatalog, Validator
from locowatch.facility.config import FacilityConfig
from locowatch.v1 import uplink_pb2

if TYPE_CHECKING:
    from cloud.store import Store


def fuse_flows(
    fses: Mapping[str, FacilityStateEstimator],
    envelopes: Iterable[uplink_pb2.Envelope],
    validator: Validator,
    on_reject: Callable[[Rejected], None] | None = None,
) -> Iterator[tuple[Record, list[Tick]]]:
    """Each valid envelope's record (in the order given) with the ticks every flow's FSE
    made on it; ``on_reject`` sees every envelope validation refused."""
    for envelope in envelopes:
        record = validator.check(envelope, now=float("inf"))
        if isinstance(record, Rejected):
            if on_reject is not None:
                on_reject(record)
            continue
        ticks: list[Tick] = []
        for flow, fse in fses.items():
            if isinstance(record, HealthRecord) or record.flow == flow:
                fse.add(record)
                ticks += fse.advance()
        yield record, ticks


def fuse_offline(
    facility: FacilityConfig,
    flow: str,
    envelopes: Iterable[uplink_pb2.Envelope],
    fse: FacilityStateEstimator | None = None,
) -> Iterator[Tick]:
    """Ticks of ``flow``'s FSE over ``envelopes`` (in capture order); invalid ones skipped."""
    fses = {flow: fse or FacilityStateEstimator(facility, flow)}
    validator = Validator(FacilityCatalog.from_config(facility), "offline")
    for _, ticks in fuse_flows(fses, envelopes, validator):
        yield from ticks


def store_offline(
    store: Store,
    facility: FacilityConfig,
    flows: Sequence[str],
    envelopes: Iterable[uplink_pb2.Envelope],
    gateway_id: str = "offline",
    batch_size: int = 5000,
    fses: Mapping[str, FacilityStateEstimator] | None = None,
    on_ticks: Callable[[list[Tick]], None] | None = None,
    on_reject: Callable[[Rejected], None] | None = None,
) -> int:
    """Write ``envelopes`` and every flow's state over them as ingest would, without ingest.

    For dashboards, reports and benchmarks that need a database full of a twin's day
    quickly; ingest's own path (gRPC, acks, dedup) is what its tests exercise. Envelopes
    are numbered after the gateway's stored mark; pass the same ``fses`` to a later call
    to go on with the same locomotives. ``on_ticks`` sees every flow's ticks as they are
    made, ``on_reject`` every envelope validation refused. Returns how many envelopes were
    stored.
    """
    fses = fses or {flow: FacilityStateEstimator(facility, flow) for flow in flows}
    validator = Validator(FacilityCatalog.from_config(facility), gateway_id)
    numbered = _numbered(envelopes, store.last_seq(gateway_id) + 1)
    records: list[Record] = []
    ticks: list[Tick] = []
    stored = 0
    for record, made in fuse_flows({f: fses[f] for f in flows}, numbered, validator, on_reject):
        records.append(record)
        if made and on_ticks is not None:
            on_ticks(made)
        ticks += made
        if len(records) >= batch_size:
            stored += _flush(store, facility.facility.id, gateway_id, records, ticks)
    return stored + _flush(store, facility.facility.id, gateway_id, records, ticks)


def _numbered(
    envelopes: Iterable[uplink_pb2.Envelope], first: int
) -> Iterator[uplink_pb2.Envelope]:
    for seq, envelope in enumerate(envelopes, start=first):
        envelope.seq = seq
        yield envelope


def _flush(
    store: Store, facility_id: str, gateway_id: str, records: list[Record], ticks: list[Tick]
) -> int:
    if records:
        store.write_batch(gateway_id, facility_id, records, [], records[-1].origin.seq)
    store.write_ticks(ticks)
    count = len(records)
    records.clear()
    ticks.clear()
    return count
