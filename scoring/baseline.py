"""Per-(tenant, workload) baselines of distinct patterns, held in memory, kept durable in LanceDB.

A baseline row is a pattern, not an event: key, vector, count, first_seen, last_seen, whether it is
trusted, one example command line and the executable name. Scoring reads the in-memory copy (a numpy matrix; a matrix
product finds the k nearest by cosine); learning updates it and marks rows dirty; `flush` writes the
dirty rows to LanceDB in one `merge_insert` per table (never one commit per event; periodic flushes
write only significant changes, so disk use follows distinct patterns, not events); `maintain`
prunes patterns past retention, compacts files and removes old versions. Loading a baseline reads its
table back, so a restart loses no flushed pattern.

No ANN index: measured up to 500,000 patterns (scoring/README.md, "Nearest patterns without an index"),
the numpy product is as fast as LanceDB's IVF-PQ search and exact, and it sees unflushed patterns.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import hashlib
import logging
import re
import threading
import time
import warnings
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

import lancedb
import numpy as np
import pyarrow as pa
import threadpoolctl

log = logging.getLogger(__name__)

_SAFE_CHARS = re.compile(r"[^a-z0-9]+")
TECHNIQUES = "techniques"  # the column of a pattern's ATT&CK techniques, space-separated (NULL: not recorded)
REGISTRY_TABLE = "workloads"  # (tenant, workload, model) of every baseline, for the per-tenant cap
_PRODUCT_CELLS = 4_000_000  # similarities computed at once by a NearestCache: 16 MB of float32
PERSIST_LAST_SEEN_STEP = 3600.0  # seconds; pruning works in days, so last_seen need not be exact on disk


def _glibc_malloc_trim() -> Callable[[int], int] | None:
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim
    except (OSError, AttributeError):  # not glibc (musl has no malloc_trim): nothing to give back
        return None


_MALLOC_TRIM = _glibc_malloc_trim()


@functools.cache
def _configure_process() -> None:
    """Process-wide settings of the libraries a baseline uses, made once per process.

    - Arrow's default pool (mimalloc) keeps what each flush's conversions freed: 45 MB after 1M events
      (bench/scoring.py). From the system allocator, _return_freed_memory gives it back.
    - BLAS runs the k-nearest products. They are small, and a second BLAS thread only spins: on the
      synthetic stream of bench/verdicts.py it used 2.4 s of CPU beside the scoring thread's 5.6 s and
      saved no time. In the receiver that CPU is the other core's, which receives and exports.
    """
    pa.set_memory_pool(pa.system_memory_pool())
    threadpoolctl.threadpool_limits(limits=1, user_api="blas")


def _return_freed_memory() -> None:
    """Gives the heap memory a flush or compaction freed (LanceDB's writer threads, Arrow's system pool)
    back to the system. glibc keeps it in per-thread arenas otherwise: 40 MB of the resident memory after
    1M events (bench/scoring.py)."""
    if _MALLOC_TRIM is not None:
        _MALLOC_TRIM(0)


def table_name(tenant: str, workload: str, model: str) -> str:
    """A LanceDB table name that cannot escape the data directory or collide.

    A readable slug (lowercase letters and digits only, so `../../etc` becomes `etc`) plus a digest
    of the exact (tenant, workload, model) triple, so `a/b` and `a_b` stay apart.
    """
    exact = "\x00".join((tenant, workload, model)).encode("utf-8", "surrogatepass")
    digest = hashlib.sha256(exact).hexdigest()[:20]
    slug = _SAFE_CHARS.sub("_", f"{tenant}_{workload}".lower()).strip("_")[:40] or "w"
    return f"b_{slug}_{digest}"


def _valid_utf8(text: str) -> str:
    """Arrow strings must be valid UTF-8; JSON input can carry lone surrogates."""
    return text.encode("utf-8", "replace").decode("utf-8")


def _techniques_text(techniques: frozenset[str] | None) -> str | None:
    return None if techniques is None else " ".join(sorted(techniques))


@dataclass(slots=True)
class Neighbours:
    """k nearest patterns of each query row: indices into the baseline and cosine distances."""

    rows: np.ndarray  # (n, k) int64, -1 where the baseline has fewer than k patterns
    distances: np.ndarray  # (n, k) float32, inf where rows == -1


class Baseline:
    """The learned patterns of one workload, as arrays that grow by doubling."""

    def __init__(self, dim: int, tenant: str, workload: str) -> None:
        self.tenant = tenant
        self.workload = workload
        self.dim = dim
        self.index: dict[str, int] = {}
        self.keys: list[str] = []
        self.examples: list[str] = []
        self.executables: list[str] = []
        # ATT&CK techniques the pattern's evidence showed when learned: a behaviour the workload has shown.
        # None: not known (a row stored before procsight recorded them), which counts as familiar.
        self.techniques: list[frozenset[str] | None] = []
        self._allocate(64)
        self.executable_counts: Counter[str] = Counter()
        self.events_learned = 0
        self.dirty: set[int] = set()
        # Rows in the order they became trusted, since the rows were last renumbered (`keep`, loading):
        # how a `NearestCache` made earlier catches up.
        self.trust_log: list[int] = []
        self.lock = threading.RLock()

    def __len__(self) -> int:
        return len(self.keys)

    def _allocate(self, capacity: int) -> None:
        self.vectors = np.zeros((capacity, self.dim), dtype=np.float32)
        self.counts = np.zeros(capacity, dtype=np.int64)
        self.first_seen = np.zeros(capacity, dtype=np.float64)
        self.last_seen = np.zeros(capacity, dtype=np.float64)
        self.trusted = np.zeros(capacity, dtype=bool)
        # What LanceDB holds, so a periodic flush writes only changes that matter.
        self.persisted_count = np.zeros(capacity, dtype=np.int64)
        self.persisted_last_seen = np.zeros(capacity, dtype=np.float64)

    def _row_arrays(self) -> tuple[str, ...]:
        return ("vectors", "counts", "first_seen", "last_seen", "trusted", "persisted_count", "persisted_last_seen")

    def nearest(self, queries: np.ndarray, k: int) -> Neighbours:
        """k nearest trusted patterns: a provisional pattern vouches for its own repeats, not its neighbours."""
        n = len(self.keys)
        if n == 0 or len(queries) == 0 or not self.trusted[:n].any():
            return Neighbours(np.full((len(queries), k), -1), np.full((len(queries), k), np.inf, np.float32))
        similarity = queries @ self.vectors[:n].T
        similarity[:, ~self.trusted[:n]] = -np.inf
        take = min(k, n)
        if take < n:
            top = np.argpartition(-similarity, take - 1, axis=1)[:, :take]
        else:
            top = np.broadcast_to(np.arange(n), (len(queries), n)).copy()
        top_similarity = np.take_along_axis(similarity, top, axis=1)
        order = np.argsort(-top_similarity, axis=1)
        rows = np.take_along_axis(top, order, axis=1)
        distances = np.clip(1.0 - np.take_along_axis(top_similarity, order, axis=1), 0.0, np.inf)
        rows = np.where(np.isinf(distances), -1, rows)
        if take < k:
            rows = np.pad(rows, ((0, 0), (0, k - take)), constant_values=-1)
            distances = np.pad(distances, ((0, 0), (0, k - take)), constant_values=np.inf)
        return Neighbours(rows, distances.astype(np.float32))

    def learn(self, key: str, vector: np.ndarray, example: str, executable: str, when: float, *, times: int = 1,
              trusted: bool = True, techniques: frozenset[str] = frozenset()) -> int:
        """Counts an occurrence. An untrusted (provisional) pattern becomes trusted when `trusted` is passed."""
        row = self.index.get(key)
        if row is None:
            row = self._append(key, vector, example, executable, when)
            self.techniques[row] = techniques
            self.dirty.add(row)
        elif techniques and not techniques <= (self.techniques[row] or frozenset()):
            self.techniques[row] = techniques | (self.techniques[row] or frozenset())
            self.dirty.add(row)
        # Read and compared as Python numbers (`item`): numpy scalars cost several times more per operation,
        # and this runs for every event learned.
        newly_trusted = trusted and not self.trusted.item(row)
        if newly_trusted:
            self.trusted[row] = True
            self.trust_log.append(row)
        count = self.counts.item(row) + times
        self.counts[row] = count
        last_seen = self.last_seen.item(row)
        if when > last_seen:
            self.last_seen[row] = last_seen = when
        self.executable_counts[executable] += times
        self.events_learned += times
        # Worth writing: a new or newly trusted pattern, a count that doubled, a last-seen an hour on.
        # Routine repeats change neither the score (frequency is logarithmic in effect) nor pruning.
        if (newly_trusted or count >= 2 * self.persisted_count.item(row)
                or last_seen - self.persisted_last_seen.item(row) >= PERSIST_LAST_SEEN_STEP):
            self.dirty.add(row)
        return row

    def rows_to_write(self, exact: bool) -> list[int]:
        """Rows with significant changes, or with `exact` every row that differs from what is stored."""
        rows = set(self.dirty)
        if exact:
            n = len(self.keys)
            changed = self.counts[:n] != self.persisted_count[:n]
            changed |= self.last_seen[:n] != self.persisted_last_seen[:n]
            rows.update(np.flatnonzero(changed).tolist())
        return sorted(rows)

    def mark_persisted(self, rows: list[int]) -> None:
        self.persisted_count[rows] = self.counts[rows]
        self.persisted_last_seen[rows] = self.last_seen[rows]
        self.dirty.difference_update(rows)

    def _append(self, key: str, vector: np.ndarray, example: str, executable: str, when: float) -> int:
        row = len(self.keys)
        if row == len(self.counts):
            self._grow()
        self.index[key] = row
        self.keys.append(key)
        self.examples.append(example)
        self.executables.append(executable)
        self.techniques.append(frozenset())
        self.vectors[row] = vector
        self.first_seen[row] = when
        self.last_seen[row] = when
        return row

    def _grow(self) -> None:
        for name in self._row_arrays():
            array = getattr(self, name)
            setattr(self, name, np.concatenate([array, np.zeros_like(array)]))

    def keep(self, rows: np.ndarray) -> None:
        """Keeps only `rows` (used by pruning); everything else is forgotten."""
        self.keys = [self.keys[i] for i in rows]
        self.examples = [self.examples[i] for i in rows]
        self.executables = [self.executables[i] for i in rows]
        self.techniques = [self.techniques[i] for i in rows]
        for name in self._row_arrays():
            setattr(self, name, getattr(self, name)[rows].copy())
        self.index = {key: i for i, key in enumerate(self.keys)}
        self.trust_log = []
        self.executable_counts = Counter()
        for executable, count in zip(self.executables, self.counts, strict=True):
            self.executable_counts[executable] += int(count)
        self.dirty = set()
        if len(self.counts) == 0:
            self._allocate(64)

    def rows_as_arrow(self, rows: list[int]) -> pa.Table:
        vectors = self.vectors[rows].reshape(-1)
        return pa.table({
            "pattern": pa.array([self.keys[i] for i in rows], pa.string()),
            "vector": pa.FixedSizeListArray.from_arrays(pa.array(vectors, pa.float32()), self.dim),
            "count": pa.array(self.counts[rows], pa.int64()),
            "first_seen": pa.array(self.first_seen[rows], pa.float64()),
            "last_seen": pa.array(self.last_seen[rows], pa.float64()),
            "trusted": pa.array(self.trusted[rows], pa.bool_()),
            "example": pa.array([_valid_utf8(self.examples[i]) for i in rows], pa.string()),
            "executable": pa.array([_valid_utf8(self.executables[i]) for i in rows], pa.string()),
            "techniques": pa.array([_techniques_text(self.techniques[i]) for i in rows], pa.string()),
        })

    def load_arrow(self, table: pa.Table) -> None:
        n = table.num_rows
        if n == 0:
            return
        self.keys = table.column("pattern").to_pylist()
        self.examples = table.column("example").to_pylist()
        self.executables = table.column("executable").to_pylist()
        stored = table.column(TECHNIQUES).to_pylist() if TECHNIQUES in table.column_names else [None] * n
        self.techniques = [None if text is None else frozenset(text.split()) for text in stored]
        self._allocate(max(64, 1 << (n - 1).bit_length()))
        vectors = table.column("vector").combine_chunks().flatten().to_numpy(zero_copy_only=False)
        self.vectors[:n] = vectors.reshape(n, self.dim)
        self.counts[:n] = table.column("count").to_numpy()
        self.first_seen[:n] = table.column("first_seen").to_numpy()
        self.last_seen[:n] = table.column("last_seen").to_numpy()
        self.trusted[:n] = table.column("trusted").to_numpy(zero_copy_only=False)
        self.trust_log = []
        self.persisted_count[:n] = self.counts[:n]
        self.persisted_last_seen[:n] = self.last_seen[:n]
        self.index = {key: i for i, key in enumerate(self.keys)}
        for executable, count in zip(self.executables, self.counts[:n], strict=True):
            self.executable_counts[executable] += int(count)
        self.events_learned = int(self.counts[:n].sum())


class NearestCache:
    """The k nearest trusted patterns of a batch's unseen patterns: one matrix product for the batch
    instead of one per event, then brought up to date with the rows trusted since (`Baseline.trust_log`).

    Exact while the batch holds the baseline's lock: rows are then only appended, and trust only grows, so
    the nearest now are among those found at the start and the rows trusted since.
    """

    def __init__(self, baseline: Baseline, queries: dict[str, np.ndarray], k: int) -> None:
        self._baseline = baseline
        self._k = k
        mark = len(baseline.trust_log)
        # key -> (rows, distances, the trust_log length they include): a key asked again (an unseen
        # pattern repeated in the batch) merges only the rows trusted since it was last asked.
        self._found: dict[str, tuple[np.ndarray, np.ndarray, int]] = {}
        keys = list(queries)
        step = max(1, _PRODUCT_CELLS // max(1, len(baseline)))  # bounds the (queries x rows) product's memory
        for start in range(0, len(keys), step):
            chunk = keys[start:start + step]
            found = baseline.nearest(np.stack([queries[key] for key in chunk]), k)
            for i, key in enumerate(chunk):
                self._found[key] = (found.rows[i], found.distances[i], mark)

    def get(self, key: str, vector: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(rows, distances) of one query as `Baseline.nearest` would find them now."""
        rows, distances, mark = self._found[key]
        trust_log = self._baseline.trust_log
        if mark == len(trust_log):
            return rows, distances
        added = np.asarray(trust_log[mark:], dtype=np.int64)
        added_distances = np.clip(1.0 - self._baseline.vectors[added] @ vector, 0.0, np.inf).astype(np.float32)
        valid = rows >= 0
        rows = np.concatenate([rows[valid], added])
        distances = np.concatenate([distances[valid], added_distances])
        order = np.argsort(distances, kind="stable")[:self._k]  # stable: ties keep the order a one-shot merge gives
        missing = self._k - len(order)  # filled as Baseline.nearest fills them (np.pad costs ~10x more)
        rows = np.concatenate([rows[order], np.full(missing, -1, rows.dtype)])
        distances = np.concatenate([distances[order], np.full(missing, np.inf, distances.dtype)])
        self._found[key] = (rows, distances, len(trust_log))
        return rows, distances


