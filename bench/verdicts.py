"""A fingerprint of every verdict the engine gives on two fixed streams: run it before and after a change
meant only to be faster or leaner (issue 12 says "no behaviour may change"); equal fingerprints mean no
score, severity, reason, nearest pattern, technique, incident or vector changed.

The streams: the evaluation captures replayed as the receiver bench sends them (bench/receiver.py: three
workloads, four hosts each, batches of 500, attacks mixed in), and bench/scoring.py's synthetic stream
(new pids, file and temp names in every event, 5% novel). Prints one SHA-256 per stream and the events
per second of each (CPU time; compare speeds with interleaved runs, this machine is noisy).

    .venv/bin/python bench/verdicts.py [--eval-dir DIR] [--records 60000]
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
# Run as a script, bench/ comes first on sys.path, where bench/scoring.py would shadow the scoring package.
sys.path = [str(ROOT)] + [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]

from bench.receiver import EVAL_DIR, load_events, request_contents  # noqa: E402
from bench.scoring import BATCH, make_stream  # noqa: E402
from core.event import ProcessEvent  # noqa: E402
from core.semconv import HOST_NAME, event_from_attributes  # noqa: E402
from scoring.config import EngineConfig  # noqa: E402
from scoring.engine import AnomalyEngine, Verdict  # noqa: E402

RECORDS_PER_BATCH = 500  # bench/receiver.py's default records per request


def replayed_batches(eval_dir: Path, records: int) -> list[tuple[str, list[ProcessEvent]]]:
    """(workload, events) batches with the records of bench/receiver.py's requests, 0.2 ms apart."""
    batches = []
    timestamp = 1_800_000_000.0
    for workload, host, attributes in request_contents(load_events(eval_dir), records // RECORDS_PER_BATCH,
                                                       RECORDS_PER_BATCH):
        events = []
        for record in attributes:
            event = event_from_attributes({**record, HOST_NAME: host})
            timestamp += 0.0002
            event.timestamp = timestamp
            events.append(event)
        batches.append((workload, events))
    return batches


def synthetic_batches(events: int) -> list[tuple[str, list[ProcessEvent]]]:
    stream = make_stream(events, 300, 0.05)
    return [("bench", stream[offset:offset + BATCH]) for offset in range(0, len(stream), BATCH)]


def fingerprint(batches: Iterable[tuple[str, list[ProcessEvent]]]) -> tuple[str, int, float]:
    """(SHA-256 of every verdict, events, CPU seconds) with a fresh engine and baseline."""
    digest = hashlib.sha256()
    events = 0
    with tempfile.TemporaryDirectory() as directory:
        engine = AnomalyEngine(EngineConfig(baselines=directory))
        started = time.process_time()
        for workload, batch in batches:
            for verdict in engine.process(batch, workload=workload):
                _update(digest, verdict)
            events += len(batch)
        seconds = time.process_time() - started
        engine.close()
    return digest.hexdigest(), events, seconds


def _update(digest: Any, verdict: Verdict) -> None:  # a hashlib hash object
    digest.update(verdict.vector.tobytes())
    digest.update(repr((verdict.score, verdict.severity, verdict.reasons, verdict.nearest, verdict.techniques,
                        verdict.incident, verdict.incident_score)).encode())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--eval-dir", type=Path, default=EVAL_DIR)
    parser.add_argument("--records", type=int, default=60_000, help="replayed records")
    parser.add_argument("--synthetic", type=int, default=20_000, help="synthetic events")
    args = parser.parse_args()
    for name, batches in (("replayed captures", replayed_batches(args.eval_dir, args.records)),
                          ("synthetic stream", synthetic_batches(args.synthetic))):
        digest, events, seconds = fingerprint(batches)
        print(f"{name:18s} {digest}  {events:,} events, {events / seconds:,.0f} events/s (CPU)", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
