"""Runs every deployed source, keeps each running through failures, and says how each is doing.

The supervisor follows the store: at start it runs every stored source, and the change feed
(SOURCES_TOPIC) tells it when a deploy in any process created, changed or deleted one. Each
source runs as one task (`kind.run`, see base.py). A run that raises is recorded (state
`retrying`, the error kept as `last_error`) and started again after a backoff that doubles from
1 s to 60 s, and resets once the source stayed connected for a minute. A source that cannot
run at all in this process (its kind's library is not installed, its kind is unknown) is shown
as `failed` with the fix, and not retried until it is deployed again.

Every process runs every source today: with several processes on one store, each source would
be attached once per process. Leases that give each source one owner come with issue 15.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

from prometheus_client import CollectorRegistry, Counter, Gauge

from ondo.backends.bus.base import Bus
from ondo.backends.store.repositories.sources import SOURCES_TOPIC, StoredSource
from ondo.backends.store.store import Store
from ondo.clock import Clock
from ondo.errors import ConfigError, NotFound, OndoError, SourceKindUnavailable
from ondo.events import CloudEvent
from ondo.metrics import Metrics
from ondo.notices import SOURCE_DISCONNECTED, Notices
from ondo.sources.http_routes import HttpRoutes
from ondo.sources.kinds import KIND_MODULES, source_kind

log = logging.getLogger("ondo.sources")

State = Literal["starting", "connected", "retrying", "stopped", "failed"]
FIRST_BACKOFF_S = 1.0
MAX_BACKOFF_S = 60.0
HEALTHY_AFTER_S = 60.0  # connected this long: the next failure starts the backoff again
MAX_ERROR_CHARS = 1000


class AppendEvents(Protocol):
    """Append events durably to the bus in `namespace`; for each, whether it was new."""

    async def __call__(self, events: Sequence[CloudEvent], namespace: str) -> list[bool]: ...


@dataclass(frozen=True)
class BusEvents:
    """`AppendEvents` on the platform's bus, counted in ondo_events_ingested_total."""

    bus: Bus
    metrics: Metrics

    async def __call__(self, events: Sequence[CloudEvent], namespace: str) -> list[bool]:
        results = await self.bus.append(list(events), namespace=namespace)
        fresh = [not result.duplicate for result in results]
        self.metrics.events_appended(namespace, sum(fresh))
        return fresh


@dataclass
class SourceStatus:
    namespace: str
    name: str
    kind: str
    app: str | None
    state: State = "starting"
    detail: str = ""
    since: float = 0.0
    events: int = 0
    errors: int = 0
    restarts: int = 0
    last_error: str | None = None
    last_error_at: float | None = None
    last_event_at: float | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "namespace": self.namespace,
            "name": self.name,
            "kind": self.kind,
            "app": self.app,
            "state": self.state,
            "detail": self.detail,
            "since": self.since,
            "events": self.events,
            "errors": self.errors,
            "restarts": self.restarts,
            "last_error": self.last_error,
            "last_error_at": self.last_error_at,
            "last_event_at": self.last_event_at,
        }


class SourceMetrics:
    """/metrics: events and errors per source, and whether each is connected."""

    def __init__(self, registry: CollectorRegistry) -> None:
        labels = ["namespace", "source", "kind"]
        self.events = Counter(
            "ondo_source_events", "Events a source appended to the bus", labels, registry=registry
        )
        self.errors = Counter(
            "ondo_source_errors",
            "Source failures: lost connections and inputs that could not become events",
            labels,
            registry=registry,
        )
        self.connected = Gauge(
            "ondo_source_connected", "1 while a source is attached", labels, registry=registry
        )


@dataclass
class _Running:
    source: StoredSource
    status: SourceStatus
    task: asyncio.Task[None] | None = None
    labels: tuple[str, str, str] = ("", "", "")
    stop_requested: bool = field(default=False)


