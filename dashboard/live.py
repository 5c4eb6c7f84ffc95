"""The live part of the page: built once per change of the data, shared by every browser.

A wall screen in the depot and ten laptops looking at the same flow cost one set of
queries per new snapshot, not eleven per second: ``LiveFeed`` asks the database for the
newest snapshot and health times (two index probes), and rebuilds the view only when
they moved. A refresh that is still running is never started twice; a caller that comes
while it runs gets the previous view.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from dash import html
from prometheus_client import Counter, Histogram

from dashboard import figures
from dashboard.comparison import disagreement_over_time
from dashboard.queries import CameraRow, DashboardReader, Version
from locowatch.facility.config import FacilityConfig

log = logging.getLogger(__name__)

# component id -> {property: value}: what a refresh sets on the page.
Props = dict[str, dict[str, Any]]

REFRESH_SECONDS = Histogram(
    "locowatch_dashboard_refresh_seconds",
    "Time to rebuild the live view of one facility and flow after new rows.",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 1, 2, 5),
)
REFRESH_ERRORS = Counter(
    "locowatch_dashboard_refresh_errors_total", "Live refreshes that failed (database errors)."
)
CAMERA_SILENT_AFTER = timedelta(seconds=60)  # no health row for this long: the camera is dark
COMPARE_WINDOW = timedelta(hours=1)
COMPARE_BUCKET = timedelta(seconds=10)


@dataclass(frozen=True)
class ViewKey:
    facility: str
    flow: str
    compare: str | None = None

    @property
    def flows(self) -> tuple[str, ...]:
        return (self.flow,) if self.compare is None else (self.flow, self.compare)


@dataclass(frozen=True)
class LiveView:
    """The live page in two parts that change at their own pace: the state (a new
    snapshot a second) and the cameras (health rows), each rebuilt and pushed only when
    its own newest row moved. The map is the heavy part; camera reports do not resend it."""

    version: Version
    state: Props
    cameras: Props

    @property
    def props(self) -> Props:
        return {**self.state, **self.cameras}


class LiveFeed:
    def __init__(self, reader: DashboardReader, facilities: Mapping[str, FacilityConfig]) -> None:
        self.reader = reader
        self.facilities = facilities
        self._views: dict[ViewKey, LiveView] = {}
        self._locks: dict[ViewKey, threading.Lock] = {}
        self._guard = threading.Lock()
        self._colours: dict[str, figures.Colours] = {}

    def colours(self, facility: str, seen: Iterable[str | None] = ()) -> figures.Colours:
        """The facility's series colours; re-read when a series shows up that has none."""
        known = self._colours.get(facility)
        if known is None or any(s and s not in known for s in seen):
            known = figures.series_colours(self.reader.series(facility))
            self._colours[facility] = known
        return known

    def current(self, key: ViewKey) -> LiveView | None:
        """The view of ``key`` for the newest rows (each part rebuilt only when it changed)."""
        version = self.reader.version(key.facility, key.flows)
        cached = self._views.get(key)
        if cached is not None and cached.version == version:
            return cached
        lock = self._lock(key)
        if not lock.acquire(blocking=False):
            return cached  # another caller is rebuilding this view right now
        try:
            started = time.perf_counter()
            same_state = cached is not None and cached.version.state == version.state
            same_cameras = cached is not None and cached.version.health == version.health
            view = LiveView(
                version,
                cached.state if cached and same_state else self.state_part(key),
                cached.cameras
                if cached and same_cameras
                else self.camera_part(key, version.health),
            )
            REFRESH_SECONDS.observe(time.perf_counter() - started)
            self._views[key] = view
            return view
        except Exception:
            REFRESH_ERRORS.inc()
            raise
        finally:
            lock.release()

    def _lock(self, key: ViewKey) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(key, threading.Lock())

    def build(self, key: ViewKey, version: Version) -> Props:
        """Both parts from scratch (what a page's first refresh costs)."""
        return {**self.state_part(key), **self.camera_part(key, version.health)}

    def state_part(self, key: ViewKey) -> Props:
        facility = self.facilities[key.facility]
        tz = ZoneInfo(facility.facility.timezone)
        state = self.reader.latest_state(key.facility, key.flow)
        locos = state.locomotives if state else []
        newest = state.time if state else None
        as_of = newest or datetime.now(UTC)
        title = f"{key.flow}: {len(locos)} locomotives at {as_of.astimezone(tz):%Y-%m-%d %H:%M:%S}"
        colours = self.colours(key.facility, (loco.get("series") for loco in locos))
        props: Props = {
            "map": {"figure": figures.facility_map(facility, locos, title, tz, colours)},
            "as-of": {"children": as_of_text(newest, tz)},
        }
        props.update(self._kpis(facility, key.flow, locos, as_of, tz))
        props.update(self._comparison(facility, key, as_of, tz, colours))
        return props

    def _kpis(
        self,
        facility: FacilityConfig,
        flow: str,
        locos: list[dict[str, Any]],
        as_of: datetime,
        tz: ZoneInfo,
    ) -> Props:
        day = as_of.astimezone(tz).replace(hour=0, minute=0, second=0, microsecond=0)
        arrivals, departures = self.reader.moves(
            facility.facility.id, flow, day, day + timedelta(days=1)
        )
        occupied = {loco["station"] for loco in locos if loco.get("station")}
        cards = [
            kpi("inside now", len(locos), "kpi-inside"),
            kpi("stale (cameras dark)", sum(bool(x.get("stale")) for x in locos), "kpi-stale"),
            kpi("stations occupied", f"{len(occupied)} / {len(facility.stations)}", "kpi-stations"),
            kpi("arrivals today", arrivals, "kpi-arrivals"),
            kpi("departures today", departures, "kpi-departures"),
        ]
        per_track = [
            {
                "track": track.id,
                "locomotives": sum(loco["track"] == track.id for loco in locos),
                "stations": " ".join(
                    f"{s.id}: {sum(loco.get('station') == s.id for loco in locos)}"
                    for s in facility.stations
                    if s.track == track.id
                ),
            }
            for track in facility.tracks
        ]
        return {"kpis": {"children": cards}, "per-track": {"data": per_track}}

    def camera_part(self, key: ViewKey, newest: datetime | None) -> Props:
        facility = self.facilities[key.facility]
        tz = ZoneInfo(facility.facility.timezone)
        ids = [c.id for c in facility.cameras]
        since = (newest or datetime.now(UTC)) - timedelta(days=1)
        rows = self.reader.cameras(facility.facility.id, ids, since)
        data = [camera_record(r, newest, tz) for r in rows]
        dark = [record["camera"] for record in data if record["alarm"]]
        alarm: dict[str, Any] = (
            {"children": f"{len(dark)} camera(s) dark: {', '.join(dark)}", "className": "alarm"}
            if dark
            else {"children": f"all {len(rows)} cameras streaming", "className": "all-clear"}
        )
        return {"cameras": {"data": data}, "camera-alarm": alarm}

    def _comparison(
        self,
        facility: FacilityConfig,
        key: ViewKey,
        as_of: datetime,
        tz: ZoneInfo,
        colours: figures.Colours,
    ) -> Props:
        if key.compare is None:
            return {"compare-panel": {"style": {"display": "none"}}}
        other = self.reader.latest_state(key.facility, key.compare)
        other_locos = other.locomotives if other else []
        sampled = self.reader.sampled_states(
            key.facility, key.flows, as_of - COMPARE_WINDOW, as_of + COMPARE_BUCKET, COMPARE_BUCKET
        )
        points = list(disagreement_over_time(sampled[key.flow], sampled[key.compare]))
        title = f"{key.compare}: {len(other_locos)} locomotives"
        return {
            "compare-panel": {"style": {"display": "block"}},
            "map-compare": {
                "figure": figures.facility_map(facility, other_locos, title, tz, colours)
            },
            "disagreement": {
                "figure": figures.disagreement_figure(points, key.flow, key.compare, tz)
            },
        }


