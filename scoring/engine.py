"""The scoring engine: featurize, score against the workload's baseline, add evidence, group chains, learn.

Score of one event (all in 0..1):
- model: with no history 1.0; else over the k nearest patterns, min(1, 2 * distance + 0.1 / count)
  (the reference kNN's `min(1, 2 * nearest distance)`, see scoring/README.md, plus a frequency term: a
  pattern seen once is less normal than one seen a thousand times; seen once again, a new script drops
  from ~0.7 to ~0.1);
- evidence: about the event itself (scoring/heuristics.py, which applies scoring/knowledge.py) and across
  execs (scoring/chains.py), one item per ATT&CK technique; each has a weight, damped for patterns the
  workload already knows (familiar evidence is the workload's normal, e.g. CGI shells under a web server);
- final: noisy-OR, 1 - (1 - 0.62 * model) * prod(1 - weight), so evidence accumulates without exceeding 1.
Severity comes from the workload's thresholds; learning follows `scoring.policy`; the chain tracker
groups linked events into incidents.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from core.confmap import ConfigError, check
from core.event import CONNECTION, LISTEN, ProcessEvent
from scoring.baseline import Baseline, BaselineStore, NearestCache
from scoring.chains import ChainTracker, ChainView, Incident
from scoring.config import EngineConfig, Thresholds
from scoring.evidence import COLLECTION, COMMAND_AND_CONTROL, DISCOVERY, PERSISTENCE, Evidence
from scoring.featurizer import get_embedder
from scoring.heuristics import WEB_PORTS, assess
from scoring.policy import HoldBack, PendingPattern
from scoring.tokens import address_class, base_name, elevated_program

if TYPE_CHECKING:
    from scoring.sigma import SigmaRules

log = logging.getLogger(__name__)

FREQUENCY_WEIGHT = 0.1
OVERFLOW_WORKLOAD = "_overflow"  # a tenant's events of workloads past max_workloads_per_tenant
# What novelty alone can score (0.62; 0.66 with a program never run here): an alert takes novelty plus
# evidence of about 0.3 or more, so weak evidence (a plain download, `id`) ranks a new command higher
# without making it an alert by itself.
NOVELTY_CEILING = 0.62
NEW_EXECUTABLE_WEIGHT = 0.1
# Below a server or a network-connected shell, looking around and packing data up is reconnaissance
# and staging, not an admin's routine: such evidence counts at least this much there.
UNTYPED_LINEAGE_WEIGHT = 0.3
WEB_SHELL = "T1505.003"
WEB_SHELL_WRITE_WEIGHT = 0.6  # a script written into a web root by what a server started
# Evidence this strong of a technique the workload's nearest patterns never showed is a new behaviour, as
# new as a program never run here: `cat /etc/shadow` is not routine because `cat /etc/os-release` is.
NEW_BEHAVIOUR_WEIGHT = 0.3
TECHNIQUE_WEIGHT = 0.1  # evidence this strong names its technique: in the verdict, and as a learned pattern's behaviour
FAMILIAR_DISTANCE = 0.35  # neighbours this close (and the nearest) vouch for the behaviours they showed
NEW_LISTEN_WEIGHT = 0.35
NEW_REMOTE_WEIGHT = 0.35  # a new peer on a non-web port (C2, exfiltration, lateral movement)
NEW_REMOTE_WEB_WEIGHT = 0.1
SUSPICIOUS_WEIGHT = 0.3  # evidence this strong keeps a pattern provisional, whatever its score
MIN_DAMPING = 0.2  # heuristic weight kept for a pattern the workload knows well
_HEURISTIC_CACHE_LIMIT = 1 << 14  # distinct (command, context) assessments kept; a fleet receiver repeats far fewer


def _new_endpoint(event: ProcessEvent) -> Evidence:
    """A listening port or remote peer this workload has not had before (with this program)."""
    if event.event_name == LISTEN:
        return Evidence(NEW_LISTEN_WEIGHT, f"new listening port {event.local_port}")
    web = event.remote_port in WEB_PORTS
    local = address_class(event.remote_address) == "loopback"  # local services: routine, weak evidence
    weight = NEW_REMOTE_WEB_WEIGHT if web or local else NEW_REMOTE_WEIGHT
    where = "" if web or local else " on a non-web port"
    return Evidence(weight, f"new remote address {event.remote_address}:{event.remote_port}{where}")


def _familiar(baseline: Baseline, model: _ModelScore) -> frozenset[str] | None:
    """Techniques the pattern's neighbourhood has shown; None when a neighbour predates that record."""
    found: set[str] = set()
    for row in model.neighbours:
        techniques = baseline.techniques[row]
        if techniques is None:
            return None
        found |= techniques
    return frozenset(found)


