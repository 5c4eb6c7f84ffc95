"""``locowatch config ...``: check a facility file (calibration, coverage, secrets), propose
views, strip camera passwords from a copy."""

from __future__ import annotations

import json
from pathlib import Path

import click

from locowatch.facility.config import FacilityConfig
from locowatch.facility.coverage import coverage_report, describe, propose_views
from locowatch.facility.geometry import FacilityGeometry
from locowatch.facility.loading import dump_facility, load_facility, strip_secrets
from locowatch.facility.visibility import FacilityVisibility

# Above this RMS reprojection error a solved pose is suspicious: a mis-typed point pair
# or a wrong intrinsic usually shows up as several pixels.
REPROJECTION_WARN_PX = 2.0


@click.group()
def config() -> None:
    """The facility config file."""


@config.command()
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--strict", is_flag=True, help="Exit with status 1 when there are warnings.")
def check(path: Path, strict: bool) -> None:
    """Validate PATH; print each error with its line, key, value and why.

    Also solves the pose of every camera given by point pairs and prints its
    reprojection error, and prints per track what each camera's view sees (the whole
    body, or the lower body only), what no camera sees, and warnings for views that are
    partly or wholly out of view.
    """
    facility = load_facility(path)
    geometry = FacilityGeometry(facility)
    click.echo(
        f"{path}: facility {facility.facility.id!r}: {len(facility.tracks)} tracks, "
        f"{len(facility.stations)} stations, {len(facility.cameras)} cameras, "
        f"flows {', '.join(f.name for f in facility.flows)}"
    )
    for camera_id, model in geometry.cameras.items():
        if model.pose_rms_px is None:
            continue
        suspicious = model.pose_rms_px > REPROJECTION_WARN_PX
        flag = "  <- check the point pairs" if suspicious else ""
        click.echo(
            f"  {camera_id}: pose solved from point pairs, reprojection RMS "
            f"{model.pose_rms_px:.2f} px{flag}"
        )
        if suspicious:
            click.echo(f"    worst: {_worst_pairs(model.pose_errors_px)}")
    secrets = _secret_findings(facility)
    for line in secrets:
        click.echo(f"warning: {line}", err=True)
    tracks, findings = coverage_report(facility, FacilityVisibility(facility))
    click.echo("coverage (metres along each track):")
    for line in describe(tracks):
        click.echo(line)
    for finding in findings:
        click.echo(f"{finding.level}: {finding.message}", err=True)
    if strict and (findings or secrets):
        raise SystemExit(1)


def _secret_findings(facility: FacilityConfig) -> list[str]:
    """Cameras whose password sits in the file, or whose reference does not resolve here."""
    out = []
    for camera in facility.cameras:
        if camera.inline_password:
            out.append(
                f"{camera.id}: a password in the source URL; give credentials (password_env "
                "or password_file) instead: the cloud refuses facility files that carry one"
            )
        try:
            camera.source_url()
        except ValueError as exc:
            out.append(f"{exc} (on this machine; the gateway needs it)")
    return out


@config.command()
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--max-range",
    type=click.FloatRange(min=1.0),
    default=40.0,
    show_default=True,
    help="Farthest track point (metres from the camera, along the floor) a view may reach: "
    "beyond, bodies are too small to place their ends.",
)
@click.option(
    "--write",
    "out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the facility file with these views here (comments are not kept).",
)
def views(path: Path, max_range: float, out: Path | None) -> None:
    """Propose each camera's views from its calibration: every track whose lower body the
    camera has in frame within --max-range, the longest such stretch of each."""
    facility = load_facility(path)
    proposal = propose_views(facility, FacilityVisibility(facility, max_range_m=max_range))
    for camera_id, proposed in proposal.items():
        if not proposed:
            click.echo(f"warning: {camera_id} sees no track's lower body within "
                       f"{max_range:g} m: no view proposed", err=True)  # fmt: skip
            continue
        click.echo(f"{camera_id}:")
        for view in proposed:
            click.echo(f"  - {{track: {view.track}, start_m: {view.start_m}, end_m: {view.end_m}}}")
    if out is not None:
        cameras = [
            c.model_copy(update={"views": proposal[c.id]}) if proposal[c.id] else c
            for c in facility.cameras
        ]
        updated = facility.model_copy(update={"cameras": cameras})
        out.write_text(dump_facility(updated, f"{path.name} with proposed views"), "utf-8")
        click.echo(f"wrote {out}", err=True)


@config.command("strip-secrets")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="Where the copy goes (for the cloud, a repository, a colleague).",
)
def strip_secrets_command(path: Path, out: Path) -> None:
    """Write a copy of PATH without the passwords in camera URLs (references are kept)."""
    facility = load_facility(path)
    carrying = [c.id for c in facility.cameras if c.inline_password]
    header = f"{path.name} without camera passwords ({', '.join(carrying) or 'none had one'})."
    out.write_text(dump_facility(strip_secrets(facility), header), encoding="utf-8")
    click.echo(f"{out}: {len(carrying)} camera password(s) left out", err=True)


def _worst_pairs(errors_px: tuple[float, ...], count: int = 3) -> str:
    """The point pairs that fit worst, by index: a mistyped one stands out."""
    worst = sorted(range(len(errors_px)), key=lambda i: -errors_px[i])[:count]
    return ", ".join(f"point_pairs[{i}] {errors_px[i]:.1f} px" for i in worst)


@config.command()
def schema() -> None:
    """Print the JSON Schema of the facility file.

    Editors validate and complete YAML against it, e.g. with the line
    ``# yaml-language-server: $schema=facility.schema.json`` at the top of the file.
    """
    click.echo(json.dumps(FacilityConfig.model_json_schema(), indent=2))
