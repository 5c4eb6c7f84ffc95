"""``locowatch demo``: the twin depot through every real service, then its score.

Stages, each printed as it starts: the database; the twin and the demo's scope (whole
tracks with up to ``--cameras`` cameras, the busiest ``--duration`` seconds of the day);
the footage (rendered once, cached); cloud ingest with the FSE and the dashboard; the
RTSP cameras and the edge gateway with prod and dev flows, with a status line until the
run ends (or Ctrl-C); then the score of each flow against ground truth, the capture to
state latency and the visits report. The dashboard keeps serving until Ctrl-C.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
import psycopg

from demo.status import minutes_seconds
from locowatch.db.cli import db_url_option, home_option
from locowatch.db.location import default_home
from locowatch.db.managed import ManagedServer
from sim.evaluation import format_metres, format_percent, format_seconds
from sim.layout import CAMERA_FAMILIES, CameraFamily, LayoutSpec, family_spec
from sim.options import resolution_option

if TYPE_CHECKING:
    from demo.scope import DemoScope
    from demo.stack import FlowModels, Service
    from demo.status import StatusLine
    from locowatch.facility.config import FacilityConfig
    from sim.streaming import TwinStreamer
    from sim.twin import Twin, TwinSpec

DEMO_DATABASE = "locowatch_demo"  # on the managed server; kept after the run for a look

STATUS_EVERY_S = 10.0  # a new status line this often (a terminal gets it redrawn each second)
DRAIN_TIMEOUT_S = 60.0
SETTLE_S = 3.0  # after every camera streams, the FSE's observations are this old at most


@click.command()
@db_url_option
@home_option
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the twin depot.")
@click.option(
    "--family",
    type=click.Choice(CAMERA_FAMILIES),
    default="along",
    show_default=True,
    help="How the twin's cameras hang (docs/twin.md): along each track, across the tracks "
    "from the walls, sparse on one wall, or from the roof.",
)
@click.option(
    "--variety",
    metavar="SPEC",
    help="Draw the twin's locomotives, liveries, plates and hall from these families "
    "(docs/twin.md, Variety): 'all', or e.g. 'geometry=centre,hall=dark,series=unknown'. "
    "Drawn with OpenGL. Default: the classic twin.",
)
@resolution_option
@click.option(
    "--dev-models",
    metavar="ESTIMATOR=MODEL,...",
    help="Run the dev flow on these models, e.g. 'position=position@2' (the rest as prod): "
    "the run then scores both side by side. Default: prod's, with plates read by plate@1.",
)
@click.option(
    "--prod-models",
    metavar="ESTIMATOR=MODEL,...",
    help="Run the prod flow on these models instead of the facility's, e.g. to compare two "
    "candidates side by side on the same footage.",
)
@click.option(
    "--cameras",
    type=click.IntRange(min=1),
    default=16,
    show_default=True,
    help="Cameras to run: whole tracks with at most this many cameras (34: the whole depot).",
)
@click.option(
    "--duration",
    type=click.FloatRange(min=10, max=600),
    default=180.0,
    show_default=True,
    help="Seconds of the twin's (compressed) day to play, live.",
)
@click.option(
    "--start",
    type=click.FloatRange(min=0, max=590),
    help="Scenario second to start at [default: the busiest stretch on the demo's tracks].",
)
@click.option("--jobs", type=click.IntRange(min=1), default=2, show_default=True,
              help="Processes that render the footage (first run only).")  # fmt: skip
@click.option(
    "--dashboard-port",
    type=click.IntRange(0, 65535),
    default=8050,
    show_default=True,
    help="Port of the dashboard; 0: no dashboard.",
)
@click.option(
    "--cut-camera",
    metavar="CAMERA|auto",
    help="Cut one camera's stream for the middle third of the run (auto: the one that sees "
    "the most locomotive then) and score whether the state keeps what it saw.",
)
@click.option(
    "--serve/--no-serve",
    default=True,
    show_default=True,
    help="Keep the dashboard serving after the run until Ctrl-C.",
)
def demo(
    db_url: str | None,
    home: Path | None,
    seed: int,
    family: CameraFamily,
    variety: str | None,
    resolutions: tuple[str, ...],
    dev_models: str | None,
    prod_models: str | None,
    cameras: int,
    duration: float,
    start: float | None,
    jobs: int,
    dashboard_port: int,
    cut_camera: str | None,
    serve: bool,
) -> None:
    """Run the twin depot through the edge gateway, cloud ingest and the dashboard."""
    from demo.footage import render_footage
    from demo.scope import (
        DemoScope,
        busiest_camera,
        busiest_window,
        choose_cameras,
        coverage,
    )
    from demo.stack import FlowModels
    from locowatch.facility import load_facility
    from sim.twin import Twin

    models = FlowModels(  # refused before anything starts
        prod=_flow_models(prod_models, "--prod-models") or {},
        dev=_flow_models(dev_models, "--dev-models") or FlowModels().dev,
    )
    _stop_on_signals()
    home = home or default_home()
    folder = home / "demo"
    folder.mkdir(parents=True, exist_ok=True)
    click.echo("[1/6] database")
    url = db_url or ManagedServer(home).up().url()
    whole = "" if db_url else f" (with its password: locowatch db url --home {home})"
    click.echo(f"      TimescaleDB ready: {_shown(url)}{whole}")

    click.echo("[2/6] facility twin")
    twin = Twin(_twin_spec(seed, family_spec(family, resolutions=resolutions), variety))
    tracks, camera_ids = choose_cameras(twin.facility, cameras)
    day = twin.spec.scenario.duration_s
    if start is None:
        window = busiest_window(twin, tracks, duration)
    else:
        window = (min(start, day - duration), min(start, day - duration) + duration)
    scope = DemoScope(
        tuple(tracks), tuple(camera_ids), coverage(twin.facility, tracks, camera_ids), window
    )
    click.echo(
        f"      {twin.facility.facility.name} (seed {seed}): {len(twin.facility.tracks)} tracks, "
        f"{len(twin.facility.cameras)} cameras, a {day:.0f} s day (05:00-23:00)"
    )
    click.echo(
        f"      demo: tracks {', '.join(tracks)} with {len(camera_ids)} cameras at 2 fps, "
        f"scenario {window[0]:.0f}-{window[1]:.0f} s "
        f"({_depot_time(twin, window[0])}-{_depot_time(twin, window[1])} in the depot)"
    )

    click.echo("[3/6] footage")
    recording, rendered = render_footage(home / "demo-footage", twin.spec, camera_ids, window, jobs)
    click.echo(f"      {'rendered' if rendered else 'cached'}: {recording}")
    installer = load_facility(recording / "facility.yaml")  # poses solved from point pairs

    cut = None
    if cut_camera is not None:
        third = duration / 3  # the camera is cut for the middle third
        dark_period = (window[0] + third, window[1] - third)
        cut = busiest_camera(twin, scope, dark_period) if cut_camera == "auto" else cut_camera
        if cut not in scope.cameras:
            raise click.BadParameter(f"{cut} is not among {', '.join(scope.cameras)}")
    with _demo_database(url, managed=db_url is None) as demo_url:
        _run(
            twin, scope, installer, recording, folder, demo_url, dashboard_port, serve, cut, models
        )


def _flow_models(spec: str | None, option: str) -> dict[str, str] | None:
    """``--dev-models`` or ``--prod-models``: estimator -> model, each model one this
    checkout holds."""
    from locowatch.errors import UsageError
    from locowatch.models.artefacts import resolve

    if not spec:
        return None
    models = {}
    for part in filter(None, (p.strip() for p in spec.split(","))):
        estimator, _, model = part.partition("=")
        try:
            artefact = resolve(model)
        except (UsageError, ValueError) as error:
            raise click.BadParameter(str(error), param_hint=option) from error
        if artefact.name != estimator:
            raise click.BadParameter(
                f"{model} is a {artefact.name} model, not a {estimator} one",
                param_hint=option,
            )
        models[estimator] = model
    return models


def _twin_spec(seed: int, layout: LayoutSpec, variety: str | None) -> TwinSpec:
    """The demo's twin; a varied one is drawn with OpenGL (docs/twin.md, Renderer)."""
    from sim.twin import TwinSpec
    from sim.variety import VarietySpec

    if variety is None:
        return TwinSpec(seed=seed, layout=layout)
    try:
        spec = VarietySpec.parse(variety)
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="--variety") from error
    return TwinSpec(seed=seed, layout=layout, variety=spec, renderer="gl")


