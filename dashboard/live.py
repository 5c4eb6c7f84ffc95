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
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

from dash import html
from prometheus_client import Counter, Gauge, Histogram

from dashboard import figures
from dashboard.comparison import disagreement_over_time
from dashboard.queries import AlertRow, CameraRow, DashboardReader, GatewayRow, Version
from locowatch.facility.config import FacilityConfig

log = logging.getLogger(__name__)

# component id -> {property: value}: what a refresh sets on the page.
Props = dict[str, dict[str, Any]]
Level = Literal["live", "late", "silent"]

REFRESH_SECONDS = Histogram(
    "locowatch_dashboard_refresh_seconds",
    "Time to rebuild the live view of one facility and flow after new rows.",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 1, 2, 5),
)
REFRESH_ERRORS = Counter(
    "locowatch_dashboard_refresh_errors_total", "Live refreshes that failed (database errors)."
)
SILENT = Gauge(
    "locowatch_dashboard_silent",
    "Cameras and gateways of a facility with no report for longer than the dashboard's "
    "late (amber) or silent (red) limit, as of the last scrape.",
    ["facility", "kind", "level"],
)
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
class Liveness:
    """How old a report may be: older than ``late_after`` it is shown amber, older than
    ``silent_after`` red. Judged against the clock, not against the newest row, so a
    gateway that stopped looks stopped (its cameras' last rows are all equally old)."""

    late_after: timedelta = timedelta(seconds=30)  # six missed 5 s health reports
    silent_after: timedelta = timedelta(minutes=2)

    def level(self, last: datetime | None, now: datetime) -> Level:
        if last is None or now - last >= self.silent_after:
            return "silent"
        return "late" if now - last >= self.late_after else "live"


@dataclass(frozen=True)
class Health:
    """The rows the age-dependent part of the page is drawn from: re-judged every tick
    without a query, because what changes there is the clock, not the rows."""

    cameras: list[CameraRow]
    gateways: list[GatewayRow]
    newest_state: datetime | None
    tz: ZoneInfo
    liveness: Liveness

    def props(self, now: datetime) -> Props:
        levels = [self.liveness.level(row.time, now) for row in self.cameras]
        records = [
            camera_record(r, self.tz, level) for r, level in zip(self.cameras, levels, strict=True)
        ]
        return {
            "cameras": {"data": records},
            "camera-alarm": self._alarm(records, levels, now),
            "as-of": self._as_of(now),
        }

    def _alarm(
        self, records: list[dict[str, Any]], levels: list[Level], now: datetime
    ) -> dict[str, Any]:
        parts: list[str] = []
        worst: Level = "live"
        for gateway in self.gateways:
            level = self.liveness.level(gateway.last_report, now)
            if level != "live":
                since = self._clock(gateway.last_report)
                parts.append(f"gateway {gateway.gateway_id}: no report since {since}")
                worst = _worse(worst, level)
        dark = [r["camera"] for r in records if r["alarm"] == "DARK"]
        if dark:
            parts.append(f"{len(dark)} camera(s) dark: {', '.join(dark)}")
            worst = "silent"
        for quiet_level in ("late", "silent"):
            quiet = [
                row for row, level in zip(self.cameras, levels, strict=True) if level == quiet_level
            ]
            if quiet:
                reported = [row.time for row in quiet if row.time is not None]
                since = self._clock(min(reported)) if reported else "never"
                names = ", ".join(row.camera_id for row in quiet)
                parts.append(f"{len(quiet)} camera(s) with no report since {since}: {names}")
                worst = _worse(worst, quiet_level)
        if not parts:
            return {"children": f"all {len(records)} cameras streaming", "className": "all-clear"}
        return {
            "children": "; ".join(parts),
            "className": "alarm" if worst == "silent" else "warning",
        }

    def _as_of(self, now: datetime) -> dict[str, Any]:
        newest = self.newest_state
        if newest is None:
            return {"children": "no state rows yet for this flow", "className": "as-of silent"}
        level = self.liveness.level(newest, now)
        if level == "live":
            return {
                "children": f"live: state at {self._stamp(newest)}",
                "className": "as-of",
            }
        age = _age_text(now - newest)
        text = f"NOT LIVE since {self._stamp(newest)}: no new state for {age}"
        return {"children": text, "className": f"as-of {level}"}

    def _clock(self, t: datetime | None) -> str:
        """HH:MM today, with the date before."""
        if t is None:
            return "never"
        local = t.astimezone(self.tz)
        today = datetime.now(self.tz).date()
        return local.strftime("%H:%M" if local.date() == today else "%Y-%m-%d %H:%M")

    def _stamp(self, t: datetime) -> str:
        return f"{t.astimezone(self.tz):%Y-%m-%d %H:%M:%S}"


