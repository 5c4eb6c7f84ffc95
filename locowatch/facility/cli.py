"""``locowatch config check FILE``: validate a facility file and its camera calibration."""

from __future__ import annotations

import json
from pathlib import Path

import click

from locowatch.facility.config import FacilityConfig
from locowatch.facility.geometry import FacilityGeometry
from locowatch.facility.loading import load_facility

# Above this RMS reprojection error a solved pose is suspicious: a mis-typed point pair
# or a wrong intrinsic usually shows up as several pixels.
REPROJECTION_WARN_PX = 2.0


@click.group()
def config() -> None:
    """The facility config file."""


@config.command()
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
def check(path: Path) -> None:
    """Validate PATH; print each error with its line, key, value and why.

    Also solves the pose of every camera given by point pairs and prints its
    reprojection error.
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
