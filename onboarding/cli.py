"""``locowatch record``, ``replay`` and ``fuse``: a depot's footage kept, played back
through any flow faster than real time, and its estimations fused again."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from locowatch.db.cli import db_url_option

if TYPE_CHECKING:
    from onboarding.replay import ReplaySummary

CONFIG = click.option(
    "--config",
    "config_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    required=True,
    envvar="LOCOWATCH_CONFIG",
    help="The facility file: cameras, calibration, flows [env LOCOWATCH_CONFIG].",
)
RECORDED_CONFIG = click.option(
    "--config",
    "config_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The facility file (its flows run). Default: the one recorded with the recording.",
)
PROGRESS = click.option(
    "--progress/--no-progress", default=True, help="A progress bar on the terminal."
)
RECORDING = click.option(
    "--recording",
    "folder",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    required=True,
    help="A recording folder (manifest.json, video/), as `locowatch record` writes it.",
)
STATE = click.option(
    "--state",
    "state_path",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="Write every flow's state snapshots here, one JSON line each "
    "(`locowatch eval --state` reads it).",
)
FLOWS = click.option(
    "--flow",
    "flows",
    multiple=True,
    help="Only this flow (repeatable). Default: every flow of the facility file.",
)


@click.command()
@RECORDED_CONFIG
@RECORDING
@STATE
@FLOWS
@db_url_option
@click.option(
    "--store/--no-store",
    default=False,
    help="Also write estimations, state and events into the database (--db, or the "
    "managed one), for the dashboard and the reports. It must not hold state of these "
    "flows from the recording's time on.",
)
@click.option(
    "--estimations",
    "estimations_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also keep every estimation in this file, for `locowatch fuse` to run the state "
    "estimators over again (other FSE settings) without the networks.",
)
@PROGRESS
def replay(
    config_path: Path | None,
    folder: Path,
    state_path: Path,
    flows: tuple[str, ...],
    db_url: str | None,
    store: bool,
    estimations_path: Path | None,
    progress: bool,
) -> None:
    """Play a recording through the flows' networks and state estimators, as fast as the
    machine allows, on the recording's own clock: every frame, in capture order, the same
    result every run."""
    from locowatch.db.location import resolve_db_url
    from locowatch.facility.loading import load_facility
    from onboarding.replay import replay_recording

    config = load_facility(config_path or _recorded_facility(folder))
    url = resolve_db_url(db_url) if store else None
    summary = replay_recording(
        config, folder, state_path, flows or None, url, progress, estimations_path
    )
    click.echo(
        f"replayed {summary.recorded_s:.0f} s of {len(summary.snapshots) or 'no'} flows in "
        f"{summary.wall_s:.0f} s ({summary.speed:.1f}x real time): {summary.frames} frames "
        f"({summary.frames_refused} refused), {_estimations(summary)}"
    )
    _echo_flows(summary, state_path)
    if estimations_path is not None:
        click.echo(f"  estimations kept in {estimations_path} (`locowatch fuse` reads it)")
    if url is not None:
        click.echo("  estimations, state and events stored in the database")


@click.command()
@CONFIG
@click.option(
    "--estimations",
    "estimations_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    required=True,
    help="An estimations file, as `locowatch replay --estimations` writes it.",
)
@STATE
@FLOWS
def fuse(
    config_path: Path, estimations_path: Path, state_path: Path, flows: tuple[str, ...]
) -> None:
    """Run the flows' state estimators over a replay's estimations again, with the FSE
    settings of the facility file given: seconds instead of the replay's minutes."""
    from locowatch.facility.loading import load_facility
    from onboarding.replay import fuse_estimations

    config = load_facility(config_path)
    summary = fuse_estimations(config, estimations_path, state_path, flows or None)
    click.echo(
        f"fused {summary.recorded_s:.0f} s of {len(summary.snapshots) or 'no'} flows in "
        f"{summary.wall_s:.1f} s: {_estimations(summary)}"
    )
    _echo_flows(summary, state_path)


def _estimations(summary: ReplaySummary) -> str:
    rejected = sum(summary.rejected.values())
    return f"{summary.estimations} estimations ({rejected} rejected{_reasons(summary.rejected)})"


