"""The Dash app: layout, callbacks and the one refresh driver per page.

Live updates are pushed: with Dash's websocket callbacks (FastAPI backend) one persistent
callback per page loops, asks ``LiveFeed`` for the view every ``refresh_s`` and sets the
page's properties only when the data changed. Where websockets cannot pass (a proxy
that does not forward them), ``transport="interval"`` drives the same view from a single
``dcc.Interval``. Either way there is one driver per page and the feed never runs two
refreshes of a view at once. Ranges (timeline, visits, CSV) are read on demand.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo

import dash
from dash import Dash, Input, Output, State, dcc, html
from dash.dash_table.DataTable import DataTable
from dash.exceptions import PreventUpdate, WebsocketDisconnected
from prometheus_client import Counter

from cloud.reports import ReportRange
from dashboard import figures
from dashboard.auth import Login, UsersFile, current_user
from dashboard.live import LiveFeed, Liveness, Props, ViewKey
from dashboard.queries import DashboardReader
from locowatch.facility.config import FacilityConfig

log = logging.getLogger(__name__)
DENIED = Counter(
    "locowatch_dashboard_denied",
    "Callbacks refused because they asked for a facility the user is not granted "
    "(or that the dashboard does not serve); nothing of it was read.",
)

Transport = Literal["websocket", "interval"]
ASSETS = Path(__file__).with_name("assets")
# What a live refresh may set, for the interval driver's outputs (the push sets the same).
LIVE_PROPS = (
    ("map", "figure"),
    ("as-of", "children"),
    ("as-of", "className"),
    ("alerts", "children"),
    ("kpis", "children"),
    ("per-track", "data"),
    ("cameras", "data"),
    ("camera-alarm", "children"),
    ("camera-alarm", "className"),
    ("compare-panel", "style"),
    ("map-compare", "figure"),
    ("disagreement", "figure"),
)
CSV_REPORTS = ("visits", "stays", "occupancy", "counts", "models")
VISIT_COLUMNS = ("loco_id", "plate", "series", "arrival_track", "arrived_at", "departed_at",
                 "dwell_hours")  # fmt: skip
CAMERA_COLUMNS = ("camera", "alarm", "state", "fps", "last_frame", "reported", "reconnects",
                  "decode_errors", "message")  # fmt: skip


@dataclass
class DashboardSettings:
    db_url: str
    facilities: list[FacilityConfig]
    url_prefix: str = "/"
    transport: Transport = "websocket"
    refresh_s: float = 1.0
    liveness: Liveness = field(default_factory=Liveness)  # when reports count as late, silent
    users: UsersFile | None = None  # None: no login, every facility to anyone
    trusted_user_header: str | None = None  # names proven by a reverse proxy (SSO)
    db_connections: int = 4

    def __post_init__(self) -> None:
        prefix = "/" + self.url_prefix.strip("/")
        self.url_prefix = prefix if prefix == "/" else prefix + "/"


class DashboardApp:
    """The Dash app with its reader and feed; ``asgi`` is what uvicorn serves."""

    def __init__(self, settings: DashboardSettings) -> None:
        self.settings = settings
        self.facilities = {f.facility.id: f for f in settings.facilities}
        self.reader = DashboardReader(settings.db_url, settings.db_connections)
        self.reader.open()
        self.feed = LiveFeed(self.reader, self.facilities, settings.liveness)
        push = settings.transport == "websocket"
        self.dash = Dash(
            __name__,
            backend="fastapi",
            websocket_callbacks=push,
            title="locowatch",
            assets_folder=str(ASSETS),
            requests_pathname_prefix=settings.url_prefix,
            routes_pathname_prefix=settings.url_prefix,
            update_title="",  # falsy: the tab title stays put during updates
        )
        self.dash.layout = self.layout
        self._add_callbacks(push)
        self._add_service_routes()
        self.asgi: Any = self.dash.server
        if settings.users is not None:
            open_paths = tuple(settings.url_prefix + p for p in ("healthz", "metrics"))
            self.asgi = Login(
                self.asgi,
                settings.users,
                open_paths=open_paths,
                trusted_header=settings.trusted_user_header,
            )

    # -- who sees what -------------------------------------------------------------------

    def visible(self) -> dict[str, FacilityConfig]:
        """The facilities the request's user is granted (all of them without login)."""
        if self.settings.users is None:
            return self.facilities
        user = current_user()
        # Asked afresh from the users file: a grant taken away ends an open page's view too.
        user = self.settings.users.get(user.name) if user is not None else None
        return {fid: f for fid, f in self.facilities.items() if user and user.sees(fid)}

    def granted(self, facility_id: str | None) -> FacilityConfig:
        """The facility if the user may see it; otherwise counted, logged and no update."""
        config = self.visible().get(facility_id or "")
        if config is None:
            user = current_user()
            DENIED.inc()
            log.warning("refused facility %r to %s", facility_id, user.name if user else "a page")
            raise PreventUpdate
        return config

    # -- layout --------------------------------------------------------------------------

    def layout(self) -> html.Div:
        """Built per page load, for the user's facilities: today's range is the day of the
        newest state."""
        visible = self.visible()
        if not visible:
            user = current_user()
            return html.Div(
                html.H1(
                    f"No facility of this dashboard is granted to {user.name if user else 'you'}"
                ),
                className="page",
            )
        first = next(iter(visible.values()))
        day = self._latest_day(first)
        return html.Div(
            [
                self._header(first, visible),
                html.Div(id="camera-alarm", className="all-clear"),
                html.Div(id="alerts", className="alerts"),
                html.Section(
                    [
                        html.Div(id="kpis", className="kpis"),
                        dcc.Graph(id="map", config={"displaylogo": False}),
                        DataTable(
                            id="per-track",
                            columns=[
                                {"name": c, "id": c} for c in ("track", "locomotives", "stations")
                            ],
                            style_cell={"textAlign": "left", "fontSize": 13},
                        ),
                    ],
                    className="panel",
                ),
                html.Section(
                    [
                        html.H3("Flow comparison"),
                        dcc.Graph(id="map-compare", config={"displaylogo": False}),
                        dcc.Graph(id="disagreement", config={"displaylogo": False}),
                    ],
                    id="compare-panel",
                    className="panel",
                    style={"display": "none"},
                ),
                self._history(day),
                self._camera_panel(),
                dcc.Interval(
                    id="tick",
                    interval=int(self.settings.refresh_s * 1000),
                    disabled=self.settings.transport != "interval",
                ),
            ],
            className="page",
        )

    def _header(self, first: FacilityConfig, visible: dict[str, FacilityConfig]) -> html.Header:
        flows = [f.name for f in first.flows]
        return html.Header(
            [
                html.H1(first.facility.name, id="facility-name"),
                html.Div(
                    [
                        html.Label("facility"),
                        dcc.Dropdown(
                            id="facility",
                            options=[
                                {"label": f.facility.name, "value": fid}
                                for fid, f in visible.items()
                            ],
                            value=first.facility.id,
                            clearable=False,
                        ),
                        html.Label("flow"),
                        dcc.Dropdown(id="flow", options=flows, value=flows[0], clearable=False),
                        html.Label("compare with"),
                        dcc.Dropdown(
                            id="compare", options=flows, value=None, placeholder="(no comparison)"
                        ),
                    ],
                    className="pickers",
                ),
                html.Div(id="as-of", className="as-of"),
            ]
        )

    def _history(self, day: date) -> html.Section:
        return html.Section(
            [
                html.H3("Station occupancy and visits"),
                html.Div(
                    [
                        dcc.DatePickerRange(
                            id="range",
                            start_date=day.isoformat(),
                            end_date=day.isoformat(),
                            display_format="YYYY-MM-DD",
                        ),
                        html.Button("refresh", id="refresh-history"),
                        dcc.Dropdown(
                            id="report",
                            options=CSV_REPORTS,
                            value="visits",
                            clearable=False,
                            style={"width": "12em"},
                        ),
                        html.Button("download CSV", id="download-csv"),
                        dcc.Download(id="csv"),
                    ],
                    className="pickers",
                ),
                dcc.Graph(id="timeline", config={"displaylogo": False}),
                DataTable(
                    id="visits",
                    columns=[{"name": c, "id": c} for c in VISIT_COLUMNS],
                    filter_action="native",
                    sort_action="native",
                    page_size=15,
                    style_cell={"textAlign": "left", "fontSize": 13},
                ),
            ],
            className="panel",
        )

    def _camera_panel(self) -> html.Section:
        return html.Section(
            [
                html.H3("Cameras"),
                DataTable(
                    id="cameras",
                    columns=[{"name": c, "id": c} for c in CAMERA_COLUMNS],
                    sort_action="native",
                    style_cell={"textAlign": "left", "fontSize": 13},
                    style_data_conditional=[
                        {
                            "if": {"filter_query": f'{{alarm}} = "{alarm}"'},
                            "backgroundColor": background,
                            "color": colour,
                            "fontWeight": "bold",
                        }
                        for alarm, background, colour in (
                            ("DARK", "#fde2e1", "#8a1010"),
                            ("SILENT", "#fde2e1", "#8a1010"),
                            ("LATE", "#fff3cd", "#6d4c00"),
                        )
                    ],
                ),
            ],
            className="panel",
        )

    def _latest_day(self, facility: FacilityConfig) -> date:
        tz = ZoneInfo(facility.facility.timezone)
        flows = [f.name for f in facility.flows]
        try:
            newest = self.reader.version(facility.facility.id, flows).state
        except Exception:  # the page must load even while the database is away
            log.exception("could not read the newest state time")
            newest = None
        return (newest or datetime.now(tz)).astimezone(tz).date()

    # -- callbacks -----------------------------------------------------------------------

    def _add_callbacks(self, push: bool) -> None:
        app = self.dash
        if push:
            app.callback(persistent=True)(self._push_loop)
        else:
            app.callback(
                [Output(cid, prop, allow_duplicate=True) for cid, prop in LIVE_PROPS],
                Input("tick", "n_intervals"),
                Input("facility", "value"),
                Input("flow", "value"),
                Input("compare", "value"),
                prevent_initial_call="initial_duplicate",
            )(self._interval_refresh)
        app.callback(
            Output("flow", "options"),
            Output("flow", "value"),
            Output("compare", "options"),
            Output("compare", "value"),
            Output("facility-name", "children"),
            Input("facility", "value"),
            State("flow", "value"),
            State("compare", "value"),
            prevent_initial_call=True,
        )(self._facility_changed)
        app.callback(
            Output("timeline", "figure"),
            Output("visits", "data"),
            Input("facility", "value"),
            Input("flow", "value"),
            Input("range", "start_date"),
            Input("range", "end_date"),
            Input("refresh-history", "n_clicks"),
        )(self.history)
        app.callback(
            Output("csv", "data"),
            Input("download-csv", "n_clicks"),
            State("report", "value"),
            State("facility", "value"),
            State("flow", "value"),
            State("range", "start_date"),
            State("range", "end_date"),
            prevent_initial_call=True,
        )(self._csv)

    async def _push_loop(self) -> None:
        """Set the live properties whenever the data or the pickers change, until the page
        goes. No inputs: Dash restarts such a callback when its websocket reconnects (a
        dashboard restart, a network blip), so a wall screen never freezes on old data;
        the loop reads the pickers from the page each tick instead."""
        ws = dash.ctx.websocket
        # What the page has: the state part by its snapshot and alerts (camera reports
        # never resend the map), the health part by what it says.
        shown_state: tuple[ViewKey, datetime | None, datetime | None] | None = None
        shown_health: Props | None = None
        refused: ViewKey | None = None
        while ws is not None and not ws.is_shutdown:
            try:
                key = await self._picked(ws)
                if key.facility not in self.visible():  # nothing of it is sent
                    if refused != key:  # logged and counted once, not every tick
                        refused, shown_state, shown_health = key, None, None
                        with contextlib.suppress(PreventUpdate):
                            self.granted(key.facility)
                        dash.set_props("as-of", {"children": "not granted"})
                    await asyncio.sleep(self.settings.refresh_s)
                    continue
                refused = None
                view = await asyncio.to_thread(self.feed.current, key)
            except WebsocketDisconnected:
                return
            except Exception as exc:  # the database is away: say so, keep trying
                log.warning("live refresh failed: %s", exc)
                dash.set_props("as-of", {"children": unavailable(exc)})
                shown_state, shown_health, view = None, None, None
            if view is not None:
                state_version = (key, view.version.state, view.version.alerts)
                if shown_state != state_version:
                    _set_props(view.state)
                    shown_state = state_version
                health = view.health.props(datetime.now(UTC))  # ages move with the clock
                if health != shown_health:
                    _set_props(health)
                    shown_health = health
            await asyncio.sleep(self.settings.refresh_s)

    @staticmethod
    async def _picked(ws: Any) -> ViewKey:
        facility = await ws.get_prop("facility", "value")
        flow = await ws.get_prop("flow", "value")
        compare = await ws.get_prop("compare", "value")
        return ViewKey(facility, flow, compare if compare != flow else None)

    def _interval_refresh(
        self, _tick: int, facility: str, flow: str, compare: str | None
    ) -> list[Any]:
        self.granted(facility)
        key = ViewKey(facility, flow, compare if compare != flow else None)
        try:
            view = self.feed.current(key)
        except Exception as exc:
            log.warning("live refresh failed (%s): %s", key, exc)
            return [unavailable(exc) if cid == "as-of" else dash.no_update for cid, _ in LIVE_PROPS]
        if view is None:
            raise PreventUpdate
        props = view.props(datetime.now(UTC))
        return [props.get(cid, {}).get(prop, dash.no_update) for cid, prop in LIVE_PROPS]

    def _facility_changed(
        self, facility: str, flow: str, compare: str | None
    ) -> tuple[list[str], str, list[str], str | None, str]:
        """Another facility: its flows, keeping the picked ones where it has them."""
        config = self.granted(facility)
        flows = [f.name for f in config.flows]
        return (
            flows,
            flow if flow in flows else flows[0],
            flows,
            compare if compare in flows else None,
            config.facility.name,
        )

    def _range(self, facility: str, flow: str, start: str, end: str) -> ReportRange:
        """Whole local days from the date pickers, in the facility's time zone (refused for
        a facility not granted: every history read and export passes here)."""
        tz = ZoneInfo(self.granted(facility).facility.timezone)
        first = datetime.combine(date.fromisoformat(start[:10]), datetime.min.time(), tz)
        last = datetime.combine(date.fromisoformat(end[:10]), datetime.min.time(), tz)
        return ReportRange(facility, flow, first, max(last, first) + timedelta(days=1), tz=str(tz))

    def history(
        self, facility: str, flow: str, start: str, end: str, _clicks: int | None
    ) -> tuple[Any, list[dict[str, Any]]]:
        where = self._range(facility, flow, start, end)
        stays = self.reader.stays(facility, flow, where.start, where.end)
        last_day = where.end - timedelta(days=1)
        title = f"{flow}: stations from {where.start:%Y-%m-%d} to {last_day:%Y-%m-%d}"
        colours = self.feed.colours(facility, (stay.series for stay in stays))
        tz = ZoneInfo(where.tz)
        figure = figures.station_timeline(self.facilities[facility], stays, title, tz, colours)
        _, rows = self.reader.report("visits", where)
        return figure, [_cells(row) for row in rows]

    def _csv(
        self, _clicks: int, report: str, facility: str, flow: str, start: str, end: str
    ) -> dict[str, Any]:
        where = self._range(facility, flow, start, end)
        columns, rows = self.reader.report(report, where)
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
        name = f"{facility}-{flow}-{report}-{start[:10]}-{end[:10]}.csv"
        return dict(dcc.send_string(out.getvalue(), name))

    # -- service routes ------------------------------------------------------------------

    def _add_service_routes(self) -> None:
        from fastapi.responses import JSONResponse, Response
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        server: Any = self.dash.server
        prefix = self.settings.url_prefix

        @server.get(prefix + "healthz", include_in_schema=False)
        async def healthz() -> JSONResponse:
            try:
                await asyncio.to_thread(self.reader.check)
            except Exception as exc:  # any failure means: not ready to serve
                return JSONResponse({"status": "database unavailable", "error": str(exc)}, 503)
            return JSONResponse({"status": "ok"})

        @server.get(prefix + "metrics", include_in_schema=False)
        async def metrics() -> Response:
            try:  # counted at each scrape, so the count is true with no page open
                await asyncio.to_thread(self.feed.count_silent)
            except Exception as exc:  # the database is away: the rest of the metrics still
                log.warning("could not count silent cameras and gateways: %s", exc)
            return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


def _set_props(props: Props) -> None:
    for cid, values in props.items():
        dash.set_props(cid, values)


def unavailable(exc: Exception) -> str:
    first_line = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return f"cannot read the database, retrying: {first_line}"


def _cells(row: Mapping[str, Any]) -> dict[str, Any]:
    """DataTable cells: times as local 'YYYY-MM-DD HH:MM', numbers as numbers."""
    out: dict[str, Any] = {}
    for name, value in row.items():
        if isinstance(value, datetime):
            out[name] = value.strftime("%Y-%m-%d %H:%M")
        elif value is None or isinstance(value, str | int | float):
            out[name] = value
        else:
            out[name] = float(value)  # Decimal from round()
    return out
