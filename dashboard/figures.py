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
UNCERTAIN = "rgba(150, 150, 150, 0.25)"  # where a locomotive out of sight can be
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
    if loco.get("range_m"):
        low, high = loco["range_m"]
        lines.insert(1, f"out of every camera's sight: somewhere in {low:.1f}-{high:.1f} m")
    return "<br>".join(lines)


def facility_map(
    facility: FacilityConfig,
    locomotives: Sequence[Mapping[str, Any]],
    title: str,
    tz: Any,
    colours: Colours,
) -> go.Figure:
    """Tracks to scale as rows, stations as bands, each locomotive a bar tail to head.

    One bar trace holds every locomotive and the facility is plain layout shapes: plotly
    validates each trace and shape it is handed, and this figure is rebuilt every second.
    """
    rows = [t.id for t in facility.tracks][::-1]  # plotly counts rows from the bottom
    ends = [sorted((float(x["tail_m"]), float(x["head_m"]))) for x in locomotives]
    stale = [bool(x.get("stale")) for x in locomotives]
    bars = go.Bar(
        name="locomotives",
        y=[x["track"] for x in locomotives],
        x=[head - tail for tail, head in ends],
        base=[tail for tail, _ in ends],
        orientation="h",
        width=0.45,
        marker={
            "color": [
                STALE if dark else series_colour(x.get("series"), colours)
                for x, dark in zip(locomotives, stale, strict=True)
            ],
            "line": {"color": "#333", "width": 1},
            "pattern": {"shape": ["/" if dark else "" for dark in stale]},
        },
        text=[loco_label(x) for x in locomotives],
        textposition="inside",
        insidetextanchor="middle",
        hovertext=[_hover(x, tz) for x in locomotives],
        hoverinfo="text",
        customdata=[x["id"] for x in locomotives],
        showlegend=False,
    )
    uncertain = [x for x in locomotives if x.get("range_m")]
    ranges = go.Bar(  # where a locomotive out of every camera's sight can be
        name="out of sight",
        y=[x["track"] for x in uncertain],
        x=[x["range_m"][1] - x["range_m"][0] for x in uncertain],
        base=[x["range_m"][0] for x in uncertain],
        orientation="h",
        width=0.7,
        marker={"color": UNCERTAIN, "line": {"color": STALE, "width": 1}},
        hovertext=[
            f"<b>{x['id']}</b> out of sight: somewhere in {x['range_m'][0]:.1f}"
            f"-{x['range_m'][1]:.1f} m"
            for x in uncertain
        ],
        hoverinfo="text",
        showlegend=False,
    )
    rails = [
        {"type": "line", "x0": 0, "x1": t.length_m, "y0": t.id, "y1": t.id, "layer": "below",
         "line": {"color": "#888", "width": 2}}
        for t in facility.tracks
    ]  # fmt: skip
    bands = [
        {"type": "rect", "x0": s.start_m, "x1": s.end_m, "y0": rows.index(s.track) - 0.4,
         "y1": rows.index(s.track) + 0.4, "layer": "below", "line": {"width": 0},
         "fillcolor": STATION_FILL}
        for s in facility.stations
    ]  # fmt: skip
    names = [
        {"x": (s.start_m + s.end_m) / 2, "y": rows.index(s.track) + 0.4, "text": s.id,
         "showarrow": False, "yanchor": "bottom", "font": {"size": 10, "color": "#557"}}
        for s in facility.stations
    ]  # fmt: skip
    longest = max(t.length_m for t in facility.tracks)
    layout = {
        "title": {"text": title, "x": 0.01},
        "height": 110 + MAP_ROW_PX * len(rows),
        "margin": {"l": 50, "r": 20, "t": 40, "b": 40},
        "plot_bgcolor": "white",
        "uirevision": facility.facility.id,  # keep the user's zoom across live updates
        "shapes": rails + bands,
        "annotations": names,
        "xaxis": {"range": [-2, longest + 2], "title": {"text": "metres along the track"},
                  "showgrid": True, "gridcolor": "#eee", "zeroline": False},
        "yaxis": {"type": "category", "categoryorder": "array", "categoryarray": rows,
                  "range": [-0.6, len(rows) - 0.4]},
    }  # fmt: skip
    layout["barmode"] = "overlay"  # a range lies under its locomotive, not beside it
    return go.Figure(data=[ranges, bars], layout=layout)