def _echo_flows(summary: ReplaySummary, state_path: Path) -> None:
    """Snapshots per flow, and how each flow differs from the first."""
    for flow, count in summary.snapshots.items():
        click.echo(f"  {flow}: {count} snapshots -> {state_path}")
    first = next(iter(summary.snapshots), None)
    for flow, compared in summary.compared.items():
        if not compared.snapshots:
            continue
        same = compared.same_count / compared.snapshots
        ends = compared.mean_end_difference_m
        named = compared.identity_mismatches / compared.pairs if compared.pairs else 0.0
        click.echo(
            f"  {flow} against {first}, over {compared.snapshots} snapshots: the same count in "
            f"{same:.1%}; ends of the same locomotive "
            f"{'-' if ends is None else f'{ends:.2f} m'} apart on average; named differently "
            f"in {named:.1%} of {compared.pairs} locomotive-snapshots"
        )


def _recorded_facility(folder: Path) -> Path:
    from edge.recordings import FACILITY
    from locowatch.errors import UsageError

    path = folder / FACILITY
    if not path.is_file():
        raise UsageError(f"{folder} has no {FACILITY}: give the facility file (--config)")
    return path


def _reasons(rejected: dict[str, int]) -> str:
    return "".join(f", {count} {reason}" for reason, count in sorted(rejected.items()))


@click.command()
@CONFIG
@click.option(
    "--out",
    "folder",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="The recording folder to write (manifest.json, video/).",
)
@click.option(
    "--minutes", type=click.FloatRange(min=0, min_open=True), required=True, help="How long."
)
@click.option(
    "--camera",
    "camera_ids",
    multiple=True,
    help="Record only this camera (repeatable). Default: every camera of the facility file.",
)
@PROGRESS
def record(
    config_path: Path, folder: Path, minutes: float, camera_ids: tuple[str, ...], progress: bool
) -> None:
    """Record cameras through the gateway's capture, each frame with the time capture
    stamped it, for `locowatch replay` and for labelling."""
    from edge.recordings import MANIFEST, record_cameras, write_facility_beside
    from locowatch.errors import UsageError
    from locowatch.facility.loading import load_facility

    config = load_facility(config_path)
    known = {c.id: c for c in config.cameras}
    unknown = sorted(set(camera_ids) - set(known))
    if unknown:
        raise UsageError(f"no camera {', '.join(unknown)} in the facility file")
    if (folder / MANIFEST).exists():
        raise UsageError(f"{folder} holds a recording already: choose another folder")
    cameras = [known[c] for c in camera_ids] if camera_ids else list(known.values())
    summary = record_cameras(cameras, folder, minutes * 60, config.facility.id, progress)
    write_facility_beside(folder, config)
    for camera in cameras:
        lost = summary.superseded[camera.id]
        note = f" ({lost} frames the encoder could not keep up with)" if lost else ""
        click.echo(f"  {camera.id}: {summary.frames[camera.id]} frames{note}")
    if summary.silent:
        click.echo(f"no frame from {', '.join(summary.silent)}: not in the recording", err=True)
    click.echo(f"recorded {len(summary.manifest.cameras)} cameras into {folder}")


@click.group()
def label() -> None:
    """Windows of a recording into Label Studio (pre-labelled), and its labels back as a
    training set (docs/guides/data-scientist.md)."""


@label.command("export")
@RECORDED_CONFIG
@RECORDING
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Where the projects go: position/, model/, plate/ (tasks.json, label_config.xml, "
    "images/).",
)
@click.option(
    "--every",
    "every_s",
    type=click.FloatRange(min=0, min_open=True),
    default=10.0,
    show_default=True,
    help="One frame per camera this many seconds apart (neighbouring frames are near-copies).",
)
@click.option("--flow", help="Whose models pre-label. Default: the facility file's first flow.")
@click.option(
    "--document-root",
    type=click.Path(file_okay=False, path_type=Path),
    help="The folder Label Studio serves local files from "
    "(LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT). Default: --out's parent.",
)
@PROGRESS
def export_command(
    config_path: Path | None,
    folder: Path,
    out: Path,
    every_s: float,
    flow: str | None,
    document_root: Path | None,
    progress: bool,
) -> None:
    """Cut a recording's strips, body windows and plate windows into Label Studio
    projects, with the current models' answers as pre-labels."""
    from locowatch.facility.loading import load_facility
    from onboarding.labelling import export_windows

    config = load_facility(config_path or _recorded_facility(folder))
    summary = export_windows(config, folder, out, every_s, flow, document_root, progress)
    click.echo(f"{summary.frames} frames cut into {out}:")
    for kind, count in sorted(summary.tasks.items()):
        click.echo(f"  {kind}: {count} tasks ({out / kind / 'tasks.json'})")


