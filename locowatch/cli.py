"""The ``locowatch`` command: one entry point, a subcommand per concern.

Subcommands live next to the code they drive (``locowatch/db/cli.py``,
``edge/cli.py``, ``cloud/cli.py`` ...) and are imported only when used, so that
``locowatch db up`` does not pay for OpenCV, Dash or an inference engine.

Exit codes: 0 success, 1 a runtime failure (a server did not start, a build failed),
2 bad usage or an invalid config.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any

import click

from locowatch import __version__
from locowatch.errors import LocowatchError
from locowatch.logs import configure_logging

EXIT_FAILURE = 1
EXIT_USAGE = 2

# name -> "module:attribute" of a click command or group, imported on first use.
SUBCOMMANDS: dict[str, str] = {
    "db": "locowatch.db.cli:db",
    "config": "locowatch.facility.cli:config",
    "sim": "sim.cli:sim",
    "eval": "sim.cli:evaluate_command",
    "demo": "demo.cli:demo",
    "cloud": "cloud.cli:cloud",
    "report": "cloud.cli:report",
    "train": "training.cli:train",
    "models": "training.cli:models",
    "dashboard": "dashboard.cli:dashboard",
    "edge": "edge.cli:edge",
    "calibrate": "onboarding.cli:calibrate",
    "label": "onboarding.cli:label",
    "record": "onboarding.cli:record",
    "replay": "onboarding.cli:replay",
    "fuse": "onboarding.cli:fuse",
}


class LazyGroup(click.Group):
    """A click group whose subcommands are imported when first invoked (click docs pattern)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *SUBCOMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in SUBCOMMANDS:
            module_name, attribute = SUBCOMMANDS[cmd_name].split(":")
            command = getattr(importlib.import_module(module_name), attribute)
            if not isinstance(command, click.Command):
                raise TypeError(f"{SUBCOMMANDS[cmd_name]} is not a click command")
            return command
        return super().get_command(ctx, cmd_name)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="locowatch")
@click.option(
    "--log-level",
    type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"], case_sensitive=False),
    envvar="LOCOWATCH_LOG_LEVEL",
    default="INFO",
    show_default=True,
    help="Least severe log level shown.",
)
@click.option(
    "--log-format",
    type=click.Choice(["text", "json"]),
    envvar="LOCOWATCH_LOG_FORMAT",
    default="text",
    show_default=True,
    help="text for people, json (one object per line) for log shippers.",
)
def cli(log_level: str, log_format: Any) -> None:
    """locowatch: locomotives in a repair depot, seen through its cameras.

    Edge services estimate positions, series and number plates from camera images;
    the cloud fuses them into facility state in TimescaleDB behind a Dash dashboard.
    """
    configure_logging(log_level, log_format)


def main() -> None:
    """Console-script entry point: turns known errors into a message and an exit code."""
    try:
        result = cli.main(prog_name="locowatch", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except LocowatchError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(exc.exit_code)
    sys.exit(result if isinstance(result, int) else 0)
