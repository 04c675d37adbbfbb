"""Scoring throughput: the reference kNN against procsight's default, on the same event stream.

The reference kNN (scoring/README.md): hash128-v1, one LanceDB vector search (limit 10) and one `add`
per event. procsight:
batches of 1,000 through AnomalyEngine (in-memory baseline, LanceDB written once per flush).
The stream: 20,000 events from ~300 benign patterns with varying pids, temp names and arguments,
5% novel. The reference kNN slows as every `add` writes a new fragment and version, so it runs
on the first 2,000 events only (said in the output). Then a separate process feeds 1,000,000 events
of 5,000 distinct patterns into one workload and reports its resident memory, and what procsight adds to
LanceDB's fixed cost (the same process's resident memory with the engine and LanceDB loaded and a one-event
workload flushed, measured in the same run just before the large workload; target: under 150 MB).

    .venv/bin/python bench/scoring.py [--events 20000] [--reference-events 2000] [--big-events 1000000 (0: skip)]
                                      [--big-only]
"""

from __future__ import annotations

import argparse
import functools
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# Run as a script, this file's directory comes first on sys.path and this file would shadow the
# `scoring` package it measures.
sys.path = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import lancedb  # noqa: E402
import numpy as np  # noqa: E402
import psutil  # noqa: E402
import pyarrow as pa  # noqa: E402

from core.event import ProcessEvent  # noqa: E402
from scoring.config import EngineConfig  # noqa: E402
from scoring.engine import AnomalyEngine  # noqa: E402
from scoring.featurizer import get_embedder  # noqa: E402

BATCH = 1000
NET_MEMORY_TARGET_MB = 150  # issue 12: what procsight adds to LanceDB's fixed cost, at 1M events / 5,000 patterns
WORDS = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliet", "kilo",
         "lima", "mike", "november", "oscar", "papa", "quebec"]
PROGRAMS = ["nginx", "sh", "python3", "date", "gzip", "tar", "find", "curl", "git", "make", "gcc", "ls", "cat",
            "grep", "awk", "sed", "cp", "mv", "rm", "systemctl", "journalctl", "ps", "df", "du", "ssh", "rsync"]


@functools.cache
def _templates(patterns: int) -> list[tuple[str, list[str], str, str, int]]:
    templates = []
    for i in range(patterns):
        program = PROGRAMS[i % len(PROGRAMS)]
        # Words, not numbers: numbers are normalised away, and these must stay distinct patterns.
        flags = [f"--{WORDS[i % len(WORDS)]}", f"--{WORDS[i // len(WORDS) % len(WORDS)]}-mode"]
        templates.append((program, flags, f"/srv/{WORDS[i % 13]}/data", ["bash", "systemd", "cron", "nginx"][i % 4],
                          [0, 33, 1000][i % 3]))
    return templates


def make_stream(n: int, patterns: int, novel_share: float, seed: int = 7) -> list[ProcessEvent]:
    """n events of `patterns` benign templates (new pid, file and temp name each time), `novel_share` new."""
    rng = random.Random(seed)
    templates = _templates(patterns)
    events = []
    for j in range(n):
        if rng.random() < novel_share:
            name = f"tool{rng.randrange(10**6)}"
            args = (name, f"--x{rng.randrange(1000)}", f"/opt/{rng.randrange(10**6)}/bin")
            parent, uid = "bash", 1000
        else:
            name, flags, path, parent, uid = templates[rng.randrange(patterns)]
            args = (name, *flags, f"{path}/file.{rng.randrange(10**5)}", f"--pid={rng.randrange(2**22)}",
                    f"/tmp/tmp.{rng.randrange(16**8):08x}Zq")
        events.append(ProcessEvent(executable_name=name, command_line=" ".join(args), command_args=args,
                                   parent_name=parent, user_id=uid, pid=rng.randrange(2**22),
                                   timestamp=1_800_000_000.0 + j * 0.01))
    return events


def directory_size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.array(values), q)) if values else float("nan")


def run_reference(events: list[ProcessEvent], directory: Path) -> tuple[float, list[float], int]:
    """One search and one add per event, as the reference kNN does."""
    embedder = get_embedder("hash128-v1")
    db = lancedb.connect(str(directory))
    table = None
    latencies = []
    start = time.perf_counter()
    for i, event in enumerate(events):
        began = time.perf_counter()
        vector = embedder.embed([event])[0]
        if table is not None:
            hits = table.search(vector).metric("cosine").limit(10).to_arrow()
            nearest = float(hits.column("_distance")[0].as_py()) if hits.num_rows else 1.0
            _ = 1.0 if hits.num_rows == 0 else min(1.0, 2.0 * nearest)
        row = pa.table({"vector": pa.FixedSizeListArray.from_arrays(pa.array(vector, pa.float32()), 128),
                        "command_line": [event.command_line]})
        if table is None:
            table = db.create_table("events", data=row)
        else:
            table.add(row)
        latencies.append(time.perf_counter() - began)
        if (i + 1) % 500 == 0:
            print(f"  reference: {i + 1} events, {500 / sum(latencies[-500:]):.1f} events/s over the last 500",
                  flush=True)
    return time.perf_counter() - start, latencies, directory_size(directory)