@label.command("import")
@CONFIG
@click.option(
    "--windows",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    required=True,
    help="The folder `locowatch label export` wrote.",
)
@click.option(
    "--export",
    "exports",
    multiple=True,
    required=True,
    metavar="KIND=FILE",
    help="Label Studio's JSON export of a kind's project (repeatable): position=FILE, "
    "model=FILE, plate=FILE.",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="The training set to write (docs/datasets.md).",
)
def import_command(config_path: Path, windows: Path, exports: tuple[str, ...], out: Path) -> None:
    """Turn Label Studio's exported labels into a training set for `locowatch train`."""
    from locowatch.errors import UsageError
    from locowatch.facility.loading import load_facility
    from onboarding.labelling import import_labels

    files = {}
    for item in exports:
        kind, _, file = item.partition("=")
        if not file:
            raise UsageError(f"--export {item!r}: write KIND=FILE, e.g. model=export.json")
        files[kind] = Path(file)
    summary = import_labels(load_facility(config_path), files, windows, out)
    for kind in files:
        click.echo(
            f"  {kind}: {summary.rows[kind]} rows ({summary.unlabelled[kind]} tasks not "
            f"labelled, {summary.skipped[kind]} not samples)"
        )
    click.echo(f"training set written to {out}")


LABEL_STUDIO_URL = click.option(
    "--url",
    default="http://localhost:8080",
    show_default=True,
    envvar="LABEL_STUDIO_URL",
    help="Label Studio [env LABEL_STUDIO_URL]; its token comes from LABEL_STUDIO_TOKEN.",
)
TITLE = click.option(
    "--title",
    required=True,
    help="The projects' name: one project per kind, '<title> position' and so on.",
)


@label.command("push")
@click.option(
    "--windows",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    required=True,
    help="The folder `locowatch label export` wrote, under Label Studio's "
    "LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT.",
)
@LABEL_STUDIO_URL
@TITLE
def push_command(windows: Path, url: str, title: str) -> None:
    """Create the Label Studio projects of exported windows, with their pre-labels."""
    import os

    from onboarding.label_studio import TOKEN_ENV, LabelStudio

    ids = LabelStudio(url, os.environ.get(TOKEN_ENV, "")).push(windows, title)
    for kind, project in ids.items():
        click.echo(f"  {kind}: {url.rstrip('/')}/projects/{project}")


@label.command("pull")
@LABEL_STUDIO_URL
@TITLE
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Where the exports go: position.json, model.json, plate.json.",
)
def pull_command(url: str, title: str, out: Path) -> None:
    """Download the projects' labels (Label Studio's JSON export) for `label import`."""
    import os

    from onboarding.label_studio import TOKEN_ENV, LabelStudio

    files = LabelStudio(url, os.environ.get(TOKEN_ENV, "")).pull(title, out)
    click.echo(" ".join(f"--export {kind}={path}" for kind, path in files.items()))


@click.command()
@CONFIG
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=int, default=8060, show_default=True)
@click.option(
    "--auth-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    envvar="LOCOWATCH_DASHBOARD_USERS",
    help="The dashboard's users file: users with the installer (or admin) role for this "
    "facility may in (HTTP basic auth; serve behind a TLS proxy) [env "
    "LOCOWATCH_DASHBOARD_USERS]. Without it: anyone who reaches the port, so keep --host local.",
)
def calibrate(config_path: Path, host: str, port: int, auth_file: Path | None) -> None:
    """Calibrate cameras in the browser: click surveyed points on a camera's frame, see the
    pose and each point's error live, save the point pairs into the facility file."""
    import uvicorn

    from dashboard.auth import Login, UsersFile
    from dashboard.users import Role
    from onboarding.calibration_page import CalibrationPage

    page = CalibrationPage(config_path)
    app = page.asgi
    if auth_file:
        facility = page.config().facility.id
        app = Login(app, UsersFile(auth_file), role=Role.installer, facility=facility)
    click.echo(f"calibration: http://{host}:{port}/", err=True)
    uvicorn.run(app, host=host, port=port, log_config=None, access_log=False)
