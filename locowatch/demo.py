"""``locowatch demo``: the one command that shows the product working.

For now it brings up the managed TimescaleDB and checks the example facility; the twin,
edge services, ingest and dashboard join as their issues land.
"""

from __future__ import annotations

from pathlib import Path

import click

from locowatch.db.cli import db_url_option, home_option
from locowatch.db.location import default_home
from locowatch.db.managed import ManagedServer
from locowatch.facility.geometry import FacilityGeometry
from locowatch.facility.loading import load_facility

EXAMPLE_FACILITY = Path(__file__).resolve().parents[1] / "examples" / "depot.yaml"


@click.command()
@db_url_option
@home_option
@click.option(
    "--facility",
    "facility_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=EXAMPLE_FACILITY,
    show_default=True,
    help="Facility config to run.",
)
def demo(db_url: str | None, home: Path | None, facility_path: Path) -> None:
    """Run the demo on the embedded default (managed TimescaleDB)."""
    click.echo("[1/2] database")
    url = db_url or ManagedServer(home or default_home()).up().url()
    click.echo(f"      TimescaleDB ready: {url}")
    click.echo("[2/2] facility")
    facility = load_facility(facility_path)
    geometry = FacilityGeometry(facility)
    click.echo(
        f"      {facility.facility.name}: {len(facility.tracks)} tracks, "
        f"{len(facility.stations)} stations, {len(geometry.cameras)} calibrated cameras, "
        f"flows: {', '.join(f.name for f in facility.flows)}"
    )
    click.echo(
        "The twin, edge services, cloud ingest and dashboard are not built yet; "
        "this demo will run them as they land (see the open issues)."
    )
