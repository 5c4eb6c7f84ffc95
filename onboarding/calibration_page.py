"""The installer's calibration page (``locowatch calibrate``): a camera's current frame,
points clicked on it with their surveyed facility coordinates, the pose solved live with
each point's reprojection error, the tracks, stations and covered stretches drawn over
the frame by that pose, and a save into the facility file.

It runs where the cameras are reachable (the gateway, or a laptop on the depot's LAN):
the frame comes from the camera's own source through capture's code. ``?camera=ID`` in
the address opens that camera.
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import cv2
import plotly.graph_objects as go
from dash import Dash, Input, Output, State, dcc, html, no_update
from dash.dash_table.DataTable import DataTable

from locowatch.errors import LocowatchError
from locowatch.facility.config import Camera, FacilityConfig, PointPair
from locowatch.facility.loading import load_facility
from onboarding.calibration import MIN_POINTS, grab_frame, overlays, save_point_pairs, solve

COLUMNS = ("u", "v", "x", "y", "z")
COLOURS = {"track": "#2e86de", "covered": "#27ae60", "station": "#e67e22"}
LEGEND = {"track": "track centre lines", "covered": "covered from rail to roof",
          "station": "station ends"}  # fmt: skip


class CalibrationPage:
    def __init__(self, config_path: Path) -> None:
        self.config_path = config_path
        self.dash = Dash(__name__, backend="fastapi", title="locowatch: calibrate", update_title="")
        self.dash.layout = self.layout
        self._add_callbacks()
        self.asgi: Any = self.dash.server

    def config(self) -> FacilityConfig:
        return load_facility(self.config_path)  # read afresh: a save changes it

    def camera(self, camera_id: str, config: FacilityConfig | None = None) -> Camera:
        return next(c for c in (config or self.config()).cameras if c.id == camera_id)

    def layout(self) -> html.Div:
        cameras = [c.id for c in self.config().cameras]
        return html.Div(
            [
                dcc.Location(id="url"),
                dcc.Store(id="frame"),
                html.H2("Calibrate a camera"),
                html.Div(
                    [
                        dcc.Dropdown(
                            cameras, id="camera", clearable=False, style={"width": "16em"}
                        ),
                        html.Button("Grab a new frame", id="grab"),
                    ],
                    style={"display": "flex", "gap": "1em"},
                ),
                dcc.Graph(id="image", config={"scrollZoom": True}, style={"height": "640px"}),
                html.P(
                    "Click a point you surveyed, type its facility coordinates (metres), add it."
                ),
                html.Div(
                    [
                        *(_number(f"new-{c}", c) for c in COLUMNS),
                        html.Button("Add point", id="add"),
                    ],
                    style={"display": "flex", "gap": "0.5em"},
                ),
                DataTable(
                    id="pairs",
                    columns=[{"name": c, "id": c, "type": "numeric"} for c in COLUMNS],
                    data=[],
                    editable=True,
                    row_deletable=True,
                ),
                html.Div(id="solution", className="solution"),
                html.Button("Save to the facility file", id="save"),
                html.Div(id="saved"),
            ],
            style={"fontFamily": "sans-serif", "margin": "1em"},
        )

    def _add_callbacks(self) -> None:
        app = self.dash

        @app.callback(Output("camera", "value"), Input("url", "search"))
        def from_address(search: str | None) -> str:
            wanted = parse_qs((search or "").lstrip("?")).get("camera", [""])[0]
            cameras = [c.id for c in self.config().cameras]
            return wanted if wanted in cameras else cameras[0]

        @app.callback(
            Output("frame", "data"),
            Output("pairs", "data"),
            Input("camera", "value"),
            Input("grab", "n_clicks"),
            State("frame", "data"),
        )
        def load(camera_id: str, _: int | None, frame: dict[str, Any] | None) -> tuple[Any, Any]:
            camera = self.camera(camera_id)
            try:
                image = grab_frame(camera)
            except LocowatchError as error:
                return {"camera": camera_id, "error": str(error)}, no_update
            _, png = cv2.imencode(".png", image)
            data = {"camera": camera_id, "png": base64.b64encode(png.tobytes()).decode(),
                    "width": image.shape[1], "height": image.shape[0]}  # fmt: skip
            if frame and frame.get("camera") == camera_id:  # a new frame of the same camera
                return data, no_update
            pairs = camera.point_pairs or []
            return data, [dict(zip(COLUMNS, (*p.image, *p.world), strict=True)) for p in pairs]

        @app.callback(
            Output("new-u", "value"), Output("new-v", "value"), Input("image", "clickData")
        )
        def clicked(click: dict[str, Any] | None) -> tuple[Any, Any]:
            if not click:
                return no_update, no_update
            point = click["points"][0]
            return round(float(point["x"]), 1), round(float(point["y"]), 1)

        @app.callback(
            Output("pairs", "data", allow_duplicate=True),
            Input("add", "n_clicks"),
            *(State(f"new-{c}", "value") for c in COLUMNS),
            State("pairs", "data"),
            prevent_initial_call=True,
        )
        def add(_: int, *values_and_rows: Any) -> Any:
            *values, rows = values_and_rows
            if any(v is None for v in values):
                return no_update
            return [*rows, dict(zip(COLUMNS, map(float, values), strict=True))]

        @app.callback(
            Output("image", "figure"),
            Output("solution", "children"),
            Input("frame", "data"),
            Input("pairs", "data"),
        )
        def draw(frame: dict[str, Any] | None, rows: list[dict[str, Any]]) -> tuple[Any, Any]:
            if not frame:
                return go.Figure(), ""
            if "error" in frame:
                return go.Figure(), frame["error"]
            return self.figure(frame, rows)

        @app.callback(
            Output("saved", "children"),
            Input("save", "n_clicks"),
            State("camera", "value"),
            State("pairs", "data"),
            prevent_initial_call=True,
        )
        def save(_: int, camera_id: str, rows: list[dict[str, Any]]) -> str:
            try:
                backup = save_point_pairs(self.config_path, camera_id, _pairs(rows))
            except (LocowatchError, ValueError) as error:
                return f"not saved: {error}"
            return (
                f"saved {len(rows)} point pairs of {camera_id} to {self.config_path} "
                f"(the previous file: {backup.name})"
            )

    def figure(self, frame: dict[str, Any], rows: list[dict[str, Any]]) -> tuple[Any, Any]:
        config = self.config()
        camera = self.camera(frame["camera"], config)
        width, height = frame["width"], frame["height"]
        figure = go.Figure(
            go.Image(source=f"data:image/png;base64,{frame['png']}", hoverinfo="x+y")
        )
        pairs = _pairs(rows)
        text: list[Any]
        try:
            solved = solve(camera, pairs)
        except (ValueError, cv2.error) as error:  # no pose, or degenerate points
            solved, text = None, [f"no pose from these points: {error}"]
        else:
            text = [f"{len(pairs)} points: add at least {MIN_POINTS}"] if solved is None else []
        if solved is not None:
            shown: set[str] = set()
            for overlay in overlays(config, camera, solved):
                kind = overlay.name.split()[0]
                figure.add_trace(go.Scatter(
                    x=overlay.u, y=overlay.v, mode="lines", name=LEGEND[kind],
                    legendgroup=kind, showlegend=kind not in shown, hoverinfo="skip",
                    line={"color": COLOURS[kind], "width": 3 if kind == "covered" else 1.5},
                ))  # fmt: skip
                shown.add(kind)
            projected = solved.project([p.world for p in pairs])
            figure.add_trace(go.Scatter(
                x=projected[:, 0], y=projected[:, 1], mode="markers", name="reprojected",
                marker={"symbol": "x", "color": "#e74c3c", "size": 9}, hoverinfo="skip",
            ))  # fmt: skip
            errors = solved.pose_errors_px
            each = ", ".join(f"{i + 1}: {e:.2f}" for i, e in enumerate(errors))
            text = [
                html.B(f"pose RMS {solved.pose_rms_px:.2f} px", id="rms"),
                f" (max {max(errors):.2f} px, {len(pairs)} points). Per point: {each}",
            ]
        if pairs:
            figure.add_trace(go.Scatter(
                x=[p.image[0] for p in pairs], y=[p.image[1] for p in pairs],
                mode="markers+text", text=[str(i + 1) for i in range(len(pairs))],
                textposition="top right", name="clicked",
                marker={"symbol": "circle-open", "color": "#f1c40f", "size": 11},
                hoverinfo="skip",  # a click means the image's pixel under it, not a marker
            ))  # fmt: skip
        figure.update_layout(
            margin={"l": 0, "r": 0, "t": 0, "b": 0}, clickmode="event", dragmode="pan",
            hovermode="closest",
            xaxis={"range": [0, width], "showgrid": False, "visible": False},
            yaxis={"range": [height, 0], "showgrid": False, "visible": False,
                   "scaleanchor": "x"},
            legend={"orientation": "h"}, uirevision=frame["camera"],
        )  # fmt: skip
        return figure, text


def _pairs(rows: list[dict[str, Any]]) -> list[PointPair]:
    return [
        PointPair(
            image=(float(r["u"]), float(r["v"])),
            world=(float(r["x"]), float(r["y"]), float(r["z"])),
        )
        for r in rows
        if all(r.get(c) not in (None, "") for c in COLUMNS)
    ]


def _number(component_id: str, placeholder: str) -> dcc.Input:
    return dcc.Input(
        id=component_id, type="number", placeholder=placeholder, debounce=True,
        style={"width": "7em"},
    )  # fmt: skip
