"""Detection quality on the evaluation data: the reference kNN, heuristics alone, procsight's default.

Single commands: for each benign workload, learn on the first half in time order; then score the second
half in order, with that workload's GTFOBins attacks spread evenly through it (re-timed into the stream, as
the evaluation data's own README asks). Scoring learns as it goes, each method by its own policy. Prints
ROC-AUC, detection rate at fixed false-positive rates, and alert-level precision/recall, side by side.

Chains (incidents): each captured intrusion scenario (chains_dev.jsonl: a second capture of its workload
with the attack inside) is scored in capture order against a baseline learned on the workload's benign
capture, followed by legitimate new activity of that workload (bench/legit_activity.py). Per scenario:
whether it alerted, at which of its attack events first, and how many incidents its attack events fell
into; overall, the share of benign events (the scenario's own and the new activity) at alert.

The evaluation data (real benign traces of three workloads, GTFOBins attack command lines) is not in
the repository: it is read from --eval-dir, by default shared/eval beside the repository (CI has it).

    .venv/bin/python bench/detect.py [--eval-dir DIR]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

# Run as a script, bench/ comes first on sys.path, where bench/scoring.py would shadow the scoring package.
sys.path = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository root, for bench.legit_activity

import numpy as np  # noqa: E402

from bench.legit_activity import for_workload  # noqa: E402
from core.event import ProcessEvent  # noqa: E402
from core.semconv import event_from_attributes  # noqa: E402
from scoring.config import EngineConfig  # noqa: E402
from scoring.engine import AnomalyEngine  # noqa: E402
from scoring.featurizer import get_embedder  # noqa: E402
from scoring.heuristics import assess  # noqa: E402

WORKLOADS = ("ci", "web", "admin")
FPR_POINTS = (0.001, 0.005, 0.01, 0.05)


@dataclass(slots=True)
class Sample:
    event: ProcessEvent
    workload: str
    attack: bool
    technique: str


def load(eval_dir: Path) -> tuple[dict[str, list[Sample]], dict[str, list[Sample]]]:
    """(training events per workload, test stream per workload with attacks placed in)."""
    attacks: dict[str, list[Sample]] = {w: [] for w in WORKLOADS}
    for line in (eval_dir / "gtfobins_attacks.jsonl").open():
        raw = json.loads(line)
        attacks.setdefault(raw["workload"], []).append(
            Sample(event_from_attributes(raw), raw["workload"], True, raw.get("technique") or ""))
    train: dict[str, list[Sample]] = {}
    test: dict[str, list[Sample]] = {}
    for workload in WORKLOADS:
        rows = [json.loads(line) for line in (eval_dir / f"benign_{workload}.jsonl").open()]
        samples = [Sample(event_from_attributes(r), workload, False, "") for r in rows]
        half = len(samples) // 2
        train[workload] = samples[:half]
        test[workload] = _interleave(samples[half:], attacks.get(workload, []))
    return train, test


def _interleave(benign: list[Sample], attacks: list[Sample]) -> list[Sample]:
    """Spreads attacks evenly through the benign stream, each taking its neighbour's timestamp."""
    step = len(benign) / (len(attacks) + 1)
    due: dict[int, list[Sample]] = {}
    for i, attack in enumerate(attacks):
        due.setdefault(min(len(benign) - 1, int(step * (i + 1))), []).append(attack)
    stream: list[Sample] = []
    for i, sample in enumerate(benign):
        for attack in due.get(i, []):
            attack.event.timestamp = sample.event.timestamp
            stream.append(attack)
        stream.append(sample)
    return stream


Scorer = Callable[[dict[str, list[Sample]], dict[str, list[Sample]]], tuple[np.ndarray, np.ndarray]]


def reference_knn(train: dict[str, list[Sample]], test: dict[str, list[Sample]]) -> tuple[np.ndarray, np.ndarray]:
    """The reference kNN (scoring/README.md): hash128-v1, score min(1, 2 * nearest cosine distance), learn every
    event."""
    embedder = get_embedder("hash128-v1")
    scores, labels = [], []
    for workload in WORKLOADS:
        memory = list(embedder.embed([s.event for s in train[workload]]))
        for sample in test[workload]:
            vector = embedder.embed([sample.event])[0]
            nearest = 1.0 - float(np.max(np.stack(memory) @ vector)) if memory else 1.0
            scores.append(min(1.0, 2.0 * max(0.0, nearest)))
            labels.append(sample.attack)
            memory.append(vector)
    return np.array(scores), np.array(labels)


