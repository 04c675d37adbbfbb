"""What every capture source shares: the sink it feeds and how it says it cannot run here."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Protocol

from core.event import ProcessEvent

# Takes captured events in capture order, as many as the source has at hand (all of one buffer drain or
# poll): per-call costs (locks, counters, clocks) are paid once per batch, not once per exec.
Sink = Callable[[Sequence[ProcessEvent]], None]


class CaptureUnavailable(RuntimeError):
    """This capture mode cannot run on this machine; the message says why (for the fallback log line)."""


class CaptureSource(Protocol):
    name: str

    def open(self) -> None:
        """Acquires what the source needs (BPF program, netlink socket); raises CaptureUnavailable."""

    def start(self, sink: Sink) -> None:
        """Starts delivering events to `sink` from a background thread."""

    def stop(self) -> None:
        """Stops the thread and releases everything `open` acquired."""


class ThreadedSource:
    """The background-thread half of a capture source: `start` runs `_run` until `stop`.

    Subclasses call `super().__init__()`, implement `_run` (looping until `self._stop` is set and
    handing lists of events to `self._sink`), and extend `stop` with their own clean-up after `super().stop()`.
    """

    thread_name = "procsight-capture"

    def __init__(self) -> None:
        self._sink: Sink | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self, sink: Sink) -> None:
        self._sink = sink
        self._thread = threading.Thread(target=self._run, name=self.thread_name, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def _run(self) -> None:
        raise NotImplementedError