def _run(
    twin: Twin,
    scope: DemoScope,
    installer: FacilityConfig,
    recording: Path,
    folder: Path,
    url: str,
    dashboard_port: int,
    serve: bool,
    cut: str | None,
    models: FlowModels | None = None,
) -> None:
    from cloud.schema import migrate
    from demo import stack
    from demo.scoring import scope_truth, write_truth
    from demo.status import StatusLine
    from sim.streaming import TwinStreamer, free_port

    streamer = TwinStreamer(
        list(scope.cameras), recording=recording, fps=2.0, port=free_port(), loop_recording=False
    )
    files = stack.write_configs(folder, installer, scope, streamer.urls(), models)
    flows = files.flows
    for chatty in ("yoyo", "cloud.schema", "sim.streaming"):  # the demo prints its own lines
        logging.getLogger(chatty).setLevel(logging.WARNING)
    migrate(url)
    ingest = stack.Service("cloud ingest", ["cloud", "run", "--config", str(files.cloud),
                                            "--db", url], folder / "ingest.log")  # fmt: skip
    gateway = stack.Service("edge gateway", ["edge", "run", "--config", str(files.facility)],
                            folder / "gateway.log")  # fmt: skip
    dashboard: stack.Service | None = None
    with contextlib.ExitStack() as running:
        click.echo("[4/6] cloud ingest, facility state estimator, dashboard")
        running.callback(ingest.stop)
        ingest.start()
        stack.wait_until("ingest", lambda: stack.ingest_serving(files.ingest_target), [ingest], 60)
        click.echo(f"      ingest on {files.ingest_target} (log: {ingest.log})")
        if dashboard_port:
            dashboard = _start_dashboard(url, files.facility, folder, dashboard_port)
            running.callback(dashboard.stop)

        click.echo("[5/6] cameras and edge gateway")
        running.callback(streamer.stop)
        streamer.start()
        played_at = time.time() - streamer.scenario_time()
        running.callback(gateway.stop)
        gateway.start()
        click.echo(
            f"      {len(scope.cameras)} RTSP cameras on rtsp://127.0.0.1:{streamer.port}/; "
            f"gateway: {', '.join(s.name for s in files.plan.services)} (log: {gateway.log})"
        )
        status = StatusLine(
            cameras=len(scope.cameras),
            capture_metrics=files.plan.service("capture").metrics_port,
            uplink_metrics=files.plan.service("uplink").metrics_port,
            ingest_metrics=files.ingest_metrics_port,
            fse_metrics=files.fse_metrics_port,
            flows=flows,
        )
        third = scope.duration_s / 3
        dark = (played_at + third, played_at + 2 * third) if cut else None
        _watch(status, scope.duration_s, played_at, [ingest, gateway], streamer, cut, dark)

        click.echo("[6/6] score against ground truth")
        _drain(files.plan.service("uplink").metrics_port)
        gateway.stop()
        streamer.stop()
        end = min(time.time(), played_at + scope.duration_s)
        _wait_for_state(url, end - 2.0)
        ingest.stop()
        true_lines = scope_truth(twin, scope)
        delay = _camera_delay(url, true_lines, scope, played_at, flows)
        truth = write_truth(true_lines, scope, played_at + delay, folder / "ground_truth.jsonl")
        _report(url, truth, flows, (_scored_from(status, played_at, end), end), twin, scope)
        if cut and dark:
            _report_dark(url, truth, twin, cut, (dark[0] + delay, min(dark[1], end) + delay))
        if dashboard is not None and serve:
            click.echo(f"dashboard: http://127.0.0.1:{dashboard_port}/  (Ctrl-C stops the demo)")
            _serve(dashboard)


