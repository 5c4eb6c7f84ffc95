"""Command-line options the twin's commands share with the demo's."""

from __future__ import annotations

import click

from sim.layout import RESOLUTIONS


def _parse_resolutions(_ctx: click.Context, _param: click.Parameter, value: str) -> tuple[str, ...]:
    picked = tuple(value.split("+"))
    bad = [p for p in picked if p not in RESOLUTIONS]
    if bad:
        raise click.BadParameter(f"no resolution {bad[0]!r}: {', '.join(RESOLUTIONS)}")
    return picked


resolution_option = click.option(
    "--resolution",
    "resolutions",
    callback=_parse_resolutions,
    default="720p",
    show_default=True,
    metavar="SENSORS",
    help="Sensors each camera is drawn from, joined by +: "
    + ", ".join(RESOLUTIONS)
    + " (docs/twin.md, Resolution).",
)
