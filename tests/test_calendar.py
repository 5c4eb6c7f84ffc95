"""The suite's calendar-sensitive tests (marked ``calendar``) once more, a year from now.

The twin stamps its day from the clock (``sim.scenario.recent_start``) and ingest counts
retention back from the same clock, so nothing should depend on the date the suite runs.
A fixed date anywhere (a scenario's start, a report's ``--from``) breaks that silently: it
did when the twin's fixed 2026-11-02 fell out of 30-day retention. A nested pytest runs
the marked tests with the wall clock of every Python process a year ahead
(``tests/clock_ahead/sitecustomize.py``); PostgreSQL keeps the real clock, which is why
retention cut-offs and rejection times come from ingest's clock, not from ``now()``.

The edge services are not among them, and cannot be: grpcio's synchronous server waits
at start for a C-core deadline taken from Python's ``time.time()``, which a moved clock
puts a year away. They decide nothing by the date (their stamps are capture times, which
ingest checks); cloud ingest (an asyncio server) and gateway clients run here.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
AHEAD_DAYS = 365


def _ahead(*args: str, timeout_s: float) -> subprocess.CompletedProcess[str]:
    """``python ARGS`` (and every Python process it starts) ``AHEAD_DAYS`` from now."""
    paths = [str(REPO / "tests" / "clock_ahead"), os.environ.get("PYTHONPATH", "")]
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(p for p in paths if p),
        "LOCOWATCH_TEST_CLOCK_AHEAD_DAYS": str(AHEAD_DAYS),
    }
    return subprocess.run(
        [sys.executable, *args],
        capture_output=True, text=True, timeout=timeout_s, cwd=REPO, env=env, check=False,
    )  # fmt: skip


@pytest.mark.db
@pytest.mark.slow
@pytest.mark.timeout(900)
def test_the_calendar_tests_pass_with_the_clock_a_year_ahead() -> None:
    probe = "import subprocess, sys, time; print(time.time()); " \
        "subprocess.run([sys.executable, '-c', 'import time; print(time.time())'])"  # fmt: skip
    clock = _ahead("-c", probe, timeout_s=30)
    parent, child = (float(line) for line in clock.stdout.split())
    for ahead_s in (parent - time.time(), child - time.time()):  # the clock moved, in children too
        assert abs(ahead_s - AHEAD_DAYS * 86_400) < 60, clock.stderr

    run = _ahead(
        "-m", "pytest", "-m", "calendar", "-p", "no:cacheprovider", "-q", "--no-header",
        "-W", "ignore::pytest.PytestAssertRewriteWarning", "tests", timeout_s=840,
    )  # fmt: skip
    summary = run.stdout.strip().splitlines()[-1] if run.stdout.strip() else run.stderr
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
    assert " passed" in summary and "skipped" not in summary, summary
