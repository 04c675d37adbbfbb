"""The scoring child process of the `anomaly` processor.

Python runs one thread at a time, and scoring is most of the CPU a record costs; in a child process
it runs on the other core while the parent receives, spools and exports. Batches cross a pipe as
serialized protobuf (one C-level serialize and parse each way). The child owns the engine and the
normalizer state (process trees, half-assembled audit events), so one child serves one pipeline.
If the child dies it is restarted and the batch is sent again once. Besides batches, the child answers
`Control` messages: the baselines it holds, and acknowledgements to learn (`BatchScorer`'s methods).

Every batch has a time bound (`timeout`): a child still scoring past it is killed and restarted, so
one hostile record cannot stall every tenant. A batch that failed or timed out is then scored record
by record (`isolate.py`), each record within `record_timeout` and the whole isolation within
`timeout`; a record that still fails, times out or is left when the time is up is marked unscored.
A restart costs the child's start-up (seconds) and whatever it learned since its last flush.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import signal
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest

from core.runtime import tune_garbage_collection
from otlp_receiver.processors.anomaly.config import Config
from otlp_receiver.processors.anomaly.isolate import Result, merge, single_records
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


CONTROL_METHODS = frozenset({"baselines", "acknowledge", "has_baseline"})


class ScoringWorker:
    def __init__(self, config: Config, name: str = "anomaly",
                 scorer_factory: Callable[[Config], BatchScorer] | None = None) -> None:
        self.config = config
        self.name = name
        # What the child scores with; a test passes a module-level factory of a misbehaving scorer.
        self._scorer_factory = scorer_factory or default_scorer
        self._lock = threading.Lock()
        self._context = multiprocessing.get_context("spawn")  # fork is unsafe with grpc threads
        self.restarts = 0
        self._restart_seconds = 0.0
        self._start()

    def _start(self) -> None:
        self._conn, child_end = self._context.Pipe()
        self._process = self._context.Process(target=serve, args=(self.config, child_end, self._scorer_factory),
                                              daemon=True, name=f"procsight-{self.name}")
        self._process.start()
        child_end.close()
        if not self._conn.poll(_START_TIMEOUT):
            self._stop_process()
            raise WorkerError(f"{self.name}: scoring process did not start within {_START_TIMEOUT:.0f}s")
        reply = self._conn.recv()
        if reply[0] != "ready":
            self._stop_process()
            raise WorkerError(f"{self.name}: scoring process failed to start: {reply[1]}")

    def score(self, payload: bytes, tenant: str) -> tuple[bytes, Outcome]:
        """A serialized batch scored (the scored request's bytes); records that could not be scored are marked
        so. This process parses the batch only when the child fails on it."""
        with self._lock:
            reply = self._call(("batch", tenant, payload), self.config.timeout, retry=True)
            if isinstance(reply, str):
                scored = ExportLogsServiceRequest.FromString(payload)
                log.error("%s: scoring a batch of %d records %s; scoring them one by one", self.name,
                          sum(len(s.log_records) for r in scored.resource_logs for s in r.scope_logs), reply)
                outcome = merge(scored, self._isolate(scored, tenant))
                return scored.SerializeToString(), outcome
        return reply[1], reply[2]

    def control(self, method: str, *args: Any) -> Any:
        """Calls `method` of the child's BatchScorer; a ValueError there (a bad event) is raised here."""
        with self._lock:
            try:
                self._conn.send(Control(method, args))
                if not self._conn.poll(self.config.timeout):
                    self._restart(f"took longer than {self.config.timeout:.1f}s on {method}")
                    raise WorkerError(f"{self.name}: {method} timed out")
                reply = self._conn.recv()
            except (EOFError, OSError) as exc:
                raise WorkerError(f"{self.name}: scoring process unavailable ({exc})") from exc
        if reply[0] == "invalid":
            raise ValueError(reply[1])
        if reply[0] != "ok":
            raise WorkerError(f"{self.name}: {method} failed in the child process:\n{reply[1]}")
        return reply[1]

    def _isolate(self, logs: ExportLogsServiceRequest, tenant: str) -> list[Result]:
        """Each record scored alone; the child streams one reply per record, and is restarted past a
        record's time bound (that record is unscored) or when the isolation's time is up."""
        singles = [single.SerializeToString() for single in single_records(logs)]
        results: list[Result] = ["the batch ran out of scoring time"] * len(singles)
        # Scoring time only: a restart's start-up (seconds) is not charged to the records, but at most
        # _MAX_ISOLATION_RESTARTS are allowed, so a batch of many stalling records is bounded too.
        deadline = time.monotonic() + self.config.timeout
        restarts, restart_seconds = self.restarts, self._restart_seconds

        def left() -> float:
            if self.restarts - restarts > _MAX_ISOLATION_RESTARTS:
                return 0.0
            return deadline + (self._restart_seconds - restart_seconds) - time.monotonic()

        start = 0
        while start < len(singles) and left() > 0:
            reply = self._call(("each", tenant, singles[start:]), min(self.config.record_timeout, left()))
            index = start
            while not isinstance(reply, str):
                results[index] = reply[1] if reply[1] is not None else "scoring failed on this record alone"
                index += 1
                if index == len(singles):
                    break
                if left() <= 0:  # the child is still on the records left: stop it
                    self._restart("ran out of the isolation's time")
                    break
                reply = self._wait(min(self.config.record_timeout, left()))
            if isinstance(reply, str):  # this record failed alone, or timed out (the child was restarted)
                results[index] = f"scoring this record alone {reply}"
                index += 1
            start = index
        return [_as_result(result) for result in results]

    def _call(self, message: tuple[Any, ...], timeout: float, retry: bool = False) -> Any:
        """Sends a message and waits up to `timeout` for the first reply; a string says what went wrong
        (the child was restarted). With `retry`, a child found dead is restarted and the message resent once."""
        try:
            self._conn.send(message)
        except OSError as exc:
            self._restart(f"died ({exc})")
            if not retry:
                return f"failed: the scoring process died ({exc})"
            self._conn.send(message)
        reply = self._wait(timeout)
        if retry and reply == _DIED:
            self._conn.send(message)
            reply = self._wait(timeout)
        return reply

    def _wait(self, timeout: float) -> Any:
        try:
            if not self._conn.poll(max(timeout, 0.0)):
                self._restart(f"took longer than {timeout:.1f}s")
                return f"timed out after {timeout:.1f}s"
            reply = self._conn.recv()
        except (EOFError, OSError) as exc:
            self._restart(f"died ({exc})")
            return _DIED
        if reply[0] == "error":
            log.error("%s: scoring failed in the child process:\n%s", self.name, reply[1])
            return "failed: " + reply[1].strip().splitlines()[-1][:200]
        return reply

    def _restart(self, why: str) -> None:
        log.error("%s: the scoring process %s; restarting it", self.name, why)
        started = time.monotonic()
        self.restarts += 1
        self._stop_process()
        self._start()
        self._restart_seconds += time.monotonic() - started

    def close(self) -> None:
        with self._lock:
            with contextlib.suppress(OSError):
                self._conn.send(None)  # the child flushes its baselines and exits
            self._process.join(_STOP_TIMEOUT)
            self._stop_process()

    def _stop_process(self) -> None:
        if self._process.is_alive():
            self._process.kill()  # a child stuck in C code (a regex) does not answer SIGTERM in time
            self._process.join(5)
        self._conn.close()


_DIED = "failed: the scoring process died"
_MAX_ISOLATION_RESTARTS = 3  # per batch: past it, the records left are unscored


def _as_result(result: Any) -> Result:
    if isinstance(result, str):
        return result
    payload, outcome = result
    return ExportLogsServiceRequest.FromString(payload), outcome


def default_scorer(config: Config) -> BatchScorer:
    return BatchScorer(config, AnomalyEngine(config))


def serve(config: Config, conn: Connection, scorer_factory: Callable[[Config], BatchScorer] = default_scorer) -> None:
    """The child: build the engine, then score batches until told to stop or the parent is gone.

    Messages: ("batch", tenant, payload) -> ("ok", payload, outcome) or ("error", traceback);
    ("each", tenant, [payload, ...]) -> one ("one", (payload, outcome) or None) per record, in order."""
    # Ctrl-C reaches the whole process group: shutdown is the parent's to order (it sends None), so
    # the child must not die mid-batch of a KeyboardInterrupt.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        scorer = scorer_factory(config)
    except Exception:
        conn.send(("error", traceback.format_exc()))
        return
    tune_garbage_collection()
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
            kind, tenant, payload = message
            if kind == "batch":
                conn.send(_score(scorer, tenant, payload))
            else:
                for single in payload:
                    reply = _score(scorer, tenant, single)
                    conn.send(("one", reply[1:] if reply[0] == "ok" else None))
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


def _score(scorer: BatchScorer, tenant: str, payload: bytes) -> tuple[Any, ...]:
    logs = ExportLogsServiceRequest.FromString(payload)
    try:
        outcome = scorer.score(logs, tenant)
    except Exception:
        return ("error", traceback.format_exc())
    return ("ok", logs.SerializeToString(), outcome)
