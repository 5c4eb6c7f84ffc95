"""Python's cyclic garbage collector, set for services that make objects by the million.

Ingest and the FSE process make about ten short-lived objects per estimation (protobuf
wrappers, records, tuples), tens of thousands of estimations a second. With Python's
default thresholds (a young collection every 700 allocations, an older one every ten of
those) the collector runs hundreds of times a second, and every older collection walks
every live object, the service's own modules and configuration included. Those objects
are freed by reference counting anyway: the hot paths make no reference cycles. Measured
on the ingest checks (bench/bench_cloud.py's rows): 7.2 us an envelope with the
defaults, 5.5 with the settings below.
"""

from __future__ import annotations

import gc

YOUNG_THRESHOLD = 50_000  # allocations between young collections (default 700)
OLDER_THRESHOLDS = (20, 100)  # young (then middle) collections between older ones


def collect_rarely() -> None:
    """Call once a service has started: what exists by then (modules, configuration)
    is never walked again, and collections come far less often."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG_THRESHOLD, *OLDER_THRESHOLDS)
