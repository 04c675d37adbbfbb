from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time

import lancedb
import numpy as np
import pytest

from core.confmap import Duration
from core.event import ProcessEvent
from scoring.baseline import Baseline, NearestCache, table_name
from scoring.config import EngineConfig
from scoring.engine import OVERFLOW_WORKLOAD, AnomalyEngine
from scoring.tests.workloads import nginx_restart, web_workload


@pytest.mark.parametrize("workload", ["../../etc", "a/b/../../..", "web\x00\x1b[31mred", "/abs/path", "..", "Ω☃"])
def test_hostile_workload_names_stay_inside_the_data_directory(tmp_path, workload):
    engine = AnomalyEngine(EngineConfig(baselines=str(tmp_path / "db")))
    engine.process(web_workload(20), workload=workload)
    engine.flush()
    name = table_name("default", workload, "hash128-v2")
    assert name.replace("_", "").isalnum() and name.startswith("b_")
    created = os.listdir(tmp_path / "db")
    assert sorted(created) == sorted([f"{name}.lance", "workloads.lance"])  # the baseline and the registry
    assert sorted(os.listdir(tmp_path)) == ["db"]  # nothing escaped next to (or above) the database
    engine.close()


def test_similar_workload_names_do_not_collide():
    names = {table_name("default", w, "hash128-v2") for w in ("a/b", "a_b", "A_B", "a b", "a\x00b")}
    assert len(names) == 5
    assert table_name("t1", "web", "hash128-v2") != table_name("t2", "web", "hash128-v2")


def test_restart_loses_no_learned_pattern(tmp_path):
    config = EngineConfig(baselines=str(tmp_path))
    first = AnomalyEngine(config)
    first.process(web_workload(300), workload="web")
    before = first.process([nginx_restart(pid=1)], workload="web", learn=False)[0]
    first.close()

    second = AnomalyEngine(config)
    after = second.process([nginx_restart(pid=2)], workload="web", learn=False)[0]
    assert after.score == pytest.approx(before.score)
    assert after.nearest == before.nearest
    second.close()


def test_rows_are_distinct_patterns_written_in_batches(tmp_path):
    engine = AnomalyEngine(EngineConfig(baselines=str(tmp_path)))
    events = web_workload(3000)
    for start in range(0, len(events), 500):
        engine.process(events[start:start + 500], workload="web")
        engine.flush()
    engine.close()
    table = lancedb.connect(str(tmp_path)).open_table(table_name("default", "web", "hash128-v2"))
    patterns = engine.featurizer.pattern_keys(events)
    assert table.count_rows() == len(set(patterns)) < 20
    assert sum(table.to_arrow().column("count").to_pylist()) == len(events)
    assert len(table.list_versions()) <= 8  # one commit per flush, never one per event


def test_maintenance_prunes_patterns_past_retention_and_compacts(tmp_path):
    config = EngineConfig(baselines=str(tmp_path), retention=Duration("24h"), version_retention=Duration("0s"))
    engine = AnomalyEngine(config)
    old = [ProcessEvent(executable_name="legacy", command_line="legacy --sync", timestamp=1_000.0)]
    engine.learn_only(old, workload="web")
    engine.learn_only(web_workload(50)[:50], workload="web")  # timestamps 1_000..1_049
    recent = [ProcessEvent(executable_name="fresh", command_line="fresh --run", timestamp=200_000.0)]
    engine.learn_only(recent, workload="web")
    engine.maintain(now=200_000.0)
    table = lancedb.connect(str(tmp_path)).open_table(table_name("default", "web", "hash128-v2"))
    assert table.to_arrow().column("example").to_pylist() == ["fresh --run"]
    assert len(table.list_versions()) == 1  # old versions cleaned up
    baseline = engine.store.get("default", "web")
    assert list(baseline.examples) == ["fresh --run"]
    engine.close()