class BaselineStore:
    """Opens, caches, flushes and maintains baselines in one LanceDB database (directory or URI)."""

    def __init__(self, uri: str, dim: int, model: str, *, max_resident: int = 1000,
                 max_workloads_per_tenant: int = 0) -> None:
        self.uri = uri
        self.dim = dim
        self.model = model
        self.max_resident = max_resident
        self.max_workloads_per_tenant = max_workloads_per_tenant  # 0: no cap
        _configure_process()
        self._db = lancedb.connect(uri)
        self._resident: dict[tuple[str, str], Baseline] = {}
        self._lock = threading.Lock()
        # One writer of baseline tables at a time: the engine flushes in the background while scoring may flush
        # an evicted baseline or an acknowledgement (scoring/engine.py).
        self._write_lock = threading.Lock()
        self._workloads: dict[str, set[str]] | None = None  # tenant -> workloads with a baseline (registry)

    # -- the per-tenant cap -----------------------------------------------------------------------

    def admit(self, tenant: str, workload: str) -> bool:
        """Whether `workload` may have a baseline of its own: it has one already, or its tenant is under
        `max_workloads_per_tenant` (then it is registered). A sender inventing workload names must not
        make a table per name."""
        with self._lock:
            workloads = self._registered().setdefault(tenant, set())
            if workload in workloads:
                return True
            if self.max_workloads_per_tenant and len(workloads) >= self.max_workloads_per_tenant:
                return False
            workloads.add(workload)
        row = pa.table({"tenant": [_valid_utf8(tenant)], "workload": [_valid_utf8(workload)], "model": [self.model]})
        try:
            self._db.open_table(REGISTRY_TABLE).add(row)
        except (FileNotFoundError, ValueError):
            self._db.create_table(REGISTRY_TABLE, data=row)
        return True

    def has(self, tenant: str, workload: str) -> bool:
        """Whether the workload has a baseline here (registered, or in memory)."""
        with self._lock:
            return workload in self._registered().get(tenant, ()) or (tenant, workload) in self._resident

    def _registered(self) -> dict[str, set[str]]:
        if self._workloads is None:
            self._workloads = {}
            try:
                rows = self._db.open_table(REGISTRY_TABLE).to_arrow().to_pylist()
            except (FileNotFoundError, ValueError):
                rows = []
            for row in rows:
                if row["model"] == self.model:
                    self._workloads.setdefault(row["tenant"], set()).add(row["workload"])
        return self._workloads

    def get(self, tenant: str, workload: str) -> Baseline:
        key = (tenant, workload)
        with self._lock:
            baseline = self._resident.pop(key, None)
            if baseline is None:
                baseline = self._load(tenant, workload)
            self._resident[key] = baseline  # re-insert: dict order is least recently used first
            evicted = self._evict_overflow()
        for old in evicted:
            self.flush_one(old)
        return baseline

    def resident(self) -> list[Baseline]:
        with self._lock:
            return list(self._resident.values())

    def _evict_overflow(self) -> list[Baseline]:
        evicted = []
        while len(self._resident) > self.max_resident:
            oldest = next(iter(self._resident))
            evicted.append(self._resident.pop(oldest))
        return evicted

    def _load(self, tenant: str, workload: str) -> Baseline:
        baseline = Baseline(self.dim, tenant, workload)
        name = table_name(tenant, workload, self.model)
        try:
            table = self._db.open_table(name)
        except (FileNotFoundError, ValueError):
            return baseline
        baseline.load_arrow(table.to_arrow())
        log.debug("loaded baseline %s/%s: %d patterns", tenant, workload, len(baseline))
        return baseline

    def flush(self, exact: bool = True) -> int:
        """Writes changed patterns (only significant changes unless `exact`); returns rows written."""
        written = sum(self.flush_one(b, exact) for b in self.resident())
        _return_freed_memory()
        return written

    def flush_one(self, baseline: Baseline, exact: bool = True) -> int:
        with baseline.lock:
            rows = baseline.rows_to_write(exact)
            if not rows:
                return 0
            data = baseline.rows_as_arrow(rows)
            baseline.mark_persisted(rows)
        try:
            with self._write_lock:
                self._write(table_name(baseline.tenant, baseline.workload, self.model), data)
        except Exception:
            with baseline.lock:
                baseline.dirty.update(rows)  # written by the next flush instead
            raise
        return len(rows)

    def _write(self, name: str, data: pa.Table) -> None:
        try:
            table = self._db.open_table(name)
        except (FileNotFoundError, ValueError):
            self._db.create_table(name, data=data)
            return
        if TECHNIQUES not in table.schema.names:  # a table written before techniques were recorded
            table.add_columns({TECHNIQUES: "CAST(NULL AS STRING)"})
        (table.merge_insert("pattern").when_matched_update_all().when_not_matched_insert_all().execute(data))

    def maintain(self, retention_seconds: float, now: float | None = None, version_retention: float = 600.0) -> None:
        """Prunes patterns unseen for the retention period, compacts, cleans old versions."""
        now = time.time() if now is None else now
        cutoff = now - retention_seconds
        self.flush()
        for baseline in self.resident():
            with baseline.lock:
                n = len(baseline)
                stale = baseline.last_seen[:n] < cutoff
                if stale.any():
                    baseline.keep(np.flatnonzero(~stale))
                    log.info("pruned %d patterns of %s unseen since retention", int(stale.sum()), baseline.workload)
        for name in _table_names(self._db):
            with self._write_lock:
                table = self._db.open_table(name)
                table.delete(f"last_seen < {cutoff!r}")
                with warnings.catch_warnings():  # lance warns about a zero grace period, which tests use
                    warnings.simplefilter("ignore", UserWarning)
                    table.optimize(cleanup_older_than=timedelta(seconds=version_retention))
        _return_freed_memory()