def _new_behaviour(evidence: list[Evidence], baseline: Baseline, model: _ModelScore) -> list[str]:
    """Techniques of strong evidence the pattern's neighbourhood never showed (none without strong evidence)."""
    strong = {e.technique for e in evidence if e.technique and e.weight >= NEW_BEHAVIOUR_WEIGHT}
    if not strong:
        return []
    familiar = _familiar(baseline, model)
    return [] if familiar is None else sorted(strong - familiar)


def _techniques(evidence: list[Evidence]) -> tuple[str, ...]:
    """The techniques the evidence names, in its order (strongest first but for late additions), each once."""
    if not evidence:
        return ()
    return tuple(dict.fromkeys(e.technique for e in evidence if e.technique and e.weight >= TECHNIQUE_WEIGHT))


def _load_sigma(directory: str) -> SigmaRules | None:
    """The user's Sigma rules, or None when none are configured."""
    if not directory:
        return None
    try:
        from scoring.sigma import SigmaRules
    except ImportError as exc:
        raise ConfigError("sigma_rules", f"needs pySigma: install procsight with the `sigma` extra ({exc})") from exc
    rules = SigmaRules.load(Path(directory))
    log.info("Sigma rules: %s", rules.report.summary())
    return rules


def _untyped(item: Evidence, origin: str) -> Evidence:
    if item.tactic in (DISCOVERY, COLLECTION, COMMAND_AND_CONTROL) and item.weight < UNTYPED_LINEAGE_WEIGHT:
        return Evidence(UNTYPED_LINEAGE_WEIGHT, f"{item.reason}, below {origin}", item.technique, item.tactic)
    if item.technique == WEB_SHELL and item.tactic == PERSISTENCE and item.weight < WEB_SHELL_WRITE_WEIGHT:
        return Evidence(WEB_SHELL_WRITE_WEIGHT, f"{item.reason}, below {origin} (a web shell)", item.technique,
                        item.tactic)
    return item


def program_of(event: ProcessEvent) -> str:
    """What ran, for "never run here": the executable, or `sudo fish` for an elevated program."""
    inner = elevated_program(event)
    return f"{base_name(event.executable_name)} {inner}" if inner else event.executable_name


@dataclass(slots=True)
class Verdict:
    score: float
    severity: str  # none | warn | alert
    reasons: list[str]
    workload: str
    nearest: str
    model: str
    vector: np.ndarray = field(repr=False, default_factory=lambda: np.zeros(0, np.float32))
    techniques: tuple[str, ...] = ()  # ATT&CK technique ids of the evidence, strongest first
    incident: str = ""  # id of the chain this event belongs to ("" when none)
    incident_score: float = 0.0  # the chain's strongest event, raised by the evidence across it


@dataclass(slots=True)
class _ModelScore:
    score: float
    nearest_row: int  # -1 without history
    distance: float
    known_count: int  # > 0 when the exact pattern is in the baseline
    neighbours: tuple[int, ...] = ()  # the rows it was compared with (the exact row, or the k nearest)


