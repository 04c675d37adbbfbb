"""Self-telemetry: counters, gauges and histograms rendered as Prometheus text for `/metrics`.

Deliberately tiny (no client library): the receiver exposes a few dozen series, and every component
gets the registry through `CreateSettings.telemetry`. Metric names follow Prometheus conventions with
the `procsight_` prefix; label values are escaped, so hostile tenant or workload names cannot break
the exposition format.
"""

from __future__ import annotations

import bisect
import threading
from collections.abc import Sequence
from typing import TypeVar

LabelKey = tuple[tuple[str, str], ...]
M = TypeVar("M", bound="_Metric")

DEFAULT_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


def _label_key(labels: dict[str, object]) -> LabelKey:
    return tuple(sorted((name, str(value)) for name, value in labels.items()))


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _format_labels(key: LabelKey, extra: tuple[tuple[str, str], ...] = ()) -> str:
    pairs = key + extra
    if not pairs:
        return ""
    return "{" + ",".join(f'{name}="{_escape(value)}"' for name, value in pairs) + "}"


class _Metric:
    kind = ""

    def render(self) -> list[str]:
        raise NotImplementedError

    def __init__(self, name: str, help_text: str) -> None:
        self.name = name
        self.help_text = help_text
        self._lock = threading.Lock()

    def header(self) -> list[str]:
        return [f"# HELP {self.name} {self.help_text}", f"# TYPE {self.name} {self.kind}"]


class Counter(_Metric):
    kind = "counter"

    def __init__(self, name: str, help_text: str) -> None:
        super().__init__(name, help_text)
        self._values: dict[LabelKey, float] = {}

    def inc(self, amount: float = 1.0, **labels: object) -> None:
        key = _label_key(labels)
        with self._lock:
            self._values[key] = self._values.get(key, 0.0) + amount

    def value(self, **labels: object) -> float:
        return self._values.get(_label_key(labels), 0.0)

    def total(self) -> float:
        return sum(self._values.values())

    def render(self) -> list[str]:
        with self._lock:
            items = sorted(self._values.items())
        return self.header() + [f"{self.name}{_format_labels(k)} {_number(v)}" for k, v in items]


def _number(value: float) -> str:
    """A sample value in full: `:g` keeps six digits, so a counter past a million stopped showing small steps."""
    if isinstance(value, int):  # a gauge set to an int (Python 3.11's int has no is_integer)
        return str(value)
    if value != value or value in (float("inf"), float("-inf")):
        return "NaN" if value != value else "+Inf" if value > 0 else "-Inf"
    return str(int(value)) if value.is_integer() and abs(value) < 2**53 else repr(value)


class Gauge(Counter):
    kind = "gauge"

    def set(self, value: float, **labels: object) -> None:
        with self._lock:
            self._values[_label_key(labels)] = value


class Histogram(_Metric):
    kind = "histogram"

    def __init__(self, name: str, help_text: str, buckets: Sequence[float] = DEFAULT_BUCKETS) -> None:
        super().__init__(name, help_text)
        self.buckets = tuple(sorted(buckets))
        self._series: dict[LabelKey, tuple[list[int], list[float]]] = {}

    def observe(self, value: float, **labels: object) -> None:
        key = _label_key(labels)
        with self._lock:
            counts, sums = self._series.setdefault(key, ([0] * (len(self.buckets) + 1), [0.0]))
            counts[bisect.bisect_left(self.buckets, value)] += 1
            sums[0] += value

    def count(self, **labels: object) -> int:
        series = self._series.get(_label_key(labels))
        return sum(series[0]) if series else 0

    def render(self) -> list[str]:
        lines = self.header()
        with self._lock:
            items = sorted((k, (list(c), s[0])) for k, (c, s) in self._series.items())
        for key, (counts, total) in items:
            cumulative = 0
            for bound, count in zip((*self.buckets, float("inf")), counts, strict=True):
                cumulative += count
                le = "+Inf" if bound == float("inf") else f"{bound:g}"
                lines.append(f"{self.name}_bucket{_format_labels(key, (('le', le),))} {cumulative}")
            lines.append(f"{self.name}_sum{_format_labels(key)} {_number(total)}")
            lines.append(f"{self.name}_count{_format_labels(key)} {cumulative}")
        return lines


class Telemetry:
    """The registry. Asking twice for the same name returns the same metric."""

    def __init__(self) -> None:
        self._metrics: dict[str, _Metric] = {}
        self._lock = threading.Lock()

    def counter(self, name: str, help_text: str) -> Counter:
        return self._get(Counter, name, help_text)

    def gauge(self, name: str, help_text: str) -> Gauge:
        return self._get(Gauge, name, help_text)

    def histogram(self, name: str, help_text: str, buckets: Sequence[float] = DEFAULT_BUCKETS) -> Histogram:
        with self._lock:
            metric = self._metrics.get(name)
            if metric is None:
                metric = self._metrics[name] = Histogram(name, help_text, buckets)
        if not isinstance(metric, Histogram):
            raise TypeError(f"metric {name} is a {metric.kind}, not a histogram")
        return metric

    def _get(self, cls: type[M], name: str, help_text: str) -> M:
        with self._lock:
            metric = self._metrics.get(name)
            if metric is None:
                metric = self._metrics[name] = cls(name, help_text)
        if type(metric) is not cls:
            raise TypeError(f"metric {name} is a {metric.kind}, not a {cls.kind}")
        return metric  # type: ignore[return-value]  # its type was checked just above

    def render(self) -> str:
        with self._lock:
            metrics = sorted(self._metrics.values(), key=lambda m: m.name)
        lines: list[str] = []
        for metric in metrics:
            lines.extend(metric.render())
        return "\n".join(lines) + "\n"