def kpi(label: str, value: object, element_id: str) -> html.Div:
    return html.Div(
        [html.Div(str(value), className="kpi-value", id=element_id), html.Div(label)],
        className="kpi",
    )


def as_of_text(newest: datetime | None, tz: ZoneInfo) -> str:
    if newest is None:
        return "no state rows yet for this flow"
    age = (datetime.now(UTC) - newest).total_seconds()
    ago = f"{age:.0f} s ago" if age < 120 else f"{age / 3600:.1f} h ago"
    return f"state at {newest.astimezone(tz):%Y-%m-%d %H:%M:%S} ({ago})"


def camera_dark(row: CameraRow, newest: datetime | None) -> bool:
    """Dark: not streaming, or silent while other cameras of the facility kept reporting."""
    if row.time is None or row.state != "streaming":
        return True
    return newest is not None and newest - row.time > CAMERA_SILENT_AFTER


def camera_record(row: CameraRow, newest: datetime | None, tz: ZoneInfo) -> dict[str, Any]:
    def clock(t: datetime | None) -> str:
        return t.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S") if t else "-"

    return {
        "camera": row.camera_id,
        "state": row.state,
        "fps": round(row.fps, 1),
        "last_frame": clock(row.last_frame_time),
        "reported": clock(row.time),
        "reconnects": row.reconnects,
        "decode_errors": row.decode_errors,
        "alarm": "DARK" if camera_dark(row, newest) else "",
        "message": row.message,
    }