def station_timeline(
    facility: FacilityConfig, stays: Sequence[Stay], title: str, tz: Any, colours: Colours
) -> go.Figure:
    """Per station, which locomotive stood there when (bars from arrival to departure).

    Times are the facility's wall clock: plotly's date axes have no time zones.
    """

    def local(t: datetime) -> datetime:
        return t.astimezone(tz).replace(tzinfo=None)

    labels = [stay.plate or stay.loco_id for stay in stays]
    lane, lanes = station_lanes(stays)
    width = [0.8 / lanes[stay.station] for stay in stays]
    bars = go.Bar(
        y=[stay.station for stay in stays],
        width=width,  # two locomotives at one station at once share its row, one lane each
        offset=[-0.4 + k * w for k, w in zip(lane, width, strict=True)],
        x=[(stay.end - stay.start).total_seconds() * 1000 for stay in stays],  # ms, date axis
        base=[local(stay.start) for stay in stays],
        orientation="h",
        marker={"color": [series_colour(stay.series, colours) for stay in stays]},
        text=labels,
        textposition="inside",
        insidetextanchor="middle",
        hovertext=[
            f"<b>{label}</b> ({stay.series or 'series ?'}, {stay.loco_id})<br>"
            f"{stay.station}: {local(stay.start):%H:%M} - {local(stay.end):%H:%M}"
            f" ({(stay.end - stay.start).total_seconds() / 3600:.1f} h)"
            for label, stay in zip(labels, stays, strict=True)
        ],
        hoverinfo="text",
        customdata=[stay.loco_id for stay in stays],
        showlegend=False,
    )
    stations = [s.id for s in facility.stations]
    layout = {
        "title": {"text": title, "x": 0.01},
        "height": 120 + 28 * len(stations),
        "margin": {"l": 70, "r": 20, "t": 40, "b": 40},
        "plot_bgcolor": "white",
        "xaxis": {"type": "date", "showgrid": True, "gridcolor": "#eee"},
        "yaxis": {"type": "category", "categoryorder": "array",
                  "categoryarray": stations[::-1]},
    }  # fmt: skip
    return go.Figure(data=[bars], layout=layout)


def station_lanes(stays: Sequence[Stay]) -> tuple[list[int], dict[str, int]]:
    """A lane per stay so that stays overlapping at one station sit side by side, and the
    number of lanes per station (greedy interval colouring in start order)."""
    lane = [0] * len(stays)
    ends: dict[str, list[datetime]] = {}  # per station, when each lane frees up
    for i in sorted(range(len(stays)), key=lambda k: stays[k].start):
        free = ends.setdefault(stays[i].station, [])
        k = next((k for k, end in enumerate(free) if end <= stays[i].start), len(free))
        if k == len(free):
            free.append(stays[i].end)
        else:
            free[k] = stays[i].end
        lane[i] = k
    return lane, {station: len(free) for station, free in ends.items()}


def disagreement_figure(
    points: Sequence[tuple[datetime, Disagreement]], flow_a: str, flow_b: str, tz: Any
) -> go.Figure:
    """Count difference, end error and identity mismatches of two flows over time
    (the facility's wall clock, like the timeline)."""
    fig = make_subplots(
        rows=3, cols=1, shared_xaxes=True, vertical_spacing=0.06,
        subplot_titles=(
            f"locomotives: {flow_b} minus {flow_a}",
            "head/tail difference of paired locomotives (m)",
            "paired locomotives named differently",
        ),
    )  # fmt: skip
    times = [at.astimezone(tz).replace(tzinfo=None) for at, _ in points]
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
