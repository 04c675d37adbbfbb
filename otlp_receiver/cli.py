"""`procsight receiver --config FILE`: run the receiver until SIGINT/SIGTERM, then shut down gracefully."""

from __future__ import annotations

import argparse
import logging
import signal
import threading
from types import FrameType

from core.confmap import ConfigError
from core.runtime import tune_garbage_collection
from otlp_receiver.config import ServiceSettings
from otlp_receiver.service import Service

log = logging.getLogger(__name__)

DEFAULT_CONFIG = "config/receiver.yaml"


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "receiver", help="run the OTLP receiver: score process events and export them",
        description="Runs the pipelines of an OpenTelemetry Collector style YAML file (see otlp_receiver/README.md).")
    parser.add_argument("--config", default=DEFAULT_CONFIG, help=f"the YAML configuration (default {DEFAULT_CONFIG})")
    parser.add_argument("--check", action="store_true", help="validate the configuration and exit")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    try:
        settings = ServiceSettings.load(args.config)
        if args.check:
            print(f"{args.config}: configuration is valid")
            return 0
        settings.service.telemetry.logs.apply()
        service = Service(settings)
        service.start()
        tune_garbage_collection()
    except ConfigError as exc:
        log.error("%s", exc)
        return 2
    except OSError as exc:
        log.error("cannot start the receiver: %s", exc)
        return 1
    for receiver_id in service.receivers:
        log.info("receiver %s: OTLP/gRPC on %s, OTLP/HTTP on %s", receiver_id, service.grpc_endpoint(receiver_id),
                 service.http_endpoint(receiver_id))
    for server in service.metrics_servers:
        log.info("metrics on http://%s/metrics", server.endpoint)
    stop = threading.Event()

    def request_stop(signum: int, _frame: FrameType | None) -> None:
        log.info("received %s: shutting down", signal.Signals(signum).name)
        stop.set()

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        stop.wait()
    finally:
        service.shutdown()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0
