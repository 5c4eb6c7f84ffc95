"""Plotly figures of the dashboard: the live facility map, the station timeline and the
disagreement between two flows. Pure functions from rows to figures, so they are cheap to
test and the callbacks stay thin.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from dashboard.comparison import Disagreement
from dashboard.queries import Stay
from locowatch.facility.config import FacilityConfig

# Tableau 10: distinct on screens and projectors; grey is kept for stale locomotives.
PALETTE = (
    "#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f",
    "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#17becf",
)  # fmt: skip
STALE = "#b8b8b8"
UNIDENTIFIED = "#6b6b6b"
STATION_FILL = "rgba(90, 120, 160, 0.10)"
MAP_ROW_PX = 70


Colours = Mapping[str, str]  # series -> colour


def series_colours(known: Sequence[str]) -> dict[str, str]:
    """A colour per series, in the order of ``known`` (all series the facility has seen,
    sorted), so that a series keeps its colour across pages, flows and days."""
    return {name: PALETTE[i % len(PALETTE)] for i, name in enumerate(sorted(set(known)))}


def series_colour(series: str | None, colours: Colours) -> str:
    if not series:
        return UNIDENTIFIED
    # A series the map has not heard of yet still gets a stable colour of its own.
    return colours.get(series) or PALETTE[zlib.crc32(series.encode("utf-8")) % len(PALETTE)]


def loco_label(loco: Mapping[str, Any]) -> str:
    """What a bar says: plate and series as far as they are known, else the FSE id."""
    parts = [p for p in (loco.get("plate"), loco.get("series")) if p]
    return " · ".join(parts) if parts else str(loco["id"])


def _confidence(value: Any) -> str:
    return f" ({value:.0%})" if isinstance(value, int | float) else ""


def _hover(loco: Mapping[str, Any], tz: Any) -> str:
    since = datetime.fromtimestamp(float(loco["since"]), tz).strftime("%Y-%m-%d %H:%M")
    lines = [
        f"<b>{loco['id']}</b>{' (stale: its cameras are dark)' if loco.get('stale') else ''}",
        f"plate: {loco.get('plate') or '?'}{_confidence(loco.get('plate_confidence'))}",
        f"series: {loco.get('series') or '?'}{_confidence(loco.get('series_confidence'))}",
        f"track {loco['track']}, {min(loco['tail_m'], loco['head_m']):.1f}"
        f"-{max(loco['tail_m'], loco['head_m']):.1f} m",
        f"station: {loco.get('station') or 'between stations'}",
        f"since {since}",
    ]
    return "<br>".join(lines)


def facility_map(
    facility: FacilityConfig,
    locomotives: Sequence[Mapping[str, Any]],
    title: str,
    tz: Any,
    colours: Colours,
) -> go.Figure:
    """Tracks to scale as rows, stations as bands, each locomotive a bar tail to head."""
    rows = [t.id for t in facility.tracks][::-1]  # plotly counts rows from the bottom
    fig = go.Figure()
    for loco in locomotives:
        tail, head = sorted((float(loco["tail_m"]), float(loco["head_m"])))
        stale = bool(loco.get("stale"))
        fig.add_trace(
            go.Bar(
                y=[loco["track"]],
                x=[head - tail],
                base=[tail],
                orientation="h",
                width=0.45,
                marker={
                    "color": STALE if stale else series_colour(loco.get("series"), colours),
                    "line": {"color": "#333", "width": 1},
                    "pattern": {"shape": "/" if stale else ""},
                },
                text=[loco_label(loco)],
                textposition="inside",
                insidetextanchor="middle",
                hovertext=[_hover(loco, tz)],
                hoverinfo="text",
                name=str(loco["id"]),
                customdata=[loco["id"]],
                showlegend=False,
            )
        )
    for track in facility.tracks:  # the rail itself
        fig.add_shape(
            type="line", x0=0, x1=track.length_m, y0=track.id, y1=track.id, layer="below",
            line={"color": "#888", "width": 2},
        )  # fmt: skip
    for station in facility.stations:
        row = rows.index(station.track)
        fig.add_shape(
            type="rect", x0=station.start_m, x1=station.end_m, y0=row - 0.4, y1=row + 0.4,
            layer="below", line={"width": 0}, fillcolor=STATION_FILL,
        )  # fmt: skip
        fig.add_annotation(
            x=(station.start_m + station.end_m) / 2, y=row + 0.4, text=station.id,
            showarrow=False, yanchor="bottom", font={"size": 10, "color": "#557"},
        )  # fmt: skip
    longest = max(t.length_m for t in facility.tracks)
    fig.update_layout(
        title={"text": title, "x": 0.01},
        barmode="overlay",
        height=110 + MAP_ROW_PX * len(rows),
        margin={"l": 50, "r": 20, "t": 40, "b": 40},
        plot_bgcolor="white",
        uirevision=facility.facility.id,  # keep the user's zoom across live updates
    )
    fig.update_xaxes(range=[-2, longest + 2], title="metres along the track", showgrid=True,
                     gridcolor="#eee", zeroline=False)  # fmt: skip
    fig.update_yaxes(categoryorder="array", categoryarray=rows, range=[-0.6, len(rows) - 0.4])
    return fig


def station_timeline(
    facility: FacilityConfig, stays: Sequence[Stay], title: str, colours: Colours
) -> go.Figure:
    """Per station, which locomotive stood there when (bars from arrival to departure)."""
    fig = go.Figure()
    for stay in stays:
        label = stay.plate or stay.loco_id
        fig.add_trace(
            go.Bar(
                y=[stay.station],
                x=[(stay.end - stay.start).total_seconds() * 1000],  # ms on a date axis
                base=[stay.start],
                orientation="h",
                marker={"color": series_colour(stay.series, colours)},
                text=[label],
                textposition="inside",
                insidetextanchor="middle",
                hovertext=[
                    f"<b>{label}</b> ({stay.series or 'series ?'}, {stay.loco_id})<br>"
                    f"{stay.station}: {stay.start:%H:%M} - {stay.end:%H:%M}"
                    f" ({(stay.end - stay.start).total_seconds() / 3600:.1f} h)"
                ],
                hoverinfo="text",
                showlegend=False,
            )
        )
    stations = [s.id for s in facility.stations]
    fig.update_layout(
        title={"text": title, "x": 0.01},
        barmode="overlay",
        height=120 + 28 * len(stations),
        margin={"l": 70, "r": 20, "t": 40, "b": 40},
        plot_bgcolor="white",
    )
    fig.update_xaxes(type="date", showgrid=True, gridcolor="#eee")
    fig.update_yaxes(categoryorder="array", categoryarray=stations[::-1])
    return fig


def disagreement_figure(
    points: Sequence[tuple[datetime, Disagreement]], flow_a: str, flow_b: str
) -> go.Figure:
    """Count difference, end error and identity mismatches of two flows over time."""
    fig = make_subplots(
        rows=3, cols=1, shared_xaxes=True, vertical_spacing=0.06,
        subplot_titles=(
            f"locomotives: {flow_b} minus {flow_a}",
            "head/tail difference of paired locomotives (m)",
            "paired locomotives named differently",
        ),
    )  # fmt: skip
    times = [at for at, _ in points]
    series = (
        [d.count_difference for _, d in points],
        [d.end_error_m for _, d in points],
        [d.identity_mismatches for _, d in points],
    )
    for row, values in enumerate(series, start=1):
        fig.add_trace(
            go.Scatter(x=times, y=values, mode="lines", line={"shape": "hv"}, showlegend=False),
            row=row,
            col=1,
        )
    fig.update_layout(height=420, margin={"l": 50, "r": 20, "t": 40, "b": 30},
                      plot_bgcolor="white")  # fmt: skip
    return fig
