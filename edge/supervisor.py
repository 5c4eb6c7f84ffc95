"""``locowatch edge run``: every service of a gateway as its own process, kept alive.

Each service runs as ``locowatch edge <service> --config FILE`` in a child process, so a
crash stays local. The supervisor restarts a child that exits, after a delay that doubles
with each quick failure (with jitter, capped) and resets once the child has stayed up for a
while: a service that crashes once comes straight back, one that crash-loops does not spin
the CPU. In production, systemd or compose does this job instead (see deploy/); this is for
a small install and the demo.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from edge.plan import GatewayPlan, ServicePlan
from locowatch.backoff import Backoff
from locowatch.processes import die_with_parent_by_sigterm

log = logging.getLogger(__name__)

STABLE_AFTER_S = 30.0  # a child up this long has its backoff reset
RESTART_BACKOFF = Backoff(initial_s=0.5, max_s=30.0, jitter_s=1.0)
STOP_GRACE_S = 10.0


@dataclass
class Child:
    service: ServicePlan
    command: list[str]
    process: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    restarts: int = 0
    quick_failures: int = 0
    next_start: float = 0.0

    def start(self) -> None:
        self.process = subprocess.Popen(
            self.command,
            start_new_session=True,
            preexec_fn=die_with_parent_by_sigterm,  # noqa: PLW1509 (the supervisor runs no other threads)
        )
        self.started_at = time.monotonic()
        log.info("started %s (pid %d)", self.service.name, self.process.pid)

    def delay(self) -> float:
        """Backoff before the next start: 0.5 s doubling per quick failure, up to 30 s."""
        return RESTART_BACKOFF.delay(self.quick_failures)


class Supervisor:
    def __init__(
        self, plan: GatewayPlan, config_path: Path, services: list[ServicePlan] | None = None
    ) -> None:
        self.plan = plan
        base = [sys.executable, "-m", "locowatch"]
        self.children = [
            Child(s, [*base, *s.arguments(str(config_path))])
            for s in (services or list(plan.services))
        ]
        self.stopping = threading.Event()

    def run(self) -> None:
        """Start everything, restart what dies, stop all on SIGINT/SIGTERM."""
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: self.stopping.set())
        for child in self.children:
            child.start()
        while not self.stopping.wait(0.2):
            self.check()
        self.stop()

    def check(self) -> None:
        now = time.monotonic()
        for child in self.children:
            process = child.process
            if process is not None and process.poll() is None:
                if child.quick_failures and now - child.started_at > STABLE_AFTER_S:
                    child.quick_failures = 0
                continue
            if process is not None:  # it just died
                up = now - child.started_at
                child.quick_failures = child.quick_failures + 1 if up < STABLE_AFTER_S else 1
                child.next_start = now + child.delay()
                log.error(
                    "%s exited with %s after %.1f s; restarting in %.1f s",
                    child.service.name, process.returncode, up, child.next_start - now,
                )  # fmt: skip
                child.process = None
            if now >= child.next_start:
                child.restarts += 1
                child.start()

    def stop(self) -> None:
        for child in self.children:
            if child.process is not None and child.process.poll() is None:
                child.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE_S
        for child in self.children:
            if child.process is None:
                continue
            try:
                child.process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.warning("%s did not stop in time; killing it", child.service.name)
                os.killpg(child.process.pid, signal.SIGKILL)
                child.process.wait()
        log.info("gateway stopped")
