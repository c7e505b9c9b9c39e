"""Prometheus metrics of one platform (its own registry, so tests can run several platforms)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

DURATION_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


class _PoolCollector(Collector):
    """Reads pool sizes from the runtime's status at scrape time."""

    def __init__(self, status: Callable[[], Mapping[str, Any]]) -> None:
        self._status = status

    def collect(self) -> Any:
        totals = self._status().get("totals", {})
        for key in ("zygotes", "workers_warm", "workers_busy"):
            gauge = GaugeMetricFamily(f"ondo_pool_{key}", f"Runtime pool: {key.replace('_', ' ')}")
            gauge.add_metric([], float(totals.get(key, 0)))
            yield gauge


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        labels = ["namespace", "function"]
        self.invocations = Counter(
            "ondo_invocations",
            "Function invocations finished",
            [*labels, "status"],
            registry=self.registry,
        )
        self.errors = Counter(
            "ondo_invocation_errors",
            "Invocations that did not succeed",
            labels,
            registry=self.registry,
        )
        self.cold_starts = Counter(
            "ondo_cold_starts",
            "Invocations that needed a new worker",
            labels,
            registry=self.registry,
        )
        self.duration = Histogram(
            "ondo_invocation_duration_seconds",
            "Handler duration",
            labels,
            buckets=DURATION_BUCKETS,
            registry=self.registry,
        )
        self.events = Counter(
            "ondo_events_ingested",
            "New events appended to the bus (duplicates not counted): ingested over HTTP,"
            " emitted by rules, destination events",
            ["namespace"],
            registry=self.registry,
        )
        self._functions: dict[tuple[str, str], FunctionMetrics] = {}

    def of_function(self, namespace: str, function: str) -> FunctionMetrics:
        """The labelled series of one function, looked up once (labels() costs per call)."""
        key = (namespace, function)
        found = self._functions.get(key)
        if found is None:
            found = self._functions[key] = FunctionMetrics(self, namespace, function)
        return found

    def events_appended(self, namespace: str, new: int) -> None:
        """Count events appended to the bus; every caller of `bus.append` reports here."""
        if new:
            self.events.labels(namespace).inc(new)

    def watch_pool(self, status: Callable[[], Mapping[str, Any]]) -> None:
        self.registry.register(_PoolCollector(status))

    def render(self) -> bytes:
        return generate_latest(self.registry)


class FunctionMetrics:
    """One function's counters and histogram, already labelled."""

    def __init__(self, metrics: Metrics, namespace: str, function: str) -> None:
        self._invocations = metrics.invocations
        self._labels = (namespace, function)
        self._by_status: dict[str, Any] = {}
        self.duration = metrics.duration.labels(namespace, function)
        self.errors = metrics.errors.labels(namespace, function)
        self.cold_starts = metrics.cold_starts.labels(namespace, function)

    def invocations(self, status: str) -> Any:
        found = self._by_status.get(status)
        if found is None:
            found = self._by_status[status] = self._invocations.labels(*self._labels, status)
        return found