def heuristics_only(train: dict[str, list[Sample]], test: dict[str, list[Sample]]) -> tuple[np.ndarray, np.ndarray]:
    """The heuristics alone (scoring/heuristics.py), combined by noisy-OR; no baseline."""
    scores, labels = [], []
    for workload in WORKLOADS:
        for sample in test[workload]:
            remaining = 1.0
            for evidence in assess(sample.event):
                remaining *= 1.0 - evidence.weight
            scores.append(1.0 - remaining)
            labels.append(sample.attack)
    return np.array(scores), np.array(labels)


SIGMA_RULES = Path(__file__).resolve().parents[2] / "shared" / "reference" / "sigma" / "rules" / "linux" / \
    "process_creation"


def sigmahq_scores(events: list[ProcessEvent]) -> tuple[np.ndarray, np.ndarray]:
    """SigmaHQ's Linux process_creation rules through scoring/sigma.py: (noisy-OR of the matches' level
    weights, whether a rule of level medium or higher matched: the anchor's alert)."""
    from scoring.sigma import SigmaRules, level_at_least

    rules = SigmaRules.load(SIGMA_RULES)
    scores, flags = [], []
    for event in events:
        matches = rules.match(event)
        scores.append(1.0 - float(np.prod([1.0 - m.weight for m in matches])) if matches else 0.0)
        flags.append(any(level_at_least(m.level, "medium") for m in matches))
    return np.array(scores), np.array(flags)


def procsight_default(train: dict[str, list[Sample]], test: dict[str, list[Sample]],
                      model: str = "hash128-v2") -> tuple[np.ndarray, np.ndarray, list[str]]:
    with tempfile.TemporaryDirectory() as directory:
        engine = AnomalyEngine(EngineConfig(baselines=directory, model=model))
        scores, labels, severities = [], [], []
        for workload in WORKLOADS:
            engine.learn_only([s.event for s in train[workload]], workload=workload)
            for sample in test[workload]:  # one at a time: each scored event is learned before the next
                verdict = engine.process([sample.event], workload=workload)[0]
                scores.append(verdict.score)
                labels.append(sample.attack)
                severities.append(verdict.severity)
        engine.close()
    return np.array(scores), np.array(labels), severities