def _start_dashboard(url: str, facility: Path, folder: Path, port: int) -> Service:
    """``locowatch dashboard`` on the read-only role, once it answers."""
    from cloud.schema import create_login_user
    from demo import stack

    reader = create_login_user(url, "locowatch_dashboard", "reader")
    dashboard = stack.Service(
        "dashboard",
        ["dashboard", "--db", reader.url, "--facility", str(facility), "--port", str(port)],
        folder / "dashboard.log",
    ).start()
    home_page = f"http://127.0.0.1:{port}/"
    stack.wait_until("dashboard", lambda: stack.http_up(home_page + "healthz"), [dashboard], 90)
    click.echo(f"      dashboard: {home_page}")
    return dashboard


def _stop_on_signals() -> None:
    """Ctrl-C and SIGTERM both end the run the same way: score, then stop everything.

    SIGINT is set explicitly because a shell starts background jobs with it ignored.
    """

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, interrupt)


def _watch(
    status: StatusLine,
    duration_s: float,
    played_at: float,
    services: list[Service],
    streamer: TwinStreamer,
    cut: str | None,
    dark: tuple[float, float] | None,
) -> None:
    """Print the status line until the footage has played or Ctrl-C; cut a camera."""
    terminal = sys.stdout.isatty()
    last_line = 0.0
    try:
        while time.time() < played_at + duration_s:
            for service in services:
                service.check_alive()
            if cut and dark:
                _cut_or_restore(streamer, cut, dark, played_at, terminal)
            line = status.line(duration_s)
            if terminal:
                click.echo(f"\r      {line}\033[K", nl=False)
            elif time.monotonic() - last_line >= STATUS_EVERY_S:
                click.echo(f"      {line}")
                last_line = time.monotonic()
            time.sleep(1.0)
    except KeyboardInterrupt:
        click.echo("\n      stopped early: scoring what was played")
        return
    if terminal:
        click.echo()