def test_periodic_flushes_write_only_significant_changes_and_close_writes_exact_counts(tmp_path):
    engine = AnomalyEngine(EngineConfig(baselines=str(tmp_path)))
    events = web_workload(2000)
    written = []
    for start in range(0, len(events), 100):
        engine.process(events[start:start + 100], workload="web")
        written.append(engine.store.flush(exact=False))
    patterns = len(set(engine.featurizer.pattern_keys(events)))
    assert written[0] >= patterns - 1  # first flush: every new pattern
    assert sum(written[1:]) < 6 * patterns  # then only when a count doubles: ~log2(repeats) per pattern
    engine.close()
    table = lancedb.connect(str(tmp_path)).open_table(table_name("default", "web", "hash128-v2"))
    assert sum(table.to_arrow().column("count").to_pylist()) == len(events)


def test_a_flush_that_comes_due_runs_beside_scoring_and_close_waits_for_it(tmp_path):
    # The write is the real LanceDB write, held back until scoring has gone on: scoring must not wait for it.
    engine = AnomalyEngine(EngineConfig(baselines=str(tmp_path), flush_interval=Duration("1ms")))
    release, writing = threading.Event(), threading.Event()
    write = engine.store._write

    def held_write(name, data):
        writing.set()
        assert release.wait(30)
        write(name, data)

    engine.store._write = held_write
    events = web_workload(400)
    time.sleep(0.01)
    engine.process(events[:200], workload="web")  # the flush comes due and starts writing
    assert writing.wait(30)
    engine.process(events[200:], workload="web")  # scored while that write waits
    threading.Timer(0.2, release.set).start()
    engine.close()  # waits for the background write, then writes the exact counts
    table = lancedb.connect(str(tmp_path)).open_table(table_name("default", "web", "hash128-v2"))
    assert sum(table.to_arrow().column("count").to_pylist()) == len(events)


def test_rows_a_failed_write_held_are_written_by_the_next_flush(tmp_path):
    engine = AnomalyEngine(EngineConfig(baselines=str(tmp_path)))
    write = engine.store._write

    def failing_write(name, data):
        raise OSError("disk full")

    engine.store._write = failing_write
    events = web_workload(50)
    engine.process(events, workload="web")
    with pytest.raises(OSError):
        engine.flush()
    engine.store._write = write
    assert engine.store.flush(exact=False) > 0  # the rows of the failed write, though nothing changed since
    engine.close()
    table = lancedb.connect(str(tmp_path)).open_table(table_name("default", "web", "hash128-v2"))
    assert sum(table.to_arrow().column("count").to_pylist()) == len(events)


def test_a_table_from_before_techniques_were_recorded_loads_and_gains_the_column(tmp_path):
    """Rows stored without techniques count as familiar (None); the next flush adds the column."""
    import numpy as np
    import pyarrow as pa

    from scoring.baseline import BaselineStore

    store = BaselineStore(str(tmp_path), 4, "m")
    old = store.get("t", "w")
    old.learn("k1", np.array([1, 0, 0, 0], np.float32), "ls", "ls", 1.0)
    legacy = old.rows_as_arrow([0]).drop_columns(["techniques"])
    lancedb.connect(str(tmp_path)).create_table(table_name("t", "w", "m"), data=legacy)

    reopened = BaselineStore(str(tmp_path), 4, "m").get("t", "w")
    assert reopened.techniques == [None]
    reopened.learn("k2", np.array([0, 1, 0, 0], np.float32), "cat /etc/shadow", "cat", 2.0,
                   techniques=frozenset({"T1003.008"}))
    writer = BaselineStore(str(tmp_path), 4, "m")
    writer._resident[("t", "w")] = reopened
    writer.flush()
    stored = lancedb.connect(str(tmp_path)).open_table(table_name("t", "w", "m")).to_arrow()
    rows = dict(zip(stored.column("pattern").to_pylist(), stored.column("techniques").to_pylist(), strict=True))
    assert rows == {"k1": None, "k2": "T1003.008"}
    assert isinstance(stored.schema.field("techniques").type, type(pa.string()))


