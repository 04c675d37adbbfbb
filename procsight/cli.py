"""`procsight`: one command fronting the agent, the receiver and the scoring engine.

Each part registers its own subcommands (a module with `register(subparsers)`), so this file only
wires them; a part that fails to import (say, a missing optional dependency) costs only its commands.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from collections.abc import Sequence

from core import __version__

# Modules that contribute subcommands, in the order `procsight --help` lists them.
COMMAND_MODULES = (
    "procsight.run",
    "otlp_receiver.cli",
    "otlp_receiver.query.cli",
    "otel_agent.cli",
    "scoring.cli",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="procsight",
        description="Detect unusual processes on Linux servers, without rules, inside OpenTelemetry pipelines.",
    )
    parser.add_argument("--version", action="version", version=f"procsight {__version__}")
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"],
                        help="logging verbosity on stderr (default INFO)")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module_name in COMMAND_MODULES:
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            logging.getLogger(__name__).debug("commands of %s unavailable: %s", module_name, exc)
            continue
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if not getattr(args, "handler", None):
        parser.print_help()
        return 2
    try:
        return int(args.handler(args) or 0)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # whoever read the output left (`procsight score x | head`): stop quietly, as cat does
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # the exit's flush would fail again
        return 141  # as a shell reports a command ended by SIGPIPE
