"""The demo's status line, read from the services' own Prometheus endpoints.

The demo asks the same metrics an operator's Prometheus would: cameras streaming
(capture), envelopes acked and queued (uplink), estimations stored (ingest), locomotives
in the state per flow (FSE). A service that does not answer yet shows as ``-``.
"""

from __future__ import annotations

import time
import urllib.request
from collections import defaultdict
from dataclasses import dataclass, field

from prometheus_client.parser import text_string_to_metric_families

Samples = dict[str, list[tuple[dict[str, str], float]]]


def scrape(port: int | None) -> Samples:
    """Every sample of ``127.0.0.1:port/metrics`` by name; empty when it does not answer."""
    if port is None:
        return {}
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as answer:
            text = answer.read().decode()
    except OSError:
        return {}
    samples: Samples = defaultdict(list)
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[sample.name].append((sample.labels, sample.value))
    return samples


def total(samples: Samples, name: str, **labels: str) -> float | None:
    """Sum of the samples of ``name`` whose labels include ``labels``; None when absent."""
    values = [
        value
        for sample_labels, value in samples.get(name, [])
        if all(sample_labels.get(k) == v for k, v in labels.items())
    ]
    return sum(values) if values else None


@dataclass
class StatusLine:
    """``0:42/3:00  cameras 16/16  acked 812/s  queued 12  stored 25,310  prod 5  dev 5``."""

    cameras: int
    capture_metrics: int | None
    uplink_metrics: int | None
    ingest_metrics: int
    fse_metrics: int
    flows: list[str]
    started: float = field(default_factory=time.monotonic)
    all_streaming_at: float | None = None  # wall time every camera was first streaming
    _last: tuple[float, float] | None = None  # (monotonic, acked) at the previous line

    def line(self, duration_s: float) -> str:
        capture, uplink = scrape(self.capture_metrics), scrape(self.uplink_metrics)
        ingest, fse = scrape(self.ingest_metrics), scrape(self.fse_metrics)
        elapsed = time.monotonic() - self.started
        streaming = total(capture, "locowatch_capture_camera_state", state="streaming")
        if streaming == self.cameras and self.all_streaming_at is None:
            self.all_streaming_at = time.time()
        acked = total(uplink, "locowatch_uplink_acked_total")
        parts = [
            f"{minutes_seconds(elapsed)}/{minutes_seconds(duration_s)}",
            f"cameras {_int(streaming)}/{self.cameras} streaming",
            f"acked {self._rate(acked)}/s",
            f"queued {_int(total(uplink, 'locowatch_uplink_queued_envelopes'))}",
            f"stored {_int(total(ingest, 'locowatch_ingest_envelopes_total', outcome='stored'))}",
        ]
        for flow in self.flows:
            parts.append(f"{flow} {_int(total(fse, 'locowatch_fse_locomotives', flow=flow))}")
        return "  ".join(parts)

    def _rate(self, acked: float | None) -> str:
        now = time.monotonic()
        last, self._last = self._last, (now, acked or 0.0)
        if acked is None or last is None or now <= last[0]:
            return "-"
        return f"{(acked - last[1]) / (now - last[0]):,.0f}"


def minutes_seconds(seconds: float) -> str:
    minutes, rest = divmod(int(seconds), 60)
    return f"{minutes}:{rest:02d}"


def _int(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"
