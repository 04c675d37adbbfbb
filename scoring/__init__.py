"""The scoring engine: feature hashing, per-workload LanceDB baselines, heuristics, explained scores.

Knows nothing of OTLP or gRPC: it takes `core.event.ProcessEvent`s and returns `Verdict`s. Import from
the modules (`scoring.engine.AnomalyEngine`, `scoring.config.EngineConfig`, ...): only `scoring.engine`
and `scoring.baseline` load LanceDB, so the host scan's `scoring.heuristics` stays light.
"""
