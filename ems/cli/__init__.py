"""The ``ems`` command line: the top floor, which wires the parts together.

Each sub-command lives in its own module with ``register(subparsers)``; add a module to
``COMMAND_MODULES`` to add a command. A command handler returns the process exit code.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

COMMAND_MODULES = (
    "ems.cli.plan",
    "ems.cli.export",
    "ems.cli.status",
    "ems.cli.run",
    "ems.cli.twin",
    "ems.cli.devices",
    "ems.cli.forecast",
    "ems.cli.dispatch",
    "ems.cli.simulate",
    "ems.cli.bcp",
    "ems.cli.prices",
    "ems.cli.dr",
    "ems.cli.broker",
    "ems.cli.serve",
    "ems.cli.users",
    "ems.cli.city",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ems", description="Energy manager and EV fleet controller")
    parser.add_argument("--log-level", default="WARNING", help="DEBUG, INFO, WARNING (default), ERROR")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    from ems.config import ConfigError
    from ems.store import StoreError

    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return int(args.handler(args) or 0)
    except (ConfigError, StoreError) as error:
        print(f"ems: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
