"""Settings of the Python runtime for procsight's long-running processes: the receiver, its scoring child
and `procsight score`. Called once at a process's start, after its long-lived state is built; a library
(the scoring engine) never changes them.
"""

from __future__ import annotations

import gc

# Collect the young generation after this many more container allocations than frees (Python's default:
# 700). Scoring allocates and frees thousands of objects per batch, and almost none form cycles, so the
# default's collections found little and cost ~10% of the scoring child's time (bench/receiver.py's
# records: 437 young and 3 full collections per 60,000, the full ones up to 146 ms each).
YOUNG_GENERATION_THRESHOLD = 50_000


def tune_garbage_collection() -> None:
    """Fewer young collections, and what exists now (modules, libraries, the engine as built) frozen out
    of every later full collection, which would otherwise walk it each time."""
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_GENERATION_THRESHOLD, middle, old)