def roc_auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Probability that a random attack outscores a random benign event (ties count half)."""
    positives, negatives = scores[labels], scores[~labels]
    greater = (positives[:, None] > negatives[None, :]).sum()
    ties = (positives[:, None] == negatives[None, :]).sum()
    return float((greater + 0.5 * ties) / (len(positives) * len(negatives)))


def detection_at_fpr(scores: np.ndarray, labels: np.ndarray, fpr: float) -> float:
    """Share of attacks scoring strictly above the benign score that only `fpr` of benign events exceed."""
    benign = np.sort(scores[~labels])[::-1]
    allowed = int(np.floor(fpr * len(benign)))
    threshold = benign[allowed] if allowed < len(benign) else -np.inf
    return float((scores[labels] > threshold).mean())


def alert_metrics(flags: np.ndarray, labels: np.ndarray) -> tuple[float, float, float]:
    """(precision, recall, benign alert rate) of a boolean alert decision."""
    true_positive = int((flags & labels).sum())
    precision = true_positive / max(1, int(flags.sum()))
    recall = true_positive / max(1, int(labels.sum()))
    return precision, recall, float(flags[~labels].mean())


# -- chains --------------------------------------------------------------------------------------------


@dataclass(slots=True)
class ChainOutcome:
    scenario: str
    workload: str
    attacks: int
    first_alert: int | None  # 1-based index among the scenario's attack events
    incidents: int  # distinct incident ids among its attack events (0: none grouped)
    grouped: int  # attack events that belong to an incident
    benign: int
    benign_alerts: int
    legit_alerts: int  # of which in the legitimate new activity


ChainScorer = Callable[[str, list[dict], list[dict]], list[tuple[str, str]]]  # -> (severity, incident) per event


def chain_streams(eval_dir: Path) -> dict[str, tuple[str, list[dict]]]:
    """scenario -> (workload, its capture in time order followed by the workload's legitimate new activity)."""
    scenarios: dict[str, list[dict]] = {}
    for line in (eval_dir / "chains_dev.jsonl").open():
        raw = json.loads(line)
        scenarios.setdefault(raw["scenario"], []).append(raw)
    streams = {}
    for name, rows in sorted(scenarios.items()):
        rows.sort(key=lambda r: r["ts"])
        workload = rows[0]["workload"]
        streams[name] = (workload, rows + for_workload(workload, after=rows[-1]["ts"]))
    return streams


def procsight_chains(workload: str, training: list[dict], stream: list[dict]) -> list[tuple[str, str]]:
    with tempfile.TemporaryDirectory() as directory:
        engine = AnomalyEngine(EngineConfig(baselines=directory))
        engine.learn_only([event_from_attributes(r) for r in training], workload=workload)
        verdicts = [engine.process([event_from_attributes(r)], workload=workload)[0] for r in stream]
        engine.close()
    return [(v.severity, v.incident) for v in verdicts]


def reference_chains(workload: str, training: list[dict], stream: list[dict]) -> list[tuple[str, str]]:
    """The reference kNN, learning every event, alerting at the default alert threshold; no incidents."""
    embedder = get_embedder("hash128-v1")
    alert_at = EngineConfig().thresholds.default.alert
    memory = embedder.embed([event_from_attributes(r) for r in training])
    found = []
    for raw in stream:
        vector = embedder.embed([event_from_attributes(raw)])[0]
        score = min(1.0, 2.0 * max(0.0, 1.0 - float(np.max(memory @ vector))))
        found.append(("alert" if score >= alert_at else "none", ""))
        memory = np.vstack([memory, vector[None, :]])
    return found


def sigmahq_chains(workload: str, training: list[dict], stream: list[dict]) -> list[tuple[str, str]]:
    _, flags = sigmahq_scores([event_from_attributes(r) for r in stream])
    return [("alert" if flag else "none", "") for flag in flags]


def measure_chains(eval_dir: Path, scorer: ChainScorer) -> list[ChainOutcome]:
    outcomes = []
    for scenario, (workload, stream) in chain_streams(eval_dir).items():
        training = [json.loads(line) for line in (eval_dir / f"benign_{workload}.jsonl").open()]
        verdicts = scorer(workload, training, stream)
        attacks = [v for raw, v in zip(stream, verdicts, strict=True) if raw["label"] == "attack"]
        benign = [(raw, v) for raw, v in zip(stream, verdicts, strict=True) if raw["label"] != "attack"]
        first = next((i + 1 for i, (severity, _) in enumerate(attacks) if severity == "alert"), None)
        outcomes.append(ChainOutcome(
            scenario, workload, len(attacks), first, len({i for _, i in attacks if i}),
            sum(bool(i) for _, i in attacks), len(benign),
            sum(v[0] == "alert" for _, v in benign),
            sum(v[0] == "alert" for raw, v in benign if raw["source"].startswith("legit:"))))
    return outcomes


def print_chains(name: str, outcomes: list[ChainOutcome]) -> None:
    print(f"\n{name}")
    print(f"  {'scenario':22} {'attack events':>13} {'first alert at':>14} {'incidents':>9} {'in one':>7} "
          f"{'benign alerts':>14}")
    for o in outcomes:
        first = "never" if o.first_alert is None else f"event {o.first_alert}"
        grouped = f"{o.grouped}/{o.attacks}"
        print(f"  {o.scenario:22} {o.attacks:13} {first:>14} {o.incidents:9} {grouped:>7} "
              f"{o.benign_alerts:8}/{o.benign:<5}")
    alerted = sum(o.first_alert is not None for o in outcomes)
    early = sum(o.first_alert is not None and o.first_alert <= 3 for o in outcomes)
    benign = sum(o.benign for o in outcomes)
    false = sum(o.benign_alerts for o in outcomes)
    legit = sum(o.legit_alerts for o in outcomes)
    print(f"  scenarios alerted {alerted}/{len(outcomes)}, within their first 3 attack events {early}/{len(outcomes)}; "
          f"benign events at alert {false}/{benign} = {false / max(1, benign):.2%} "
          f"({legit} of them in the legitimate new activity)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--eval-dir", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "eval")
    parser.add_argument("--show-misses", type=int, default=0, help="print the N lowest-scoring attacks and "
                        "highest-scoring benign events of the default method")
    args = parser.parse_args()
    if not (args.eval_dir / "gtfobins_attacks.jsonl").exists():
        sys.exit(f"bench/detect.py measures on the evaluation data, and {args.eval_dir} has none: put shared/eval "
                 "beside the repository (CI does) or pass --eval-dir DIR")
    alert_at = EngineConfig().thresholds.default.alert

    train, test = load(args.eval_dir)
    n_attacks = sum(s.attack for w in WORKLOADS for s in test[w])
    n_benign = sum(not s.attack for w in WORKLOADS for s in test[w])
    print(f"eval: {sum(len(v) for v in train.values())} training events, test stream of {n_benign} benign "
          f"+ {n_attacks} attacks (alert threshold {alert_at})")

    results: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
    scores, labels = reference_knn(train, test)
    results["reference kNN (hash128-v1)"] = (scores, labels, scores >= alert_at)
    scores, labels = heuristics_only(train, test)
    results["heuristics only"] = (scores, labels, scores >= alert_at)
    if SIGMA_RULES.is_dir():
        stream = [s for w in WORKLOADS for s in test[w]]
        scores, flags = sigmahq_scores([s.event for s in stream])
        results["SigmaHQ rules (>= medium)"] = (scores, np.array([s.attack for s in stream]), flags)
    train, test = load(args.eval_dir)  # fresh events: the reference run re-timed nothing, but be safe
    scores, labels, severities = procsight_default(train, test)
    results["procsight default (hash128-v2)"] = (scores, labels, np.array([s == "alert" for s in severities]))

    header = f"{'method':34} {'ROC-AUC':>8} " + " ".join(f"{'det@' + format(p, '.1%'):>10}" for p in FPR_POINTS)
    header += f" {'alert prec':>10} {'alert rec':>10} {'benign alerts':>13}"
    print(header)
    for name, (scores, labels, flags) in results.items():
        precision, recall, benign_rate = alert_metrics(flags, labels)
        row = f"{name:34} {roc_auc(scores, labels):8.4f} "
        row += " ".join(f"{detection_at_fpr(scores, labels, p):10.1%}" for p in FPR_POINTS)
        row += f" {precision:10.1%} {recall:10.1%} {benign_rate:13.2%}"
        print(row)
    reference = results["reference kNN (hash128-v1)"]
    ours = results["procsight default (hash128-v2)"]
    better = all(detection_at_fpr(ours[0], ours[1], p) >= detection_at_fpr(reference[0], reference[1], p)
                 for p in FPR_POINTS)
    print(f"procsight >= reference kNN at every operating point above: {better}")

    if not SIGMA_RULES.is_dir():
        print(f"SigmaHQ rules not measured: {SIGMA_RULES} is absent")
    if (args.eval_dir / "chains_dev.jsonl").exists():
        print_chains("chains (incidents), procsight default", measure_chains(args.eval_dir, procsight_chains))
        print_chains("chains, reference kNN (alert at 0.75)", measure_chains(args.eval_dir, reference_chains))
        if SIGMA_RULES.is_dir():
            print_chains("chains, SigmaHQ rules (a rule of level medium or higher)",
                         measure_chains(args.eval_dir, sigmahq_chains))
    else:
        print(f"\nchains not measured: {args.eval_dir / 'chains_dev.jsonl'} is absent")

    if args.show_misses:
        scores, labels, _ = ours
        stream = [s for w in WORKLOADS for s in test[w]]
        order = np.argsort(scores)
        print("\nlowest-scoring attacks:")
        for i in [i for i in order if labels[i]][: args.show_misses]:
            print(f"  {scores[i]:.3f} [{stream[i].workload}/{stream[i].event.parent_name}] "
                  f"{stream[i].event.command_line[:100]!r}")
        print("highest-scoring benign:")
        for i in [i for i in order[::-1] if not labels[i]][: args.show_misses]:
            print(f"  {scores[i]:.3f} [{stream[i].workload}/{stream[i].event.parent_name}] "
                  f"{stream[i].event.command_line[:100]!r}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