class _Context:
    """`SourceContext` (base.py) for one running source."""

    def __init__(self, supervisor: SourceSupervisor, running: _Running) -> None:
        self._supervisor = supervisor
        self._running = running
        source = running.source
        self.namespace = source.namespace
        self.name = source.name
        self.clock = supervisor.clock
        self.notices = supervisor.notices
        self._data_dir: Path | None = None

    @property
    def data_dir(self) -> Path:
        if self._data_dir is None:
            path = self._supervisor.data_root / self.namespace / self.name
            path.mkdir(parents=True, exist_ok=True, mode=0o700)
            os.chmod(path, 0o700)
            self._data_dir = path
        return self._data_dir

    async def emit(self, event: CloudEvent) -> bool:
        return await self.emit_many([event]) == 1

    async def emit_many(self, events: Sequence[CloudEvent]) -> int:
        if not events:
            return 0
        for event in events:
            event.check_size(self._supervisor.max_event_bytes)
        fresh = await self._supervisor.append(events, self.namespace)
        new = sum(fresh)
        status = self._running.status
        status.events += new
        status.last_event_at = self.clock.now()
        self._supervisor.metrics.events.labels(*self._running.labels).inc(new)
        return new

    def connected(self, detail: str = "") -> None:
        status = self._running.status
        if status.state != "connected":
            log.info("source %s/%s connected %s", self.namespace, self.name, detail)
        status.state, status.detail, status.since = "connected", detail, self.clock.now()
        self._supervisor.metrics.connected.labels(*self._running.labels).set(1)

    def problem(self, message: str) -> None:
        log.warning("source %s/%s: %s", self.namespace, self.name, message)
        self._supervisor.record_error(self._running, message)

    async def state(self) -> dict[str, str]:
        return await self._supervisor.store.repos.sources.state(self.namespace, self.name)

    async def save_state(self, key: str, value: str) -> None:
        await self._supervisor.store.repos.sources.save_state(
            self.namespace, self.name, key, value, self.clock.now()
        )

    @property
    def http_routes(self) -> HttpRoutes:
        routes = self._supervisor.http_routes
        if routes is None:
            raise ConfigError("this process serves no HTTP routes (no route table was given)")
        return routes


