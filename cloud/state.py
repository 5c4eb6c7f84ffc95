"""Facility state of every facility and flow: the FSEs, their restart, and their writer.

``FacilityState.feed`` takes records that are already durably stored (ingest hands them
over after the commit; this runs in the FSE process, see ``fse_process``), files them
with the right estimators and queues the snapshots that come out. One writer task
stores the queue; while the database is down the queue is bounded and drops its oldest
snapshots (they are derived data: the raw estimations they came from are safe). On
start, each FSE resumes from its last stored snapshot and replays the estimations
stored after it, so a crash between storing and fusing loses nothing and keeps
locomotive ids.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Iterable

from cloud import metrics
from cloud.fse import FacilityStateEstimator, Tick
from cloud.records import HealthRecord, Record
from cloud.retry import retry_database
from cloud.store import Store
from locowatch.facility.config import FacilityConfig

log = logging.getLogger(__name__)

LIVE_WINDOW_S = 120.0  # an FSE whose data is this fresh follows the wall clock when idle
MAX_QUEUED_TICKS = 3600
WRITE_BATCH = 200


class FacilityState:
    def __init__(self, facilities: dict[str, FacilityConfig], store: Store) -> None:
        self.store = store
        self.estimators = {
            (facility_id, flow.name): FacilityStateEstimator(config, flow.name)
            for facility_id, config in facilities.items()
            for flow in config.flows
        }
        self.queue: deque[Tick] = deque()
        self.queued = asyncio.Event()
        # Highest sequence fused per gateway: records handed over again after a restart
        # (replayed from the database and still queued) are fused once.
        self.fused_seq: dict[str, int] = {}

    async def restore(self) -> None:
        for (facility_id, flow), fse in self.estimators.items():
            snapshot = await asyncio.to_thread(self.store.latest_snapshot, facility_id, flow)
            next_id = await asyncio.to_thread(self.store.next_loco_number, facility_id, flow)
            if snapshot is None:
                fse.restore_ids(next_id)
                continue
            fse.restore(snapshot, next_id)
            since = snapshot.time - fse.settings.observation_max_age_s
            records = await asyncio.to_thread(self.store.replay, facility_id, flow, since)
            self._feed_one(fse, records)
            for record in records:
                gateway, seq = record.origin.gateway_id, record.origin.seq
                self.fused_seq[gateway] = max(self.fused_seq.get(gateway, 0), seq)
            log.info(
                "facility %s flow %s: replayed %d estimations stored after the last snapshot",
                facility_id,
                flow,
                len(records),
            )

    def feed(self, facility_id: str, records: Iterable[Record]) -> None:
        """File stored records with their facility's estimators; queue what comes out."""
        flows = {flow: fse for (fid, flow), fse in self.estimators.items() if fid == facility_id}
        by_flow: dict[str, list[Record]] = {flow: [] for flow in flows}
        fused = self.fused_seq
        for record in records:  # kept in capture order: the FSE clock follows it
            gateway, seq = record.origin.gateway_id, record.origin.seq
            if seq <= fused.get(gateway, 0):
                continue
            fused[gateway] = seq
            if isinstance(record, HealthRecord):
                for queue in by_flow.values():  # camera health matters to every flow
                    queue.append(record)
            elif record.flow in by_flow:
                by_flow[record.flow].append(record)
        for flow, queued in by_flow.items():
            if queued:
                self._feed_one(flows[flow], queued)

    def _feed_one(self, fse: FacilityStateEstimator, records: Iterable[Record]) -> None:
        ticks: list[Tick] = []
        for record in records:  # in capture order: tick as the clock passes each boundary
            fse.add(record)
            ticks += fse.advance()
        self._enqueue(ticks)

    def _enqueue(self, ticks: list[Tick]) -> None:
        if not ticks:
            return
        self.queue.extend(ticks)
        overflow = len(self.queue) - MAX_QUEUED_TICKS
        for _ in range(max(overflow, 0)):
            self.queue.popleft()
            metrics.SNAPSHOTS_DROPPED.inc()
        last = ticks[-1].snapshot
        metrics.LOCOMOTIVES.labels(last.facility_id, last.flow).set(len(last.locomotives))
        self.queued.set()

    async def run_writer(self) -> None:
        """Store queued snapshots and events, in order, for as long as the server runs."""
        while True:
            await self.queued.wait()
            self.queued.clear()
            while self.queue:
                batch = [self.queue[i] for i in range(min(WRITE_BATCH, len(self.queue)))]
                await retry_database("write state", self.store.write_ticks, batch)
                for _ in batch:
                    tick = self.queue.popleft()
                    s = tick.snapshot
                    metrics.SNAPSHOTS.labels(s.facility_id, s.flow).inc()

    async def run_clock(self, period_s: float = 1.0) -> None:
        """Advance live FSEs by wall time, so that silence (dead cameras) still ages state."""
        while True:
            await asyncio.sleep(period_s)
            now = time.time()
            for fse in self.estimators.values():
                if fse.clock is not None and now - fse.clock < LIVE_WINDOW_S:
                    self._enqueue(fse.advance(now))
