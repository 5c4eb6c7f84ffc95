"""Moves the wall clock of this Python process ahead, for tests/test_calendar.py.

On ``PYTHONPATH`` with ``LOCOWATCH_TEST_CLOCK_AHEAD_DAYS`` set, every Python process a test
starts (ingest, its FSE process, uplinks, the CLI) imports this first and runs that many
days ahead from its start, ticking on. Monotonic clocks, sleeps and waits stay real;
processes that are not Python (PostgreSQL, ffmpeg, openssl) keep the real clock.
"""

import os
import time

_days = os.environ.get("LOCOWATCH_TEST_CLOCK_AHEAD_DAYS")
if _days:
    import time_machine

    time_machine.travel(time.time() + float(_days) * 86_400, tick=True).start()
