"""``python -m edge.uplink --config facility.yaml``: the uplink as its own process."""

from __future__ import annotations

import argparse
import sys

from locowatch.errors import LocowatchError
from locowatch.logs import configure_logging


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m edge.uplink",
        description="Store and forward the gateway's estimations to cloud ingest.",
    )
    parser.add_argument("--config", required=True, help="the facility file (with 'gateway:')")
    parser.add_argument("--log-level", default=None, help="DEBUG, INFO (default), WARNING...")
    parser.add_argument("--log-format", choices=("text", "json"), default=None)
    args = parser.parse_args(argv)
    configure_logging(args.log_level, args.log_format)

    from edge.plan import gateway_plan
    from edge.uplink.service import run_uplink
    from locowatch.facility import load_facility

    try:
        config = load_facility(args.config)
        run_uplink(config, gateway_plan(config))
    except LocowatchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())