def run_procsight(events: list[ProcessEvent], directory: Path) -> tuple[float, list[float], int, int]:
    engine = AnomalyEngine(EngineConfig(baselines=str(directory)))
    latencies = []
    start = time.perf_counter()
    for offset in range(0, len(events), BATCH):
        began = time.perf_counter()
        engine.process(events[offset:offset + BATCH], workload="bench")
        latencies.append(time.perf_counter() - began)
    engine.flush()  # the baseline is persisted inside the timed run
    elapsed = time.perf_counter() - start
    patterns = len(engine.store.get("default", "bench"))
    engine.close()
    return elapsed, latencies, directory_size(directory), patterns


def big_workload(n: int, patterns: int) -> None:
    """Runs in its own process: RSS after n events of `patterns` distinct patterns in one workload."""
    with tempfile.TemporaryDirectory() as directory:
        engine = AnomalyEngine(EngineConfig(baselines=directory))
        engine.learn_only([ProcessEvent(executable_name="warm", command_line="warm")], workload="warm")
        engine.flush()  # LanceDB's native core, pandas and pydantic are now loaded: the fixed cost
        fixed_rss = psutil.Process().memory_info().rss
        start = time.perf_counter()
        for offset in range(0, n, BATCH):  # generated batch by batch: the bench must not hold 1M events
            engine.process(make_stream(BATCH, patterns, 0.0, seed=offset), workload="big")
        engine.flush()
        elapsed = time.perf_counter() - start
        rss = psutil.Process().memory_info().rss
        learned = len(engine.store.get("default", "big"))
        print(f"{n} {learned} {rss} {elapsed:.1f} {directory_size(Path(directory))} {fixed_rss}")
        engine.close()


def report_big_workload(events: int, patterns: int) -> None:
    print(f"large workload: {events:,} events, {patterns:,} distinct patterns, own process ...", flush=True)
    out = subprocess.run([sys.executable, __file__, "--_big", "--big-events", str(events), "--big-patterns",
                          str(patterns)], capture_output=True, text=True, check=True)
    n, learned, rss, seconds, disk, fixed = out.stdout.split()
    net = int(rss) - int(fixed)
    print(f"large workload: {int(n):,} events -> {int(learned):,} patterns in {float(seconds):.0f} s "
          f"({int(n) / float(seconds):,.0f} events/s); resident memory {int(rss) / 2**20:.0f} MB, of which "
          f"{int(fixed) / 2**20:.0f} MB is LanceDB's fixed cost (the process with the engine and LanceDB loaded and no "
          f"workload, this run); procsight adds {net / 2**20:.0f} MB (target < {NET_MEMORY_TARGET_MB} MB: "
          f"{net / 2**20 / NET_MEMORY_TARGET_MB:.0%}); {int(disk) / 1e6:.1f} MB on disk")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--reference-events", type=int, default=2_000)
    parser.add_argument("--big-events", type=int, default=1_000_000, help="events of the large workload (0: skip it)")
    parser.add_argument("--big-patterns", type=int, default=5_000)
    parser.add_argument("--big-only", action="store_true", help="only the large workload's memory")
    parser.add_argument("--_big", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args._big:
        big_workload(args.big_events, args.big_patterns)
        return 0
    if args.big_only:
        report_big_workload(args.big_events, args.big_patterns)
        return 0

    events = make_stream(args.events, 300, 0.05)
    with tempfile.TemporaryDirectory() as tmp:
        ours_dir, reference_dir = Path(tmp, "procsight"), Path(tmp, "reference")
        elapsed, latencies, disk, patterns = run_procsight(events, ours_dir)
        ours_rate = len(events) / elapsed
        print(f"procsight default (hash128-v2, batches of {BATCH}): {len(events)} events in {elapsed:.2f} s = "
              f"{ours_rate:,.0f} events/s; per-batch p50 {percentile(latencies, 50) * 1e3:.1f} ms, "
              f"p99 {percentile(latencies, 99) * 1e3:.1f} ms; {patterns} patterns, {disk / 1e6:.2f} MB on disk")
        print(f"reference kNN (hash128-v1, one search + one add per event), first {args.reference_events} "
              f"events only (all {len(events)} would take hours):")
        a_elapsed, a_latencies, a_disk = run_reference(events[: args.reference_events], reference_dir)
        reference_rate = args.reference_events / a_elapsed
        print(f"reference: {args.reference_events} events in {a_elapsed:.1f} s = {reference_rate:,.1f} events/s; "
              f"per-event p50 {percentile(a_latencies, 50) * 1e3:.1f} ms, "
              f"p99 {percentile(a_latencies, 99) * 1e3:.1f} ms; "
              f"{a_disk / 1e6:.1f} MB on disk")
        # Same events for both: procsight's rate over the reference's subset, measured again for fairness.
        subset_elapsed, _, _, _ = run_procsight(events[: args.reference_events], Path(tmp, "subset"))
        subset_rate = args.reference_events / subset_elapsed
        print(f"ratio over the {args.reference_events} events both ran: procsight {subset_rate:,.0f} events/s vs "
              f"reference {reference_rate:,.1f} events/s = {subset_rate / reference_rate:,.0f}x; "
              f"full-stream rate vs reference: {ours_rate / reference_rate:,.0f}x")
        print(f"disk: procsight {disk / 1e6:.2f} MB for {patterns} patterns from {len(events)} events "
              f"({disk / max(1, patterns) / 1e3:.1f} kB/pattern); reference {a_disk / 1e6:.1f} MB for "
              f"{args.reference_events} events ({a_disk / args.reference_events / 1e3:.1f} kB/event)")

    if args.big_events > 0:
        report_big_workload(args.big_events, args.big_patterns)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
