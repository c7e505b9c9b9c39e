"""The action queue's Prometheus metrics: counters of attempts, and gauges of the queue's state.

Collectors cannot await a store, so the gauges show a snapshot of `QueueStats` that the queue
refreshes in the background (`ActionMetrics.stats`), at most a few seconds old.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import Any

from prometheus_client import CollectorRegistry, Counter
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from ondo.backends.store.repositories.actions import EMPTY_STATS, QueueStats


class _QueueCollector(Collector):
    """The queue's state, from the last snapshot of its stats."""

    def __init__(self, metrics: ActionMetrics, now: Callable[[], float]) -> None:
        self._metrics = metrics
        self._now = now
        self._functions: set[tuple[str, str]] = set()  # seen once: reported as 0 after

    def collect(self) -> Any:
        stats = self._metrics.stats
        jobs = GaugeMetricFamily(
            "ondo_action_jobs", "Action jobs by status (dead: the DLQ)", labels=["status"]
        )
        for status, count in stats.counts.items():
            jobs.add_metric([status], float(count))
        oldest = stats.oldest_pending_created_at
        age = GaugeMetricFamily(
            "ondo_action_jobs_oldest_pending_age_seconds",
            "Age of the oldest pending action job (0 when none)",
        )
        age.add_metric([], max(0.0, self._now() - oldest) if oldest is not None else 0.0)
        yield jobs
        yield age
        yield self._backlog(stats.async_backlog)

    def _backlog(self, backlog: dict[tuple[str, str], int]) -> GaugeMetricFamily:
        self._functions.update(backlog)
        family = GaugeMetricFamily(
            "ondo_async_backlog",
            "Async invocations accepted and not finished (pending or running), per function",
            labels=["namespace", "function"],
        )
        for key in sorted(self._functions):
            family.add_metric(list(key), float(backlog.get(key, 0)))
        return family


class ActionMetrics:
    @staticmethod
    def of(registry: CollectorRegistry, now: Callable[[], float]) -> ActionMetrics:
        """One set per registry: a second queue on the same platform (tests) shares it."""
        found = _METRICS.get(registry)
        if found is None:
            found = _METRICS[registry] = ActionMetrics(registry)
            registry.register(_QueueCollector(found, now))
        return found

    def __init__(self, registry: CollectorRegistry) -> None:
        self.stats: QueueStats = EMPTY_STATS  # the last snapshot (the queue refreshes it)
        self.performed = Counter(
            "ondo_actions_performed",
            "Action attempts finished, by kind and outcome (succeeded, failed)",
            ["kind", "outcome"],
            registry=registry,
        )
        self.retried = Counter(
            "ondo_actions_retried",
            "Failed action attempts scheduled again",
            ["kind"],
            registry=registry,
        )
        self.dead_lettered = Counter(
            "ondo_actions_dead_lettered",
            "Actions moved to the dead-letter queue",
            ["kind"],
            registry=registry,
        )


_METRICS: weakref.WeakKeyDictionary[CollectorRegistry, ActionMetrics] = weakref.WeakKeyDictionary()
