"""Exit 0 when an HTTP endpoint of a service answers 200 (ingest's Prometheus port, the
dashboard's /healthz); for HEALTHCHECK and compose, in an image without curl."""

from __future__ import annotations

import sys
import urllib.request

with urllib.request.urlopen(sys.argv[1], timeout=5) as response:
    sys.exit(0 if response.status == 200 else 1)
