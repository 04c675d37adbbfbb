"""The layers import only downward, and the receiver's service knows no component by module.

    core                      standard library and third-party packages only
    scoring                   core
    otel_agent, otlp_receiver core, scoring (never each other)
    procsight, tests, bench   anything (the command, end-to-end tests, benchmarks)
    testing                   core (the shared test helpers)
    setup.py                  none of them (it builds the C extensions)

Tests inside a part (`<part>/.../tests/`) follow their part's rule and may also use `testing`. Every
import statement counts, also one inside a function. Within `otlp_receiver`, the service's own modules
(the pipeline, the service, its config, the shared types) never import a component package: they find
components through the registry and use them by capability.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PARTS = ("core", "scoring", "otel_agent", "otlp_receiver", "procsight", "testing")
EVERYTHING = frozenset(PARTS)
MAY_IMPORT = {
    "core": frozenset({"core"}),
    "scoring": frozenset({"core", "scoring"}),
    "otel_agent": frozenset({"core", "scoring", "otel_agent"}),
    "otlp_receiver": frozenset({"core", "scoring", "otlp_receiver"}),
    "testing": frozenset({"core", "testing"}),
    "procsight": EVERYTHING,
    "tests": EVERYTHING,
    "bench": EVERYTHING,
    "setup.py": frozenset(),
}
COMPONENT_PACKAGES = tuple(f"otlp_receiver.{kind}" for kind in ("receivers", "processors", "exporters", "extensions"))
SERVICE_MODULES = {f"otlp_receiver/{name}.py" for name in
                   ("component", "config", "pipeline", "registry", "service", "spool", "telemetry", "cli")}
SKIPPED = {".venv", "node_modules", ".git"}


def imported_modules(source: str, package: str) -> list[tuple[int, str]]:
    """(line, module) of every import in `source`; relative imports resolved against `package`."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                found.append((node.lineno, ".".join([*base, node.module] if node.module else base)))
            else:
                found.append((node.lineno, node.module or ""))
    return found


def violations(relative: str, source: str) -> list[str]:
    """What the file at `relative` (a path below the repository root) imports against the rules."""
    parts = Path(relative).parts
    allowed = MAY_IMPORT.get(parts[0])
    if allowed is None:
        return [f"{relative}: not in a known layer ({', '.join(MAY_IMPORT)})"]
    if "tests" in parts[1:-1]:
        allowed = allowed | {"testing"}
    package = ".".join(Path(relative).with_suffix("").parts[:-1])
    found = []
    for line, module in imported_modules(source, package):
        top = module.split(".")[0]
        if top in EVERYTHING and top not in allowed:
            found.append(f"{relative}:{line}: {parts[0]} must not import {module}")
        if relative in SERVICE_MODULES and module.startswith(COMPONENT_PACKAGES):
            found.append(f"{relative}:{line}: the service must not import the component {module}")
    return found


def python_files() -> list[Path]:
    return sorted(p for p in ROOT.rglob("*.py") if not SKIPPED & set(p.relative_to(ROOT).parts))


def test_every_import_in_the_tree_goes_downward() -> None:
    files = python_files()
    assert len(files) > 150  # the walk really found the tree
    found = [v for path in files for v in violations(str(path.relative_to(ROOT)), path.read_text(encoding="utf-8"))]
    assert found == []


@pytest.mark.parametrize(("relative", "source"), [
    ("core/confmap.py", "import scoring.engine"),
    ("scoring/engine.py", "def f():\n    from otlp_receiver.component import LogBatch"),
    ("otel_agent/agent.py", "from otlp_receiver import service"),
    ("otlp_receiver/pipeline.py", "from otel_agent.agent import Agent"),
    ("otlp_receiver/service.py", "from otlp_receiver.receivers.otlp.receiver import OtlpReceiver"),
    ("otlp_receiver/pipeline.py", "from .receivers.otlp import decode"),
    ("testing/otlp_sink.py", "import otlp_receiver"),
    ("otlp_receiver/query/tests/test_x.py", "from procsight.cli import main"),
    ("scripts/tool.py", "import os"),
])
def test_a_planted_violation_is_caught(relative: str, source: str) -> None:
    assert violations(relative, source)


@pytest.mark.parametrize(("relative", "source"), [
    ("otel_agent/hostscan.py", "from scoring.heuristics import assess"),
    ("otel_agent/tests/test_x.py", "from testing.otlp_sink import OtlpSink"),
    ("otlp_receiver/extensions/query/config.py", "from otlp_receiver.processors.anomaly.config import Config"),
    ("procsight/run.py", "def f():\n    from otel_agent.agent import create_agent"),
    ("core/semconv.py", "from core.event import ProcessEvent\nimport numpy"),
])
def test_what_the_rules_allow_passes(relative: str, source: str) -> None:
    assert violations(relative, source) == []
