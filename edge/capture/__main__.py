"""``python -m edge.capture --config facility.yaml``: the capture service as its own process."""

from __future__ import annotations

import argparse
import sys

from locowatch.errors import LocowatchError
from locowatch.logs import configure_logging


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m edge.capture",
        description="Read every camera of the facility file; push frames to the aggregator "
        "and camera health to the uplink.",
    )
    parser.add_argument("--config", required=True, help="the facility file (with 'gateway:')")
    parser.add_argument("--log-level", default=None, help="DEBUG, INFO (default), WARNING...")
    parser.add_argument("--log-format", choices=("text", "json"), default=None)
    args = parser.parse_args(argv)
    configure_logging(args.log_level, args.log_format)

    from edge.capture.service import run_capture
    from edge.plan import gateway_plan
    from locowatch.facility import load_facility

    try:
        config = load_facility(args.config)
        run_capture(config, gateway_plan(config))
    except LocowatchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())
