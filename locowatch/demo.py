"""``locowatch demo``: the one command that shows the product working.

For now it brings up the managed TimescaleDB and the facility twin (the simulated depot)
and writes a look at it; the edge services, ingest and dashboard join as their issues land.
"""

from __future__ import annotations

from pathlib import Path

import click
import cv2

from locowatch.db.cli import db_url_option, home_option
from locowatch.db.location import default_home
from locowatch.db.managed import ManagedServer


@click.command()
@db_url_option
@home_option
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the twin depot.")
def demo(db_url: str | None, home: Path | None, seed: int) -> None:
    """Run the demo on the embedded default (managed TimescaleDB, the twin depot)."""
    from sim.twin import Twin, TwinSpec  # the twin pulls in rendering: only load it here

    home = home or default_home()
    click.echo("[1/2] database")
    url = db_url or ManagedServer(home).up().url()
    click.echo(f"      TimescaleDB ready: {url}")
    click.echo("[2/2] facility twin")
    twin = Twin(TwinSpec(seed=seed))
    facility = twin.facility
    click.echo(
        f"      {facility.facility.name}: {len(facility.tracks)} tracks, "
        f"{len(facility.stations)} stations, {len(facility.cameras)} cameras, "
        f"{len(twin.scenario.fleet)} locomotives over a {twin.spec.scenario.duration_s:.0f} s day"
    )
    out = home / "demo"
    out.mkdir(parents=True, exist_ok=True)
    midday = twin.spec.scenario.duration_s / 2
    hour = twin.scenario.hour_of_day(midday)
    for track in facility.tracks:
        camera = next(c.id for c in facility.cameras if c.views[0].track == track.id)
        frame = twin.frame(camera, midday)
        if frame is not None:
            path = out / f"{camera}.jpg"
            cv2.imwrite(str(path), frame)
            click.echo(f"      {track.id}: {camera} at {hour:02.0f}:00 -> {path}")
    click.echo(
        "Edge services, cloud ingest and the dashboard are not built yet; this demo will run "
        "them as they land. Meanwhile: 'locowatch sim serve' streams the twin's cameras over "
        "RTSP and 'locowatch sim render' records a day."
    )
