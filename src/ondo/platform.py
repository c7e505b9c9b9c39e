"""The running platform: every component of one ondo process, wired together, started and stopped.

Components that run in the background (dispatcher, action queue, schedulers, …) implement
`Service` and are added with `add_service`; they start in order and stop in reverse order.
"""

from __future__ import annotations

import asyncio
import io
import logging
import socket
import time
from collections.abc import Coroutine
from dataclasses import replace
from typing import Any, Protocol

from ondo import datadir
from ondo.actions.async_invoke import AsyncInvoke
from ondo.actions.base import ActionKinds
from ondo.actions.contacts import Directory
from ondo.actions.destinations import BusAppend
from ondo.actions.emit import EmitAction
from ondo.actions.invoke import InvokeAction
from ondo.actions.mail import MailAction
from ondo.actions.mqtt import MqttAction
from ondo.actions.notify import NotifyAction
from ondo.actions.queue import ActionQueue
from ondo.actions.webhook import WebhookAction
from ondo.backends.bus import Bus, ReplayTarget, open_bus
from ondo.backends.store import open_store
from ondo.backends.store.repositories.rules import rule_id
from ondo.clock import Clock, ManualClock, WallClock
from ondo.config import Config, secret_from_environment
from ondo.deploy.targets import DeployTargets
from ondo.functions.bundle import CodeStore
from ondo.functions.service import FunctionService
from ondo.metrics import Metrics
from ondo.notices import Notices
from ondo.retention import Calling, EventLog, RetentionService
from ondo.rules.definitions import RuleChecks
from ondo.rules.dispatcher import RuleDispatcher
from ondo.rules.engine import RuleEngine
from ondo.rules.fields import condition_fields
from ondo.rules.trace import Tracer
from ondo.rules.window_retention import StaleWindowRows
from ondo.runtime.base import Runtime
from ondo.runtime.builds import BuildSettings
from ondo.security.audit import AuditLog
from ondo.security.audit_anchor import AUDIT_ANCHOR, HeadAnchor
from ondo.security.consent import Consents
from ondo.security.function_tokens import FunctionTokens
from ondo.security.grants import GrantBook
from ondo.security.identities import Identities
from ondo.security.ratelimit import RateLimits
from ondo.security.refusals import RefusalGate
from ondo.security.scrape import ScrapeToken, ensure_scrape_token
from ondo.security.secretbox import load_keys
from ondo.security.secrets import Secrets
from ondo.security.tokens import TokenStore
from ondo.sources.book import SourceBook
from ondo.sources.http_routes import HttpInvoke, HttpRoutes
from ondo.sources.supervisor import BusEvents, SourceSupervisor

log = logging.getLogger("ondo.platform")
# Beyond a step's own grace: how long stopping one part may take before it is left behind.
STOP_STEP_EXTRA_S = 5.0


class Service(Protocol):
    async def start(self) -> None: ...

    async def stop(self) -> None: ...


