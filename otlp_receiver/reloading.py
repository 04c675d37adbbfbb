"""A value built from files (TLS credentials, token lists), rebuilt when the files change.

Changes are noticed by polling the files' modification time, size and inode (a Kubernetes Secret or
ConfigMap is swapped by a symlink, which changes the inode), at most once per interval, when the value
is asked for: no thread, no dependency.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")
log = logging.getLogger(__name__)


class Reloading(Generic[T]):
    """Something built from files (an SSLContext, grpc credentials, a token list), rebuilt when they change.

    `current()` returns the latest build; it looks at the files' modification times at most every
    `interval` seconds (never when `interval` is 0). A rebuild that fails (a half-written file) keeps
    the previous build and is tried again at the next look."""

    def __init__(self, build: Callable[[], T], files: list[str], interval: float) -> None:
        self._build = build
        self._files = files
        self._interval = interval
        self._lock = threading.Lock()
        self._stamp = _stamp(files)
        self._checked = time.monotonic()
        self._value = build()
        self.version = 0  # counts rebuilds

    def current(self) -> T:
        if not self._interval or time.monotonic() - self._checked < self._interval:
            return self._value
        with self._lock:
            self._checked = time.monotonic()
            stamp = _stamp(self._files)
            if stamp != self._stamp:
                try:
                    self._value = self._build()
                    self._stamp = stamp
                    self.version += 1
                except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError
                    # keep serving with what worked; looked at again next interval (a file half written)
                    log.warning("cannot reload %s, keeping the previous: %s", ", ".join(self._files), exc)
            return self._value


def _stamp(files: list[str]) -> tuple[tuple[float, int, int], ...]:
    stamps = []
    for path in files:
        try:
            info = os.stat(path)
            stamps.append((info.st_mtime, info.st_size, info.st_ino))
        except OSError:
            stamps.append((0.0, -1, -1))
    return tuple(stamps)