@dataclass(frozen=True)
class LiveView:
    """The live page in parts that change at their own pace: the state (a new snapshot a
    second) and the health rows (camera reports), each re-read only when its own newest
    row moved; the map is the heavy part and camera reports do not resend it. What the
    health rows mean (live, late, silent) is judged against the clock at every tick."""

    version: Version
    state: Props
    health: Health

    def props(self, now: datetime) -> Props:
        return {**self.state, **self.health.props(now)}


class LiveFeed:
    def __init__(
        self,
        reader: DashboardReader,
        facilities: Mapping[str, FacilityConfig],
        liveness: Liveness | None = None,
    ) -> None:
        self.reader = reader
        self.facilities = facilities
        self.liveness = liveness or Liveness()
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
            same_state = cached is not None and (cached.version.state, cached.version.alerts) == (
                version.state,
                version.alerts,
            )
            same_health = cached is not None and cached.version.health == version.health
            state = cached.state if cached and same_state else self.state_part(key)
            health = cached.health if cached and same_health else self.health(key, version)
            if cached and same_health and not same_state:  # the state's age moved on
                health = replace(health, newest_state=version.state)
            view = LiveView(version, state, health)
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
        return {**self.state_part(key), **self.health(key, version).props(datetime.now(UTC))}

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
            "alerts": alert_list(self.reader.open_alerts(key.facility, key.flow), tz),
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

    def health(self, key: ViewKey, version: Version) -> Health:
        facility = self.facilities[key.facility]
        ids = [c.id for c in facility.cameras]
        since = (version.health or datetime.now(UTC)) - timedelta(days=1)
        return Health(
            cameras=self.reader.cameras(facility.facility.id, ids, since),
            gateways=self.reader.gateways(facility.facility.id),
            newest_state=version.state,
            tz=ZoneInfo(facility.facility.timezone),
            liveness=self.liveness,
        )

    def count_silent(self) -> None:
        """Set the silence gauge of every facility (at each scrape: true without viewers)."""
        now = datetime.now(UTC)
        for facility_id, facility in self.facilities.items():
            health = self.health(
                ViewKey(facility_id, facility.flows[0].name), self.reader.version(facility_id, [])
            )
            for kind, times in (
                ("camera", [c.time for c in health.cameras]),
                ("gateway", [g.last_report for g in health.gateways]),
            ):
                levels = [self.liveness.level(t, now) for t in times]
                for level in ("late", "silent"):
                    SILENT.labels(facility_id, kind, level).set(levels.count(level))

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


def alert_list(alerts: list[AlertRow], tz: ZoneInfo) -> dict[str, Any]:
    """Open alerts (cloud.yaml's rules, judged by `locowatch cloud plant`), worst first."""
    order = {"critical": 0, "warning": 1, "info": 2}
    items = [
        html.Li(
            f"{a.rule}: {a.message} (since {a.fired_at.astimezone(tz):%Y-%m-%d %H:%M})",
            className=f"alert-{a.severity}",
        )
        for a in sorted(alerts, key=lambda a: (order.get(a.severity, 3), a.fired_at))
    ]
    return {"children": html.Ul(items) if items else None}


def _worse(a: Level, b: Level) -> Level:
    order = ("live", "late", "silent")
    return a if order.index(a) >= order.index(b) else b


def _age_text(age: timedelta) -> str:
    seconds = age.total_seconds()
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def camera_record(row: CameraRow, tz: ZoneInfo, level: Level) -> dict[str, Any]:
    """A row of the camera table. ``alarm``: DARK when the camera's own last report says it
    does not stream; LATE or SILENT when no report came for a while (its last state is
    then history, and ``reported`` says since when)."""

    def clock(t: datetime | None) -> str:
        return t.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S") if t else "-"

    dark = row.time is not None and row.state != "streaming"
    return {
        "camera": row.camera_id,
        "state": row.state if level == "live" else f"{row.state} (last report)",
        "fps": round(row.fps, 1),
        "last_frame": clock(row.last_frame_time),
        "reported": clock(row.time),
        "reconnects": row.reconnects,
        "decode_errors": row.decode_errors,
        "alarm": "DARK" if dark and level == "live" else ("" if level == "live" else level.upper()),
        "message": row.message,
    }
