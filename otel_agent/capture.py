"""What every capture source shares: the sink it feeds and how it says it cannot run here."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from scoring.event import ProcessEvent

Sink = Callable[[ProcessEvent], None]


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