class SourceSupervisor:
    """The `Service` that runs the deployed sources (see the module's docstring)."""

    def __init__(
        self,
        store: Store,
        append: AppendEvents,
        clock: Clock,
        registry: CollectorRegistry,
        data_root: Path,
        max_event_bytes: int,
        http_routes: HttpRoutes | None = None,
        notices: Notices | None = None,
    ) -> None:
        self.store = store
        self.http_routes = http_routes
        self.notices = notices or Notices()
        self.append = append
        self.clock = clock
        self.metrics = SourceMetrics(registry)
        self.data_root = data_root
        self.max_event_bytes = max_event_bytes
        self._running: dict[tuple[str, str], _Running] = {}
        self._detach: Callable[[], None] | None = None
        self._changed: set[str] = set()
        self._wake = asyncio.Event()
        self._follower: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._detach = self.store.subscribe(SOURCES_TOPIC, self._heard)
        for source in await self.store.repos.sources.all():
            self._start(source)
        self._follower = asyncio.create_task(self._follow(), name="ondo-sources-follow")

    async def stop(self) -> None:
        if self._detach is not None:
            self._detach()
            self._detach = None
        if self._follower is not None:
            self._follower.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._follower
            self._follower = None
        await asyncio.gather(*(self._stop(key) for key in list(self._running)))

    # --- what the API and the CLI show -----------------------------------------------------

    def statuses(self, namespace: str | None = None) -> list[SourceStatus]:
        found = [r.status for r in self._running.values()]
        if namespace is not None:
            found = [s for s in found if s.namespace == namespace]
        return sorted(found, key=lambda s: (s.namespace, s.name))

    def status(self, namespace: str, name: str) -> SourceStatus:
        running = self._running.get((namespace, name))
        if running is None:
            raise NotFound(
                f"source {name!r} not found in namespace {namespace!r}; `ondo sources list`"
                " shows the deployed ones"
            )
        return running.status

    def settings(self, namespace: str, name: str) -> StoredSource:
        self.status(namespace, name)
        return self._running[(namespace, name)].source

    # --- following deploys -----------------------------------------------------------------

    def _heard(self, key: str) -> None:
        self._changed.add(key)
        self._wake.set()

    async def _follow(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            changed, self._changed = self._changed, set()
            try:
                await self._reload(changed)
            except OndoError as exc:  # the store is away: try again on the next change
                log.warning("sources: could not follow a deploy: %s", exc)
                self._changed |= changed
                await asyncio.sleep(FIRST_BACKOFF_S)
                self._wake.set()

    async def _reload(self, keys: set[str]) -> None:
        stored: dict[tuple[str, str], StoredSource]
        wanted: set[tuple[str, str]]
        if "*" in keys:
            stored = {(s.namespace, s.name): s for s in await self.store.repos.sources.all()}
            wanted = set(stored) | set(self._running)
        else:
            stored = {}
            wanted = set()
            for key in keys:
                namespace, _, name = key.partition("/")
                found = await self.store.repos.sources.get(namespace, name)
                wanted.add((namespace, name))
                if found is not None:
                    stored[(namespace, name)] = found
        for pair in wanted:
            source = stored.get(pair)
            running = self._running.get(pair)
            if running is not None and source is not None and _same(running.source, source):
                continue
            if running is not None:
                await self._stop(pair)
            if source is not None:
                self._start(source)

    # --- running one source ----------------------------------------------------------------

    def _start(self, source: StoredSource) -> None:
        status = SourceStatus(
            source.namespace, source.name, source.kind, source.app, since=self.clock.now()
        )
        running = _Running(source, status, labels=(source.namespace, source.name, source.kind))
        self._running[(source.namespace, source.name)] = running
        running.task = asyncio.create_task(
            self._keep_running(running), name=f"ondo-source-{source.namespace}-{source.name}"
        )

    async def _stop(self, key: tuple[str, str]) -> None:
        running = self._running.pop(key, None)
        if running is None or running.task is None:
            return
        running.stop_requested = True
        running.task.cancel()
        # asyncio.wait, not `await task` under suppress(CancelledError): that would also
        # swallow a cancellation of the caller (the follower, when the supervisor stops).
        await asyncio.wait({running.task})
        self.metrics.connected.labels(*running.labels).set(0)

    async def _keep_running(self, running: _Running) -> None:
        source, status = running.source, running.status
        try:
            kind = source_kind(source.kind)
        except ConfigError as exc:
            self._set(running, "failed", "")
            self.record_error(running, str(exc))
            return
        backoff = FIRST_BACKOFF_S
        context = _Context(self, running)
        while True:
            started = self.clock.now()
            try:
                await kind.run(source, context)
            except asyncio.CancelledError:
                raise
            except (ImportError, SourceKindUnavailable) as exc:  # retrying would not help
                message = _unavailable(source.kind, exc)
                log.error("source %s/%s cannot run: %s", source.namespace, source.name, message)
                self._set(running, "failed", "its library is missing")
                self.record_error(running, message)
                return
            except Exception as exc:  # any failure of a kind's run is a reason to retry
                self.record_error(running, _describe(exc))
                log.warning("source %s/%s failed: %s", source.namespace, source.name, exc)
                self._announce_disconnected(running)
                if status.state == "connected" and self.clock.now() - started > HEALTHY_AFTER_S:
                    backoff = FIRST_BACKOFF_S
                self._set(running, "retrying", f"retrying in {backoff:.0f} s")
                status.restarts += 1
                await asyncio.sleep(backoff * random.uniform(0.8, 1.2))
                backoff = min(backoff * 2, MAX_BACKOFF_S)
                continue
            self._set(running, "stopped", "its run ended")
            return

    def _announce_disconnected(self, running: _Running) -> None:
        status = running.status
        data = {"source": status.name, "kind": status.kind, "error": status.last_error}
        self.notices.publish(
            status.namespace,
            SOURCE_DISCONNECTED,
            status.name,
            {**data, "restarts": status.restarts},
        )

    def _set(self, running: _Running, state: State, detail: str) -> None:
        status = running.status
        status.state, status.detail, status.since = state, detail, self.clock.now()
        self.metrics.connected.labels(*running.labels).set(1 if state == "connected" else 0)

    def record_error(self, running: _Running, message: str) -> None:
        status = running.status
        status.errors += 1
        status.last_error = message[:MAX_ERROR_CHARS]
        status.last_error_at = self.clock.now()
        self.metrics.errors.labels(*running.labels).inc()


def _same(a: StoredSource, b: StoredSource) -> bool:
    return (a.kind, dict(a.spec), a.app) == (b.kind, dict(b.spec), b.app)


def _unavailable(kind: str, exc: BaseException) -> str:
    if isinstance(exc, SourceKindUnavailable):
        return str(exc)
    extra = KIND_MODULES.get(kind, ("", ""))[1]
    fix = f"; install it with: pip install 'ondo[{extra}]'" if extra else ""
    return f"source kind {kind!r} cannot run here: {exc}{fix}"


def _describe(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text if isinstance(exc, OndoError) else f"{type(exc).__name__}: {text}"
