"""The scoring child process of the `anomaly` processor.

Python runs one thread at a time, and scoring is most of the CPU a record costs; in a child process
it runs on the other core while the parent receives, spools and exports. Batches cross a pipe as
serialized protobuf (one C-level serialize and parse each way). The child owns the engine and the
normalizer state (process trees, half-assembled audit events), so one child serves one pipeline.
If the child dies it is restarted and the batch is sent again once. Besides batches, the child answers
`Control` messages: the baselines it holds, and acknowledgements to learn (`BatchScorer`'s methods).
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import signal
import threading
import traceback
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest

from otlp_receiver.processors.anomaly.config import Config
from otlp_receiver.processors.anomaly.scorer import BatchScorer, Outcome
from scoring.engine import AnomalyEngine

log = logging.getLogger(__name__)

_START_TIMEOUT = 180.0
_STOP_TIMEOUT = 60.0


class WorkerError(RuntimeError):
    pass


@dataclass(frozen=True)
class Control:
    """A call of one of BatchScorer's `CONTROL_METHODS` in the child, between batches."""

    method: str
    args: tuple[Any, ...]


CONTROL_METHODS = frozenset({"baselines", "acknowledge"})


class ScoringWorker:
    def __init__(self, config: Config, name: str = "anomaly") -> None:
        self.config = config
        self.name = name
        self._lock = threading.Lock()
        self._context = multiprocessing.get_context("spawn")  # fork is unsafe with grpc threads
        self._start()

    def _start(self) -> None:
        self._conn, child_end = self._context.Pipe()
        self._process = self._context.Process(target=serve, args=(self.config, child_end), daemon=True,
                                              name=f"procsight-{self.name}")
        self._process.start()
        child_end.close()
        if not self._conn.poll(_START_TIMEOUT):
            self._stop_process()
            raise WorkerError(f"{self.name}: scoring process did not start within {_START_TIMEOUT:.0f}s")
        reply = self._conn.recv()
        if reply[0] != "ready":
            self._stop_process()
            raise WorkerError(f"{self.name}: scoring process failed to start: {reply[1]}")

    def score(self, logs: ExportLogsServiceRequest, tenant: str) -> tuple[ExportLogsServiceRequest, Outcome]:
        payload = logs.SerializeToString()
        with self._lock:
            try:
                reply = self._exchange(tenant, payload)
            except (EOFError, OSError) as exc:
                log.error("%s: scoring process died (%s); restarting it", self.name, exc)
                self._stop_process()
                self._start()
                reply = self._exchange(tenant, payload)
        if reply[0] != "ok":
            raise WorkerError(f"{self.name}: scoring failed in the child process:\n{reply[1]}")
        return ExportLogsServiceRequest.FromString(reply[1]), reply[2]

    def control(self, method: str, *args: Any) -> Any:
        """Calls `method` of the child's BatchScorer; a ValueError there (a bad event) is raised here."""
        with self._lock:
            try:
                self._conn.send(Control(method, args))
                reply = self._conn.recv()
            except (EOFError, OSError) as exc:
                raise WorkerError(f"{self.name}: scoring process unavailable ({exc})") from exc
        if reply[0] == "invalid":
            raise ValueError(reply[1])
        if reply[0] != "ok":
            raise WorkerError(f"{self.name}: {method} failed in the child process:\n{reply[1]}")
        return reply[1]

    def _exchange(self, tenant: str, payload: bytes) -> Any:
        self._conn.send((tenant, payload))
        return self._conn.recv()

    def close(self) -> None:
        with self._lock:
            with contextlib.suppress(OSError):
                self._conn.send(None)  # the child flushes its baselines and exits
            self._process.join(_STOP_TIMEOUT)
            self._stop_process()

    def _stop_process(self) -> None:
        if self._process.is_alive():
            self._process.terminate()
            self._process.join(5)
        self._conn.close()


def serve(config: Config, conn: Connection) -> None:
    """The child: build the engine, then score batches until told to stop or the parent is gone."""
    # Ctrl-C reaches the whole process group: shutdown is the parent's to order (it sends None), so
    # the child must not die mid-batch of a KeyboardInterrupt.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        scorer = BatchScorer(config, AnomalyEngine(config))
    except Exception:
        conn.send(("error", traceback.format_exc()))
        return
    conn.send(("ready",))
    try:
        while True:
            try:
                message = conn.recv()
            except EOFError:
                break  # the parent died: flush what was learned and go
            if message is None:
                break
            if isinstance(message, Control):
                conn.send(_control(scorer, message))
                continue
            tenant, payload = message
            logs = ExportLogsServiceRequest.FromString(payload)
            try:
                outcome = scorer.score(logs, tenant)
            except Exception:
                conn.send(("error", traceback.format_exc()))
                continue
            conn.send(("ok", logs.SerializeToString(), outcome))
    finally:
        scorer.close()


def _control(scorer: BatchScorer, message: Control) -> tuple[str, Any]:
    if message.method not in CONTROL_METHODS:
        return "error", f"unknown control method {message.method!r}"
    try:
        return "ok", getattr(scorer, message.method)(*message.args)
    except ValueError as exc:  # InvalidEvent included: the caller's input, not the child's failure
        return "invalid", str(exc)
    except Exception:
        return "error", traceback.format_exc()
