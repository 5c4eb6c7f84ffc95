"""The facility state estimators in a process of their own, beside ingest.

Ingest's storage path (check, COPY, ack) and the FSEs both want a core; in one Python
process they take turns under the GIL. Here ingest hands each committed batch's records
to a child process through a bounded queue (as plain tuples, see ``as_plain``) and
goes on. The child restores the FSEs from their last snapshots, fuses what arrives and
writes snapshots and events with its own connections. If the child dies, ingest starts
a new one, which replays from the database whatever the dead one had not yet turned
into snapshots: the queue may lose items, the database never does. When the child falls
behind, the full queue makes ingest wait (backpressure), it never drops records.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import queue as queue_module
import signal
from collections.abc import Sequence
from dataclasses import dataclass
from multiprocessing.process import BaseProcess
from multiprocessing.synchronize import Event as EventType
from pathlib import Path
from typing import Any

from cloud import metrics
from cloud.records import Record, as_plain, from_plain
from locowatch.processes import die_with_parent

log = logging.getLogger(__name__)

QUEUE_BATCHES = 64  # committed batches waiting for the FSEs (about 128k records)
# The gRPC health service name under which ingest reports the state estimators: SERVING
# once their process has restored its last snapshots and replayed what was stored after
# them, NOT_SERVING while it starts, restarts or cannot start (ingest stores regardless).
HEALTH_NAME = "locowatch.fse"
RESTART_BACKOFF_S = (1.0, 2.0, 5.0, 10.0, 30.0)
STOP_TIMEOUT_S = 20.0
FULL_RECHECK_S = 1.0  # while the queue is full, check this often that the child lives
_STOP = None


@dataclass(frozen=True)
class ChildSettings:
    """What the child needs to rebuild the FSEs on its own (picklable)."""

    facility_files: tuple[Path, ...]
    db_url: str
    metrics_port: int | None = None
    db_connections: int = 2


class StateProcess:
    def __init__(
        self,
        facility_files: Sequence[Path],
        db_url: str,
        metrics_port: int | None = None,
        db_connections: int = 2,
    ) -> None:
        self.settings = ChildSettings(tuple(facility_files), db_url, metrics_port, db_connections)
        self.context = multiprocessing.get_context("spawn")  # no inherited event loop or pool
        self.queue: multiprocessing.Queue[Any] = self.context.Queue(QUEUE_BATCHES)
        self.ready = self.context.Event()  # set by the child once it has restored
        self.process: BaseProcess | None = None
        self.restarts = 0
        self.stopping = False

    def start(self) -> None:
        self.ready = self.context.Event()  # a new child is not ready, whatever the last was
        self.process = self.context.Process(
            target=run_state_process,
            args=(self.settings, self.queue, self.ready),
            name="locowatch-fse",
            daemon=True,
        )
        self.process.start()
        log.info("facility state estimators started in process %d", self.process.pid)

    async def feed(self, facility_id: str, records: list[Record]) -> None:
        """Hand stored records to the FSEs; waits while their queue is full.

        While the child is dead nothing is handed over: the records are stored, and the
        next child replays them from the database. Waiting for a child that crashes on
        every start would stop ingest from storing anything at all."""
        item = (facility_id, as_plain(records))
        while self.alive():
            try:
                self.queue.put_nowait(item)
                return
            except queue_module.Full:
                with contextlib.suppress(queue_module.Full):
                    await asyncio.to_thread(self.queue.put, item, True, FULL_RECHECK_S)
                    return
        metrics.FSE_HANDOVERS_SKIPPED.inc()

    def alive(self) -> bool:
        return self.process is not None and self.process.is_alive()

    def serving(self) -> bool:
        """The child runs and has restored its estimators: snapshots are current."""
        return self.alive() and self.ready.is_set()

    async def supervise(self, period_s: float = 1.0) -> None:
        """Restart the child when it dies, with growing pauses."""
        while True:
            await asyncio.sleep(period_s)
            if self.stopping or self.process is None or self.process.is_alive():
                continue
            code = self.process.exitcode
            pause = RESTART_BACKOFF_S[min(self.restarts, len(RESTART_BACKOFF_S) - 1)]
            log.error("the FSE process exited (%s); restarting in %.0f s", code, pause)
            metrics.FSE_RESTARTS.inc()
            self.restarts += 1
            await asyncio.sleep(pause)
            # A child killed mid-put can leave the old queue locked: start on a new one.
            self.queue = self.context.Queue(QUEUE_BATCHES)
            self.start()

    async def stop(self) -> None:
        """Let the child fuse and write what is queued, then end it."""
        self.stopping = True
        if self.process is None or not self.process.is_alive():
            return
        await asyncio.to_thread(self.queue.put, _STOP)
        await asyncio.to_thread(self.process.join, STOP_TIMEOUT_S)
        if self.process.is_alive():
            log.warning("the FSE process did not stop in time; terminating it")
            self.process.terminate()


def run_state_process(
    settings: ChildSettings,
    queue: multiprocessing.Queue[Any],
    ready: EventType,
) -> None:
    """Entry point of the child process."""
    from locowatch.logs import configure_logging

    die_with_parent(signal.SIGKILL)  # an orphan would write snapshots beside the next FSEs
    configure_logging()
    asyncio.run(_serve(settings, queue, ready))


async def _serve(
    settings: ChildSettings,
    queue: multiprocessing.Queue[Any],
    ready: EventType,
) -> None:
    from prometheus_client import start_http_server

    from cloud.state import FacilityState
    from cloud.store import Store
    from locowatch.collector import collect_rarely
    from locowatch.facility import load_facility

    facilities = {f.facility.id: f for f in map(load_facility, settings.facility_files)}
    store = Store(settings.db_url, max_connections=settings.db_connections)
    await asyncio.to_thread(store.open)
    state = FacilityState(facilities, store)
    await state.restore()
    collect_rarely()
    if settings.metrics_port is not None:
        try:
            start_http_server(settings.metrics_port)
        except OSError as exc:
            log.warning("no FSE metrics: port %d: %s", settings.metrics_port, exc.strerror)
    writer = asyncio.create_task(state.run_writer(), name="state-writer")
    clock = asyncio.create_task(state.run_clock(), name="state-clock")
    ready.set()
    while (item := await asyncio.to_thread(queue.get)) is not _STOP:
        facility_id, plain = item
        state.feed(facility_id, from_plain(plain))
        await asyncio.sleep(0)  # let the writer run between batches
    while state.queue:  # write what the last batches produced
        await asyncio.sleep(0.05)
    for task in (writer, clock):
        task.cancel()
    await asyncio.gather(writer, clock, return_exceptions=True)
    await asyncio.to_thread(store.close)
    log.info("facility state estimators stopped")