def move_baselines(source: str, destination: str, owns: Callable[[str, str], bool]) -> int:
    """Moves the baselines (tables and registry rows) of the workloads `owns(tenant, workload)` from the LanceDB
    database `source` to `destination`; how many moved. Each baseline is then kept in one place, whichever
    database now holds its workload (the anomaly processor's shards). Where `destination` has the workload's
    baseline too, the two are joined: it gains the patterns it lacks."""
    source_db, destination_db = lancedb.connect(source), lancedb.connect(destination)
    try:
        registry = source_db.open_table(REGISTRY_TABLE).to_arrow()
    except (FileNotFoundError, ValueError):
        return 0
    moved, kept = [], []
    for row in registry.to_pylist():
        (moved if owns(row["tenant"], row["workload"]) else kept).append(row)
    if not moved:
        return 0
    tables, present = set(_table_names(source_db)), set(_table_names(destination_db))
    for row in moved:
        name = table_name(row["tenant"], row["workload"], row["model"])
        if name not in tables:
            continue
        rows = source_db.open_table(name).to_arrow()
        if name in present:
            destination_db.open_table(name).merge_insert("pattern").when_not_matched_insert_all().execute(rows)
        else:
            destination_db.create_table(name, data=rows)
    try:
        destination = destination_db.open_table(REGISTRY_TABLE)
        registered = {(row["tenant"], row["workload"], row["model"]) for row in destination.to_arrow().to_pylist()}
        missing = [row for row in moved if (row["tenant"], row["workload"], row["model"]) not in registered]
        if missing:
            destination.add(pa.Table.from_pylist(missing, schema=registry.schema))
    except (FileNotFoundError, ValueError):
        destination_db.create_table(REGISTRY_TABLE, data=pa.Table.from_pylist(moved, schema=registry.schema))
    # The source forgets them only once the destination has them all: a move cut short is done again.
    source_db.create_table(REGISTRY_TABLE, data=pa.Table.from_pylist(kept, schema=registry.schema), mode="overwrite")
    for row in moved:
        name = table_name(row["tenant"], row["workload"], row["model"])
        if name in tables:
            source_db.drop_table(name)
    return len(moved)


def _table_names(db: lancedb.DBConnection) -> list[str]:
    """The baseline tables of a database (not the registry)."""
    listing = db.list_tables()
    names = getattr(listing, "tables", listing)
    return [name for name in names if name.startswith("b_")]