def _cut_or_restore(
    streamer: TwinStreamer,
    camera_id: str,
    dark: tuple[float, float],
    played_at: float,
    terminal: bool,
) -> None:
    """Stop the camera's stream when its dark time comes, feed it again when it ends."""
    now, feed = time.time(), streamer.feeds[camera_id]
    running = feed.encoder is not None and feed.encoder.poll() is None
    if dark[0] <= now < dark[1] and running:
        streamer.pause(camera_id)
        action = "cut: its stream stopped"
    elif dark[1] <= now < dark[1] + 5.0 and not running:  # (its video may end later on)
        streamer.resume(camera_id)
        action = "back"
    else:
        return
    prefix = "\n" if terminal else ""
    click.echo(f"{prefix}      {minutes_seconds(now - played_at)} {camera_id} {action}")


def _report_dark(
    url: str, truth: Path, twin: Twin, camera_id: str, dark: tuple[float, float]
) -> None:
    from demo.scoring import score_while_dark

    camera = next(c for c in twin.facility.cameras if c.id == camera_id)
    result = score_while_dark(url, truth, "prod", camera, dark)
    click.echo(
        f"      while {camera_id} was cut ({result.snapshots} snapshots): "
        f"{result.locomotives_under_it} sightings of locomotives under it, "
        f"{result.lost} of them missing from the prod state"
    )


def _camera_delay(
    url: str, truth: list[dict[str, Any]], scope: DemoScope, played_at: float, flows: list[str]
) -> float:
    from demo.scoring import DELAYS_S, stream_delay

    fit = stream_delay(url, truth, scope, played_at, flows)
    click.echo(
        f"      camera delay (twin frame shown -> gateway stamp), fitted on the {fit.ends} "
        f"real ends the {fit.flow} flow saw (mean {fit.error_m:.2f} m from a true end): "
        f"{fit.seconds:.2f} s"
    )
    if fit.seconds <= DELAYS_S[0] or fit.seconds >= DELAYS_S[-1]:
        click.echo("      (the end of the searched range: truth and state may not line up)")
    return fit.seconds