def test_workloads_per_tenant_are_capped_and_the_rest_scored_in_the_overflow_baseline(tmp_path):
    """2,000 invented workload names from one sender made 1,562 tables in 11 s; now at most the cap."""
    config = EngineConfig(baselines=str(tmp_path / "db"), max_workloads_per_tenant=20)
    engine = AnomalyEngine(config)
    for i in range(200):
        verdict = engine.process([nginx_restart(pid=i)], tenant="spray", workload=f"invented-{i}")[0]
        assert verdict.workload == (f"invented-{i}" if i < 20 else OVERFLOW_WORKLOAD)
    engine.process([nginx_restart(pid=1)], tenant="other", workload="web")  # another tenant is not affected
    engine.flush()
    assert engine.overflow_events == {"spray": 180}
    tables = [name for name in os.listdir(tmp_path / "db") if name.startswith("b_")]
    assert len(tables) == 20 + 1 + 1  # the cap, the overflow baseline, the other tenant's
    engine.close()

    restarted = AnomalyEngine(config)  # the registry survives a restart: the cap still holds
    assert restarted.process([nginx_restart(pid=2)], tenant="spray", workload="invented-999")[0].workload == (
        OVERFLOW_WORKLOAD)
    assert restarted.process([nginx_restart(pid=3)], tenant="spray", workload="invented-3")[0].workload == (
        "invented-3")
    restarted.close()


def test_a_nearest_cache_made_before_rows_are_learned_or_trusted_finds_what_nearest_finds_now_each_time_asked():
    rng = np.random.default_rng(7)
    unit = lambda: (lambda v: (v / np.linalg.norm(v)).astype(np.float32))(rng.normal(size=16))  # noqa: E731
    baseline = Baseline(16, "default", "web")
    for number in range(40):
        baseline.learn(f"row{number}", unit(), "", "x", 0.0, trusted=number % 3 != 0)
    queries = {f"query{number}": unit() for number in range(5)}
    cache = NearestCache(baseline, queries, k=8)
    trusted_before = len(baseline.trust_log)

    def assert_cache_finds_what_nearest_finds_now() -> None:
        for key, vector in queries.items():
            rows, distances = cache.get(key, vector)
            now = baseline.nearest(vector[None, :], 8)
            assert rows.tolist() == now.rows[0].tolist()
            assert np.allclose(distances, now.distances[0], atol=1e-6)

    for number in range(0, 40, 3):  # provisional rows become trusted, new rows arrive, some of them provisional
        baseline.learn(f"row{number}", baseline.vectors[number], "", "x", 0.0, trusted=True)
    assert_cache_finds_what_nearest_finds_now()  # each query asked once: it merges the rows trusted so far
    for number in range(40, 60):
        baseline.learn(f"row{number}", unit(), "", "x", 0.0, trusted=number % 2 == 0)
    assert len(baseline.trust_log) - trusted_before == 14 + 10
    assert_cache_finds_what_nearest_finds_now()  # asked again: it merges only the rows trusted since


def test_an_engine_runs_blas_on_one_thread(tmp_path):
    """The k-nearest products are small: a second BLAS thread only spins on the core the receiver needs."""
    code = (
        "import json, sys, threadpoolctl\n"
        "from scoring.config import EngineConfig\n"
        "from scoring.engine import AnomalyEngine\n"
        "def blas(): return [p['num_threads'] for p in threadpoolctl.threadpool_info() if p['user_api'] == 'blas']\n"
        "before = blas()\n"
        "AnomalyEngine(EngineConfig(baselines=sys.argv[1]))\n"
        "print(json.dumps([before, blas()]))\n"
    )
    env = {key: value for key, value in os.environ.items() if not key.endswith("_NUM_THREADS")}
    done = subprocess.run([sys.executable, "-c", code, str(tmp_path)], env=env, capture_output=True, text=True,
                          check=True, timeout=120)
    before, after = json.loads(done.stdout)
    assert before and after == [1] * len(before)
    if (os.cpu_count() or 1) > 1:
        assert max(before) > 1  # BLAS's own default here: the setting is what made it one