class AnomalyEngine:
    """Scores and learns process events, one baseline per (tenant, workload). Thread-safe."""

    def __init__(self, config: EngineConfig | None = None) -> None:
        self.config = config or EngineConfig()
        check(self.config)
        self.featurizer = get_embedder(self.config.model)
        self.store = BaselineStore(self.config.baselines, self.featurizer.dim, self.featurizer.name,
                                   max_resident=self.config.max_resident_workloads,
                                   max_workloads_per_tenant=self.config.max_workloads_per_tenant)
        self.overflow_events: Counter[str] = Counter()  # per tenant: events of workloads past the cap
        self._holdbacks: dict[tuple[str, str], HoldBack] = {}
        self._heuristic_cache: dict[tuple, list[Evidence]] = {}
        self.chains = ChainTracker()
        self.sigma = _load_sigma(self.config.sigma_rules)
        self._last_flush = self._last_compact = time.monotonic()
        self._maintenance_lock = threading.Lock()

    # -- public API -------------------------------------------------------------------------------

    def process(self, events: Sequence[ProcessEvent], tenant: str = "default", workload: str = "default",
                *, learn: bool = True, received: float | None = None) -> list[Verdict]:
        """Scores `events` in order, learning each per the policy before the next is scored.

        `received`: when a receiver took the events in. Learning then keeps its time by it (the hold-back's
        recurrence windows, a pattern's first and last seen): an event's own time is the sender's word, and
        three copies of a reverse shell dated an hour apart would otherwise earn it a place in the
        baseline in one request. Without it (replaying a capture), each event's own time counts."""
        if not events:
            return []
        workload = self._admitted(tenant, workload, len(events))
        baseline = self.store.get(tenant, workload)
        holdback = self._holdback(tenant, workload)
        thresholds = self.config.thresholds.for_workload(workload)
        nodes = [self.chains.register(tenant, event) for event in events]  # fills ancestors before keys
        keys = self.featurizer.pattern_keys(events)
        vectors_of = self._vectors_by_key(events, keys)
        incidents: dict[int, Incident] = {}  # verdict index -> incident, to settle the batch's scores
        by_node: dict[int, int] = {}
        with baseline.lock:
            nearest = NearestCache(baseline, {key: vector for key, vector in vectors_of.items()
                                               if key not in baseline.index}, self.config.k)
            verdicts = []
            for event, key, node in zip(events, keys, nodes, strict=True):
                vector = vectors_of[key]
                program = program_of(event)
                model = self._model_score(baseline, key, vector, nearest)
                own = self._own_evidence(event)
                view = self.chains.evaluate(tenant, event, node, own)
                verdict, evidence, novelty = self._verdict(event, key, program, vector, model, baseline, holdback,
                                                           thresholds, workload, view, own)
                incident = self.chains.record(view, verdict.score, evidence, novelty, thresholds.warn,
                                              thresholds.alert)
                if incident is not None:
                    incidents[len(verdicts)] = incident
                    for partner in view.linked_nodes:  # earlier ends of a pipe, writers of its files, in this batch
                        index = by_node.get(id(partner))
                        if index is not None and index not in incidents:
                            incidents[index] = incident
                by_node[id(node)] = len(verdicts)
                if learn:
                    when = self._when(event) if received is None else received
                    self._learn(event, key, program, vector, verdict, evidence, baseline, holdback, when)
                verdicts.append(verdict)
        for index, incident in incidents.items():
            verdicts[index].incident = incident.id
            verdicts[index].incident_score = incident.raised_score()
        self._maybe_maintain()
        return verdicts

    def learn_only(self, events: Sequence[ProcessEvent], tenant: str = "default", workload: str = "default") -> None:
        """Learns every event unconditionally (bootstrapping a baseline from a trusted capture), with the
        behaviours (techniques) its evidence shows, chains included, as scoring would see them."""
        if not events:
            return
        workload = self._admitted(tenant, workload, len(events))
        baseline = self.store.get(tenant, workload)
        nodes = [self.chains.register(tenant, event) for event in events]  # the same ancestors as scoring
        keys = self.featurizer.pattern_keys(events)
        vectors_of = self._vectors_by_key(events, keys)
        with baseline.lock:
            for event, key, node in zip(events, keys, nodes, strict=True):
                own = self._own_evidence(event)
                evidence = self._evidence(event, self.chains.evaluate(tenant, event, node, own), own)
                baseline.learn(key, vectors_of[key], event.command_line, program_of(event), self._when(event),
                               techniques=frozenset(_techniques(evidence)))
        self._maybe_maintain()

    def acknowledge(self, event: ProcessEvent, tenant: str = "default", workload: str = "default", *,
                    persist: bool = True) -> None:
        """A person says this pattern is normal here: learn it now, whatever its score. `persist`: write it to
        LanceDB at once; a caller acknowledging many leaves that to `flush` or `close` (a write each is a new
        table version each: 14 ms and 12 KB)."""
        key = self.featurizer.pattern_keys([event])[0]
        baseline = self.store.get(tenant, workload)
        pending = self._holdback(tenant, workload).release(key)
        times = pending.occurrences if pending else 1
        with baseline.lock:
            vector = self.featurizer.embed([event])[0]
            baseline.learn(key, vector, event.command_line, program_of(event), self._when(event), times=times,
                           techniques=frozenset(_techniques(self._own_evidence(event))))
        if persist:
            self.store.flush_one(baseline)

    def held_back(self, tenant: str, workload: str) -> list[PendingPattern]:
        """The alert-level patterns of a workload waiting to be learned (scoring/policy.py), oldest first."""
        return list(self._holdback(tenant, workload).pending.values())

    def flush(self) -> int:
        with self._maintenance_lock:  # after a background flush under way
            return self.store.flush()

    def _admitted(self, tenant: str, workload: str, events: int) -> str:
        """The workload whose baseline scores these events: their own, or past the tenant's
        `max_workloads_per_tenant` the tenant's OVERFLOW_WORKLOAD (always admitted), counted."""
        if workload == OVERFLOW_WORKLOAD or self.store.admit(tenant, workload):
            return workload
        if not self.overflow_events[tenant] % 1000:
            log.warning("tenant %r has %d baselines (max_workloads_per_tenant): workload %r is scored in %r",
                        tenant, self.config.max_workloads_per_tenant, workload[:80], OVERFLOW_WORKLOAD)
        self.overflow_events[tenant] += events
        self.store.admit(tenant, OVERFLOW_WORKLOAD)
        return OVERFLOW_WORKLOAD

    def maintain(self, now: float | None = None) -> None:
        with self._maintenance_lock:
            self.store.maintain(self.config.retention, now, self.config.version_retention)

    def close(self) -> None:
        self.flush()

    def _vectors_by_key(self, events: Sequence[ProcessEvent], keys: list[str]) -> dict[str, np.ndarray]:
        """Embeds each distinct pattern of the batch once."""
        first: dict[str, int] = {}
        for i, key in enumerate(keys):
            first.setdefault(key, i)
        vectors = self.featurizer.embed([events[i] for i in first.values()])
        return dict(zip(first, vectors, strict=True))

    # -- scoring ----------------------------------------------------------------------------------

    @staticmethod
    def _model_score(baseline: Baseline, key: str, vector: np.ndarray, nearest: NearestCache) -> _ModelScore:
        row = baseline.index.get(key)
        if row is not None:
            count = baseline.counts.item(row)
            return _ModelScore(min(1.0, FREQUENCY_WEIGHT / count), row, 0.0, count, (row,))
        rows, distances = nearest.get(key, vector)  # unseen at the batch's start, so asked then
        # k is small: plain floats beat numpy's per-call cost here (the values are the same float32 distances)
        neighbours = [(row, distance) for row, distance in zip(rows.tolist(), distances.tolist(), strict=True)
                      if row >= 0]
        if not neighbours:
            return _ModelScore(1.0, -1, 1.0, 0)
        counts = baseline.counts
        scores = [min(1.0, 2.0 * distance + FREQUENCY_WEIGHT / counts.item(row)) for row, distance in neighbours]
        best = scores.index(min(scores))  # the first of equal scores
        best_row, best_distance = neighbours[best]
        familiar = max(best_distance, FAMILIAR_DISTANCE)
        near = tuple(row for row, distance in neighbours if distance <= familiar)
        return _ModelScore(scores[best], best_row, best_distance, 0, near)

    def _verdict(self, event: ProcessEvent, key: str, program: str, vector: np.ndarray, model: _ModelScore,
                 baseline: Baseline, holdback: HoldBack, thresholds: Thresholds, workload: str, view: ChainView,
                 own: list[Evidence]) -> tuple[Verdict, list[Evidence], float]:
        """(verdict, the evidence it counted, novelty)."""
        evidence = self._evidence(event, view, own)
        novelty = model.score
        new = _new_behaviour(evidence, baseline, model)
        if new:
            novelty = 1.0
            evidence = [*evidence, Evidence(0.0, f"a behaviour this workload has not shown ({', '.join(new)})")]
        if len(baseline) > 0 and baseline.executable_counts.get(program, 0) == 0:
            novelty = 1.0  # a program never run on this workload is as new as it gets, whatever its arguments
            evidence = [Evidence(NEW_EXECUTABLE_WEIGHT, f"{program} never run on this workload"), *evidence]
        if event.event_name in (LISTEN, CONNECTION) and len(baseline) > 0 and key not in baseline.index:
            evidence = [*evidence, _new_endpoint(event)]
        # Evidence counts in full for what the workload does not know, and is quieted for its routine.
        damping = min(1.0, max(MIN_DAMPING, 2.0 * novelty))
        remaining = 1.0 - NOVELTY_CEILING * novelty
        reasons: list[str] = []
        for item in evidence:
            remaining *= 1.0 - item.weight * damping
            reasons.append(item.labelled())
        score = float(min(1.0, max(0.0, 1.0 - remaining)))
        reasons.append(self._model_reason(model, baseline))
        severity = thresholds.severity(score)
        if key in holdback.pending:
            reasons.append(holdback.progress(key))
        if baseline.events_learned < self.config.learning.warmup_events:
            reasons.append(f"workload in warm-up ({baseline.events_learned}/"
                           f"{self.config.learning.warmup_events} events learned)")
            heuristic_only = 1.0 - float(np.prod([1.0 - e.weight for e in evidence])) if evidence else 0.0
            if severity == "alert" and thresholds.severity(heuristic_only) != "alert":
                severity = "warn"
        nearest = baseline.examples[model.nearest_row] if model.nearest_row >= 0 else ""
        techniques = _techniques(evidence)
        verdict = Verdict(score, severity, reasons, workload, nearest, self.featurizer.name, vector, techniques)
        return verdict, evidence, novelty

    def _evidence(self, event: ProcessEvent, view: ChainView, own: list[Evidence]) -> list[Evidence]:
        """The event's own evidence (cached by what it depends on), raised where people do not type, plus the
        chain's; one item per technique (the strongest), so one act is not counted twice."""
        if not own and not view.evidence and self.sigma is None:
            return []  # most execs
        if self.sigma is not None:
            own = [*own, *self._sigma_evidence(event, view)]
        lineage = view.node.lineage
        if lineage.kind:
            own = [_untyped(item, lineage.origin) for item in own]
        merged: dict[str, Evidence] = {}
        plain: list[Evidence] = []
        for item in [*own, *view.evidence]:
            if not item.technique:
                plain.append(item)
            elif item.technique not in merged or merged[item.technique].weight < item.weight:
                merged[item.technique] = item
        return sorted([*merged.values(), *plain], key=lambda e: -e.weight)

    def _sigma_evidence(self, event: ProcessEvent, view: ChainView) -> list[Evidence]:
        matches = self.sigma.match(event, self.chains.parent_command_line(view)) if self.sigma else []
        return [Evidence(m.weight, f"Sigma rule: {m.title} ({m.level})", m.techniques[0] if m.techniques else "")
                for m in matches]

    def _own_evidence(self, event: ProcessEvent) -> list[Evidence]:
        cache_key = (event.command_line, event.executable_name, event.parent_name, event.ancestors[:4],
                     event.executable_path, event.working_directory, event.user_id == 0, event.executable_deleted,
                     (event.cpu_percent or 0) >= 80, event.event_name, event.local_port, event.remote_address,
                     event.remote_port)
        found = self._heuristic_cache.get(cache_key)
        if found is None:
            if len(self._heuristic_cache) > _HEURISTIC_CACHE_LIMIT:
                self._heuristic_cache.clear()
            found = self._heuristic_cache[cache_key] = assess(event)
        return found

    @staticmethod
    def _model_reason(model: _ModelScore, baseline: Baseline) -> str:
        if model.nearest_row < 0:
            return "nothing like it seen on this workload" if len(baseline) else "no history for this workload yet"
        if model.known_count:
            return f"seen {model.known_count} times on this workload"
        if model.score >= 0.6:
            return f"new on this workload (nearest normal pattern at distance {model.distance:.2f})"
        count = int(baseline.counts[model.nearest_row])
        return f"close to a known pattern (distance {model.distance:.2f}, seen {count} times)"

    # -- learning ---------------------------------------------------------------------------------

    def _learn(self, event: ProcessEvent, key: str, program: str, vector: np.ndarray, verdict: Verdict,
               evidence: list[Evidence], baseline: Baseline, holdback: HoldBack, when: float) -> None:
        if key in holdback.pending or verdict.severity == "alert":
            earned = holdback.observe(key, when, event.command_line, program, vector, frozenset(verdict.techniques))
            if earned is not None:
                baseline.learn(key, vector, earned.example, earned.executable, when, times=earned.occurrences,
                               techniques=earned.techniques)
            return
        # A warn-level or suspicious pattern is learned provisionally: its own repeats score low at once,
        # but it vouches for similar commands only once it recurs in a later time window. Otherwise one
        # quiet `sudo x` would make every later `sudo y` look familiar.
        row = baseline.index.get(key)
        recurring = row is not None and when - baseline.first_seen.item(row) >= self.config.learning.recurrence_window
        suspicious = any(e.weight >= SUSPICIOUS_WEIGHT for e in evidence)
        trusted = (verdict.severity == "none" and not suspicious) or recurring
        baseline.learn(key, vector, event.command_line, program, when, trusted=trusted,
                       techniques=frozenset(verdict.techniques))

    def _holdback(self, tenant: str, workload: str) -> HoldBack:
        key = (tenant, workload)
        holdback = self._holdbacks.get(key)
        if holdback is None:
            learning = self.config.learning
            holdback = self._holdbacks[key] = HoldBack(learning.recurrence_windows, learning.recurrence_window)
        return holdback

    @staticmethod
    def _when(event: ProcessEvent) -> float:
        return event.timestamp if event.timestamp > 0 else time.time()

    def _maybe_maintain(self) -> None:
        """Every flush_interval, writes what was learned (and every compact_interval compacts) in a thread of its
        own: LanceDB writes without the GIL, so the batch that comes due does not wait for them (20 to 50 ms for
        the bench's three workloads)."""
        now = time.monotonic()
        if now - self._last_flush < self.config.flush_interval:
            return
        if not self._maintenance_lock.acquire(blocking=False):
            return  # the last one is still writing
        self._last_flush = now
        compact = now - self._last_compact >= self.config.compact_interval
        if compact:
            self._last_compact = now
        threading.Thread(target=self._maintain_held, args=(compact,), name="baseline-flush", daemon=True).start()

    def _maintain_held(self, compact: bool) -> None:
        """The maintenance `_maybe_maintain` started, with the maintenance lock held (released here)."""
        try:
            self.store.flush(exact=False)
            if compact:
                self.store.maintain(self.config.retention, None, self.config.version_retention)
        except Exception:  # the rows stay dirty: the next flush writes them
            log.exception("writing learned patterns to LanceDB failed")
        finally:
            self._maintenance_lock.release()