class Platform:
    def __init__(self, config: Config, runtime: Runtime | None = None) -> None:
        self.config = config
        # First, before anything in the directory is opened: one platform per data dir.
        self.data_lock = datadir.lock(config.data_dir)
        try:
            with datadir.owner_only_umask():  # the files the databases create: 0600 at birth
                self._wire(config, runtime)
            datadir.make_private(config.data_dir)  # and those of an older version: now 0600
        except BaseException:
            self.data_lock.release()
            raise

    def _wire(self, config: Config, runtime: Runtime | None) -> None:
        self.clock: Clock = ManualClock() if config.manual_clock else WallClock()
        wal_limit_bytes = config.wal_limit_mb * 1024 * 1024
        self.store = open_store(
            config.effective_store_url,
            cluster=config.cluster,
            durability=config.store_durability,
            wal_limit_bytes=wal_limit_bytes,
        )
        self.function_tokens = FunctionTokens(self.clock.now)  # key read at start
        self.tokens = TokenStore(
            self.store.repos.tokens,
            self.clock.now,
            self.function_tokens,
            policies=self.store.repos.policies,
        )
        self.tokens.watch(self.store.subscribe)
        self.identities = Identities(
            self.store.repos.tokens, self.store.repos.policies, self.tokens, self.clock.now
        )
        self.audit = AuditLog(
            self.store,
            self.clock.now,
            HeadAnchor(config.data_dir / AUDIT_ANCHOR),  # outside the database (audit_anchor.py)
            RefusalGate(time.monotonic),
        )
        # The data subjects' consent, cached per namespace and emptied by the change feed.
        self.consent = Consents(self.store, self.clock.now)
        self.consent.watch(self.store.subscribe)
        self.metrics = Metrics()
        self.bus: Bus = open_bus(
            config.effective_bus_url,
            clock=self.clock.now,
            max_event_bytes=config.max_event_bytes,
            cluster=config.cluster,
            wal_limit_bytes=wal_limit_bytes,
            index=self.store.repos.event_index,  # used by a bus whose log does not index lookups
        )
        self.replay_target: ReplayTarget | None = None  # the rules dispatcher registers itself
        self.runtime = runtime if runtime is not None else _default_runtime(config)
        self.metrics.watch_pool(self.runtime.status)
        # The platform's own events (the `ondo` source kind): each part publishes its notices.
        self.notices = Notices()
        # The key is read (or, embedded, made) when a secret is first used, not at start.
        self.secrets = Secrets(
            self.store,
            lambda: load_keys(config.secrets_key, config.data_dir, self.store.shared),
            self.clock.now,
        )
        self.functions = FunctionService(
            self.store,
            self.runtime,
            CodeStore(config.data_dir / "code"),
            config.data_dir / "layers",
            self.clock,
            self.metrics,
            self.secrets,
        )
        self.functions.notices = self.notices
        self.functions.function_tokens = self.function_tokens
        self.functions.api_url = function_api_url(config)
        self.secrets.on_change(self.functions.secret_changed)  # zygotes restart with new values
        self.secrets.watch()
        self.admin_token = ""
        self.scrape_token = ScrapeToken()  # read from its file at start
        self.rate_limits = RateLimits.of(
            config.rate_principal, config.rate_anonymous, config.rate_source
        )
        self._services: list[Service] = []
        self._started: list[Service] = []
        # Before the engine's service, so it stops after the engine and starts before it.
        self.actions = self._wire_actions(config)
        self.actions.notices = self.notices
        self.add_service(self.actions)
        self.rules = self._wire_rules()  # after the action queue: it enqueues there
        self.rules.book.notices = self.notices
        self.rules.book.consent = self.consent
        self.rules.consent = self.consent
        self.grants = GrantBook(
            self.store,
            self.consent,
            self.rules.book,
            self.notices,
            self.audit.record,
            self.clock.now,
        )
        # The http sources' routes: their kind registers them, the server answers them.
        self.http_routes = HttpRoutes(
            self.tokens.authenticate,
            HttpInvoke(self.functions),
            config.max_body_bytes,
            self.rate_limits.sources,
        )
        self.sources = SourceSupervisor(
            self.store,
            BusEvents(self.bus, self.metrics),
            self.clock,
            self.metrics.registry,
            config.data_dir / "sources",
            config.max_event_bytes,
            self.http_routes,
            self.notices,
        )
        self.add_service(self.sources)  # last: it stops first, so no event arrives mid-stop
        self.deploy_targets = DeployTargets(
            self.functions,
            self.rules.book,
            SourceBook(self.store),
            self.functions.layers_root,
            BuildSettings(
                index_url=config.build_index_url,
                allow_index_options=config.build_allow_index_options,
            ),
        )
        self.retention = self._retention(config)
        self.add_service(self.retention)
        self.tracer = Tracer(self.bus, self.rules.log, self.actions, self.functions, self.retention)

    def _retention(self, config: Config) -> RetentionService:
        """Every kind of record, with its retention (see docs/operations.md)."""
        repos = self.store.repos
        service = RetentionService(
            self.clock, repos.watermarks, self.metrics.registry, every_s=config.retention_every_s
        )
        records = config.retention_records_s
        service.register(EventLog(self.bus), config.retention_events_s, "events")
        index = Calling("event_index", repos.event_index.prune)
        service.register(index, config.retention_events_s, "event index rows")
        invocations = Calling("invocation_records", repos.invocations.prune_records)
        service.register(invocations, records, "invocation records")
        decisions = Calling("rule_decisions", repos.enforcements.prune)
        service.register(decisions, records, "rule decisions")
        skipped = Calling("skipped_events", repos.enforcements.prune_skipped)
        service.register(skipped, records, "skipped-event records")
        jobs = Calling("action_jobs", repos.jobs.prune)
        service.register(jobs, config.retention_jobs_s, "finished action jobs")
        stale = StaleWindowRows(repos.windows, self.rules.book.compiled_rule)
        service.register(stale, 0.0, "stale rule window rows")
        return service

    def _wire_rules(self) -> RuleEngine:
        checks = RuleChecks(
            function_exists=self.functions.exists,
            validate_action=self.actions.kinds.validate,
            acts_on=self.actions.kinds.acts_on,
        )
        engine = RuleEngine(
            self.store,
            self.clock,
            self.metrics.registry,
            self.actions,
            checks,
            self.bus,
            index_events=self.bus.indexed_by_store,
        )
        engine.dispatcher = RuleDispatcher(self.bus, self.clock, engine)
        self.add_service(engine.dispatcher)  # starts the engine: loads the rules
        self.replay_target = engine.dispatcher
        return engine

    def _wire_actions(self, config: Config) -> ActionQueue:
        """The action queue and its kinds, each kind with its own collaborators."""
        append = BusAppend(self.bus, self.metrics)
        # The address book of notify, kept by the change feed; started before the API serves.
        self.directory = Directory(self.store.repos.directory, self.store.subscribe)
        self.add_service(self.directory)
        outbound: list[NotifyAction | WebhookAction | MqttAction] = [
            NotifyAction(self.directory, self._rule_fields, self.clock),
            WebhookAction(config.webhook_secret, secret_from_environment),
            MqttAction(config.mqtt_url),
        ]
        for kind in outbound:  # they close their connections after the queue stopped
            self.add_service(kind)
        root = config.data_dir / "sources"  # where the supervisor keeps each source's files
        mail = [  # bcc and forward: the smtp source's spool, sent through its smarthost
            MailAction(w, self.directory, self.store.repos.sources.get, root, self.clock)
            for w in ("bcc", "forward")
        ]
        kinds = ActionKinds([InvokeAction(self.functions), EmitAction(append), *mail, *outbound])
        queue = ActionQueue(
            self.store,
            kinds,
            self.clock,
            self.metrics.registry,
            append,
            config.actions,
            owner=f"{socket.gethostname()}:{config.data_dir}",
        )
        self.async_invoke = AsyncInvoke(
            self.functions, self.store, queue.enqueue_in, append, self.clock
        )
        kinds.add(self.async_invoke)
        return queue

    def _rule_fields(self, namespace: str, rule: str) -> tuple[str, ...]:
        """The data fields a rule's condition tests (a default notification names them)."""
        compiled = self.rules.book.compiled_rule(rule_id(namespace, rule))
        return condition_fields(compiled.spec) if compiled is not None else ()

    def add_service(self, service: Service) -> None:
        self._services.append(service)

    async def start(self) -> None:
        await self.store.open()
        self.admin_token, created = await self.tokens.ensure_admin_token(
            self.config.token_path, self.clock.now()
        )
        if created:
            log.warning("created the admin token in %s (mode 0600)", self.config.token_path)
        await self.function_tokens.load(self.store.repos.platform_keys)
        scrape, created = ensure_scrape_token(self.config.metrics_token_path)
        self.scrape_token.set(scrape)
        if created:
            log.warning(
                "created the /metrics scrape token in %s (mode 0600)",
                self.config.metrics_token_path,
            )
        await self.runtime.start()
        if datadir.sandboxes_read_code_by_path(self.runtime.status().get("sandbox", {})):
            datadir.open_for_sandboxes(self.config.data_dir)
        await self.functions.start()
        resumed = await self.functions.resume_pending()
        if resumed:
            log.info("resuming %d async invocations accepted before the last stop", resumed)
        for service in self._services:
            await service.start()
            self._started.append(service)

    async def stop(self, grace_s: float = 10.0) -> None:
        """Stop every part in reverse order. Each step has a time budget: one that overruns is
        logged with every task's stack (so a hang names its cause) and left behind, so that a
        stuck part never keeps the process, and the data dir's lock, from going."""
        budget = grace_s + STOP_STEP_EXTRA_S
        for service in reversed(self._started):
            await _bounded(f"stopping {type(service).__name__}", service.stop(), budget)
        self._started.clear()
        await _bounded("draining invocations", self.functions.drain(grace_s), budget)
        self.functions.close()
        self.secrets.close()
        await _bounded("closing the runtime", self.runtime.close(grace_s), budget)
        await _bounded("writing the audit summaries", self.audit.close(), STOP_STEP_EXTRA_S)
        await _bounded("closing the bus", self.bus.close(), STOP_STEP_EXTRA_S)
        await _bounded("closing the store", self.store.close(), STOP_STEP_EXTRA_S)
        self.data_lock.release()


async def _bounded(step: str, work: Coroutine[Any, Any, None], budget_s: float) -> None:
    task = asyncio.ensure_future(work)
    done, _ = await asyncio.wait({task}, timeout=budget_s)
    if not done:
        log.error(
            "%s took more than %.0f s; going on without it. Tasks still running:\n%s",
            step,
            budget_s,
            _task_stacks(),
        )
        task.cancel()
        return
    if not task.cancelled() and task.exception() is not None:
        log.error("%s failed", step, exc_info=task.exception())


def _task_stacks() -> str:
    out = io.StringIO()
    for task in asyncio.all_tasks():
        if task is not asyncio.current_task():
            task.print_stack(limit=12, file=out)
    return out.getvalue()


def _default_runtime(config: Config) -> Runtime:
    from ondo.runtime import create_runtime

    return create_runtime(config)


def function_api_url(config: Config) -> str:
    """The URL a function reaches the API at: the one the server listens on, with an address
    that means "every interface" replaced by loopback (which a function may reach only if its
    `network: {allow: [...]}` lists it: docs/security.md, "Function identities")."""
    host = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(config.host, config.host)
    return replace(config, host=host).url