def _scored_from(status: StatusLine, played_at: float, end: float) -> float:
    """Score from when every camera streams (they open one after another, about 2.5 s
    each), plus the FSE's observation age: before it, the state is still filling in."""
    if status.all_streaming_at is None:
        click.echo("      not every camera streamed at once: scoring the whole run")
        return played_at
    start = min(status.all_streaming_at + SETTLE_S, end)
    click.echo(
        f"      scored from {minutes_seconds(start - played_at)} (every camera streaming, plus "
        f"{SETTLE_S:.0f} s) to {minutes_seconds(end - played_at)}"
    )
    return start


def _drain(uplink_port: int | None) -> None:
    """Until the gateway's queue is empty: what the cameras saw reaches the database."""
    from demo.status import scrape, total

    deadline = time.monotonic() + DRAIN_TIMEOUT_S
    while time.monotonic() < deadline:
        queued = total(scrape(uplink_port), "locowatch_uplink_queued_envelopes")
        if queued == 0:
            return
        time.sleep(0.5)
    click.echo(f"      the uplink still had envelopes queued after {DRAIN_TIMEOUT_S:.0f} s")


def _report(
    url: str,
    truth: Path,
    flows: list[str],
    window: tuple[float, float],
    twin: Twin,
    scope: DemoScope,
) -> None:
    from cloud.cli import table
    from cloud.reports import ReportRange, run_report
    from demo.scoring import capture_to_state_latency, score_flow

    start, end = window

    rows = []
    for flow in flows:
        s = score_flow(url, truth, flow, start, scope.tracks)
        rows.append(
            (flow, s.snapshots, format_percent(s.count_exact), format_metres(s.end_error_median_m),
             format_metres(s.end_error_p95_m), s.id_switches, format_percent(s.series_accuracy),
             format_percent(s.plate_exact), format_percent(s.plate_read_where_shown))
        )  # fmt: skip
    # plates read: of locomotive-snapshots a camera had shown a plate of readable this visit
    columns = ["flow", "snapshots", "exact count", "head/tail median", "p95", "id switches",
               "series", "plate exact", "plates read"]  # fmt: skip
    for line in table(columns, rows).splitlines()[:-1]:
        click.echo(f"      {line}")
    tracks = ",".join(scope.tracks)
    click.echo(
        f"      (every metric: locowatch eval --truth {truth} --db URL --flow prod "
        f"--tracks {tracks})"
    )
    latency = capture_to_state_latency(url, "prod", start, end)
    click.echo(
        f"      frame capture to state row (prod, {latency.frames} camera frames): "
        f"median {format_seconds(latency.median_s)}, p95 {format_seconds(latency.p95_s)}"
    )
    day = datetime.fromtimestamp(start, UTC)
    where = ReportRange(
        twin.facility.facility.id, "prod", day - timedelta(hours=1), day + timedelta(days=1)
    )
    columns, visits = run_report(url, "visits", where)
    click.echo("      visits (locowatch report visits):")
    for line in table(columns, visits).splitlines():
        click.echo(f"      {line}")


def _serve(dashboard: Service) -> None:
    try:
        while dashboard.alive():
            time.sleep(1.0)
    except KeyboardInterrupt:
        click.echo("stopping")


def _wait_for_state(url: str, until: float, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with psycopg.connect(url) as conn:
            row = conn.execute(
                "SELECT extract(epoch FROM max(time)) FROM state_snapshots"
            ).fetchone()
        if row and row[0] is not None and float(row[0]) >= until:
            return
        time.sleep(0.5)
    click.echo("      the state estimator had not caught up with the end of the run")


@contextlib.contextmanager
def _demo_database(url: str, managed: bool) -> Iterator[str]:
    """A fresh database on the managed server (kept for a look afterwards), else ``url``."""
    if not managed:
        yield url
        return
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {DEMO_DATABASE} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {DEMO_DATABASE}")
    info = psycopg.conninfo.conninfo_to_dict(url)
    yield psycopg.conninfo.make_conninfo("", **{**info, "dbname": DEMO_DATABASE})


def _depot_time(twin: Twin, t: float) -> str:
    minutes = round(twin.scenario.hour_of_day(t) * 60)
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def _shown(url: str) -> str:
    """The URL without its password: a terminal's output is often kept as a log
    (``locowatch db url`` prints it whole)."""
    from cloud.schema import conninfo_url
    from locowatch.logs import redact

    return redact(conninfo_url(url))
