"""Deploying and invoking functions: versions, slots, records, the async queue."""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from ondo.backends.store.base import EVERYTHING
from ondo.backends.store.repositories.functions import TOPIC, change_key
from ondo.backends.store.store import Store
from ondo.clock import Clock
from ondo.deadlines import Deadlines
from ondo.errors import (
    ConcurrencyExhausted,
    Conflict,
    DuplicateKey,
    HandlerImportError,
    NotFound,
    OndoError,
)
from ondo.functions import announce
from ondo.functions.bundle import CodeStore
from ondo.functions.directory import CurrentVersions
from ondo.functions.model import FunctionConfig, FunctionVersion, InvocationRecord
from ondo.functions.records import RecordWriter
from ondo.functions.secretenv import (
    SecretValues,
    holds_secret,
    redact_json,
    redact_text,
    redaction_of,
)
from ondo.functions.shared import SharedBundles
from ondo.ids import uuid7
from ondo.metrics import Metrics
from ondo.notices import Notices
from ondo.runtime.base import CallerIdentity, FunctionSpec, InvocationOutcome, Runtime
from ondo.security.function_tokens import FunctionTokens

log = logging.getLogger("ondo.functions")


# An invocation whose attempt is tracked elsewhere (an action job, or its own `queued` row)
# gets its `running` row only once it has run this long: most finish sooner, and then their
# final record is the one write.
RUNNING_ROW_AFTER_S = 0.05
SPEC_CACHE_SIZE = 4096  # versions whose runtime spec is remembered
SECRET_READS = 3  # reads of a version's secrets while they keep changing under the read


class FunctionService:
    """The one place that turns a function name and an event into a recorded invocation.

    It reads and writes through `store` (its functions and invocations repositories); what it
    remembers of deployed state (current versions, runtime specs) follows the store's change
    feed, so a deploy made by another process sharing the store is seen here too. `start()`
    loads it."""

    def __init__(
        self,
        store: Store,
        runtime: Runtime,
        code: CodeStore,
        layers_root: Path,
        clock: Clock,
        metrics: Metrics,
        secrets: SecretValues,
    ) -> None:
        self.store = store
        self.secrets = secrets
        self.runtime = runtime
        self.code = code
        self.layers_root = layers_root
        self.clock = clock
        self.metrics = metrics
        self.notices = Notices()  # platform.py hands it the platform's hub
        # Each invocation of a function with `permissions` gets its own token for the API at
        # `api_url` (platform.py sets both; None: functions get no token).
        self.function_tokens: FunctionTokens | None = None
        self.api_url = ""
        self._slots: dict[str, asyncio.Semaphore] = {}
        self._async_tasks: set[asyncio.Task[None]] = set()
        self._closing = False
        self._publishing = asyncio.Lock()
        self._trial_ids = itertools.count(1)  # throwaway versions (-1, -2, …) of dry runs
        self.records = RecordWriter(self._write_records)
        # On a store shared by several processes: code and layers go through it too.
        self.bundles = SharedBundles(store, code.root, layers_root)
        self.current = CurrentVersions(
            lambda: store.repos.functions,
            store.subscribe,
            self._replaced_elsewhere,
            self._heard if self.bundles.enabled else None,
        )
        self._detach_specs: Callable[[], None] | None = None
        self._writes: set[asyncio.Task[None]] = set()  # work off the caller's path
        self._specs: dict[SpecKey, CachedSpec] = {}
        # Runtime specs holding secret values, by (namespace, secret): restarted when it changes.
        self._secret_users: dict[tuple[str, str], dict[str, FunctionSpec]] = {}
        self._secret_changes = 0  # a spec built while a secret changed is not cached
        self._running = 0  # invocations between their runtime call and their final record
        # Runs whose `running` row is written only if they outlast RUNNING_ROW_AFTER_S.
        self._late_rows: dict[str, tuple[InvocationRecord, bytes | None]] = {}
        # `running` rows being written: the final record waits for its invocation's, or the
        # late row could land after it and leave the invocation `running` for good.
        self._late_writes: dict[str, asyncio.Task[None]] = {}
        self._late_row_deadlines: Deadlines[str] = Deadlines(self._write_late_row)

    # --- lifecycle ----------------------------------------------------------------------

    async def start(self) -> None:
        """Load the current versions and follow the change feed (before any invocation)."""
        if self._detach_specs is None:
            self._detach_specs = self.store.subscribe(TOPIC, self._drop_specs)
        await self.current.load()

    def _drop_specs(self, key: str) -> None:
        if key == EVERYTHING:
            self._specs.clear()
            return
        for spec_key in [k for k in self._specs if change_key(k[0], k[1]) == key]:
            del self._specs[spec_key]

    def _replaced_elsewhere(self, old: FunctionVersion) -> None:
        """Another process made another version current (or deleted the function): this
        process's zygote of the old one goes too (a no-op when it has none)."""
        self._background(self.runtime.retire(self.spec(old)))

    def _heard(self, fv: FunctionVersion) -> None:
        """A version became current (here or elsewhere): fetch its code and layer now, so
        its first invocation does not wait for them (a failure is logged; `_run` retries)."""
        self._background(self.bundles.ensure(fv))

    def _background(self, work: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.create_task(work)
        self._writes.add(task)
        task.add_done_callback(self._background_done)
        return task

    def _background_done(self, task: asyncio.Task[None]) -> None:
        self._writes.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("background work of the function service failed", exc_info=task.exception())

    # --- lookup -------------------------------------------------------------------------

    def get(self, name: str, namespace: str = "default") -> FunctionVersion:
        """The current version (from memory: see CurrentVersions); NotFound if none."""
        found = self.current.get(namespace, name)
        if found is None:
            raise NotFound(f"function {name!r} does not exist in namespace {namespace!r}")
        return found

    async def get_version(
        self, name: str, namespace: str = "default", version: int | None = None
    ) -> FunctionVersion:
        """Version `version` of a function (None: the current one); NotFound if none."""
        if version is None:
            return self.get(name, namespace)
        found = await self.store.repos.functions.version(namespace, name, version)
        if found is None:
            raise NotFound(
                f"function {name!r} version {version} does not exist in namespace {namespace!r}"
            )
        return found

    def exists(self, name: str, namespace: str = "default") -> bool:
        return self.current.get(namespace, name) is not None

    async def list_current(self, namespace: str) -> list[FunctionVersion]:
        return await self.store.repos.functions.list_current(namespace)

    async def versions(self, name: str, namespace: str = "default") -> list[FunctionVersion]:
        return await self.store.repos.functions.versions(namespace, name)

    async def identical_version(self, draft: FunctionVersion) -> FunctionVersion | None:
        """The newest stored version with the draft's code, layer, settings and app, if any."""
        return await self.store.repos.functions.identical_version(draft)

    async def names_of_app(self, namespace: str, app: str) -> list[str]:
        return await self.store.repos.functions.names_of_app(namespace, app)

    def spec(self, fv: FunctionVersion) -> FunctionSpec:
        """The runtime's view of a version, built once per version (the repository hands out
        the same object each time; a deleted and re-created function fails the equality test).
        For a version that declares secrets and is not cached, one without their values: it
        names the version's pool (to retire it) but must not run it (see `_runnable`)."""
        cached = self._cached_spec(fv)
        if cached is not None:
            return cached[0]
        spec = self._build_spec(fv, {})
        if not fv.config.secrets:
            self._cache_spec(fv, spec, ())
        return spec

    def _cached_spec(self, fv: FunctionVersion) -> tuple[FunctionSpec, tuple[str, ...]] | None:
        cached = self._specs.get((fv.namespace, fv.name, fv.version))
        if cached is not None and (cached[0] is fv or cached[0] == fv):
            return cached[1], cached[2]
        return None

    def _cache_spec(self, fv: FunctionVersion, spec: FunctionSpec, masked: tuple[str, ...]) -> None:
        if len(self._specs) >= SPEC_CACHE_SIZE:
            self._specs.clear()
        self._specs[(fv.namespace, fv.name, fv.version)] = (fv, spec, masked)

    async def _runnable(self, fv: FunctionVersion) -> tuple[FunctionSpec, tuple[str, ...]]:
        """The spec to run a version with (its secrets' values in its environment), and the
        values to mask in what it leaves behind."""
        cached = self._cached_spec(fv)
        if cached is not None:
            return cached
        if not fv.config.secrets:
            return self.spec(fv), ()
        for _attempt in range(SECRET_READS):
            changes = self._secret_changes
            values = await self.secrets.values(fv.namespace, fv.config.secrets, _who(fv))
            if changes == self._secret_changes:
                break
            # A secret changed while they were read: the restart it caused has passed this
            # version by, so a zygote started with a stale value would stay. Read them again.
        spec, masked = self._build_spec(fv, values), redaction_of(values.values())
        self._cache_spec(fv, spec, masked)
        for secret in fv.config.secrets:  # the next change of one restarts this version
            self._secret_users.setdefault((fv.namespace, secret), {})[spec.key] = spec
        return spec, masked

    def secret_changed(self, namespace: str, name: str) -> Coroutine[Any, Any, None]:
        """A secret was set or deleted (here or in another process; `*`: any may have been):
        forget the specs holding it now, and return the work that restarts their zygotes."""
        self._secret_changes += 1
        if namespace == EVERYTHING:
            users = {k: s for specs in self._secret_users.values() for k, s in specs.items()}
            self._secret_users.clear()
        else:
            users = self._secret_users.pop((namespace, name), {})
        for key in [k for k, cached in self._specs.items() if cached[1].key in users]:
            del self._specs[key]
        return self._restart(list(users.values()))

    async def _restart(self, specs: list[FunctionSpec]) -> None:
        for spec in specs:  # the next invocation starts a zygote with the new environment
            await self.runtime.retire(spec)

    async def missing_secrets(self, namespace: str, names: Sequence[str]) -> list[str]:
        """Which of `names` are not set in `namespace` (a deploy refuses those)."""
        return await self.secrets.missing(namespace, names)

    def _build_spec(self, fv: FunctionVersion, secrets: Mapping[str, str]) -> FunctionSpec:
        cfg = fv.config
        return FunctionSpec(
            namespace=fv.namespace,
            name=fv.name,
            version=fv.version,
            code_dir=self.code.path(fv.code_hash),
            handler=cfg.handler,
            timeout_s=cfg.timeout,
            memory_mb=cfg.memory,
            concurrency=cfg.concurrency,
            network=cfg.network,
            network_allow=cfg.network_allow,
            environment={**cfg.environment, **secrets},
            layer_dir=self.layers_root / fv.layer_hash if fv.layer_hash else None,
        )

    # --- versions -----------------------------------------------------------------------

    async def publish(
        self,
        name: str,
        config: FunctionConfig,
        code_hash: str,
        layer_hash: str | None,
        *,
        namespace: str = "default",
        app: str | None = None,
    ) -> FunctionVersion:
        """Prepare the new version in the runtime first; only then make it current.

        Code and settings identical to a stored version (of the same app) make that version
        current again instead of adding a copy of it."""
        repo = self.store.repos.functions
        async with self._publishing:
            version = await repo.next_version(namespace, name)
            draft = FunctionVersion(
                namespace, name, version, config, code_hash, layer_hash, self.clock.now(), app
            )
            await self.bundles.upload(draft)  # in a shared store before anyone sees the version
            same = await repo.identical_version(draft)
            if same is not None:
                return await self.rollback(name, same.version, namespace)
            await self._prepare(draft)
            previous = self.current.get(namespace, name)
            try:
                async with self.store.transaction() as uow:
                    await uow.functions.add_version(draft)
                    await uow.notify(TOPIC, change_key(namespace, name))
            except DuplicateKey:  # another process sharing the store published it first
                await self.runtime.retire(self.spec(draft))
                raise Conflict(
                    f"function {name!r} version {version} in namespace {namespace!r} was"
                    " published by another ondo process at the same time; deploy again"
                ) from None
            self.current.put(draft)
        announce.function_deployed(self.notices, draft)
        if previous is not None:
            await self.runtime.retire(self.spec(previous))
        return draft

    async def try_import(
        self,
        name: str,
        config: FunctionConfig,
        code_hash: str,
        layer_hash: str | None,
        namespace: str = "default",
    ) -> None:
        """Import the handler in a throwaway zygote (a dry run's check); HandlerImportError with
        the user's traceback if it fails. Nothing is stored; the zygote is stopped after."""
        draft = FunctionVersion(
            namespace, name, -next(self._trial_ids), config, code_hash, layer_hash, 0.0
        )
        values = await self.secrets.values(namespace, config.secrets, _who(draft))
        spec, masked = self._build_spec(draft, values), redaction_of(values.values())
        try:
            await self.runtime.prepare(spec)
        except HandlerImportError as exc:  # name the function, not the trial's made-up version
            trial = f"{namespace}/{name} (dry run)"
            message = redact_text(str(exc).replace(spec.key, trial, 1), masked)
            raise HandlerImportError(message) from None
        finally:
            await self.runtime.retire(spec)

    async def _prepare(self, fv: FunctionVersion) -> None:
        """Start the version's zygote; an import error's traceback without secret values."""
        spec, masked = await self._runnable(fv)
        try:
            await self.runtime.prepare(spec)
        except OndoError as exc:
            raise _masked_error(exc, masked) from None

    async def rollback(
        self, name: str, version: int, namespace: str = "default"
    ) -> FunctionVersion:
        target = await self.get_version(name, namespace, version)
        current = self.get(name, namespace)
        await self.bundles.ensure(target)  # deployed by another process sharing the store
        await self._prepare(target)
        async with self.store.transaction() as uow:
            await uow.functions.set_current(namespace, name, version, self.clock.now())
            await uow.notify(TOPIC, change_key(namespace, name))
        self.current.put(target)
        announce.function_deployed(self.notices, target)
        if current.version != version:
            await self.runtime.retire(self.spec(current))
        return target

    async def delete(self, name: str, namespace: str = "default") -> None:
        current = self.get(name, namespace)
        async with self.store.transaction() as uow:
            await uow.functions.delete(namespace, name)
            await uow.notify(TOPIC, change_key(namespace, name))
        self.current.forget(namespace, name)
        await self.runtime.retire(self.spec(current))

    # --- invocation ---------------------------------------------------------------------

    def _slot(self, fv: FunctionVersion) -> asyncio.Semaphore:
        key = f"{fv.namespace}/{fv.name}:{fv.version}"
        slot = self._slots.get(key)
        if slot is None:
            slot = self._slots[key] = asyncio.Semaphore(fv.config.concurrency)
        return slot

    def _new_record(
        self, fv: FunctionVersion, mode: str, trigger: str | None, request_id: str | None
    ) -> InvocationRecord:
        return InvocationRecord(
            id=request_id or uuid7(),
            namespace=fv.namespace,
            function=fv.name,
            version=fv.version,
            status="queued" if mode == "async" else "running",
            mode="async" if mode == "async" else "sync",
            created_at=self.clock.now(),
            trigger=trigger,
        )

    async def invoke(
        self,
        name: str,
        payload: bytes,
        *,
        namespace: str = "default",
        version: int | None = None,
        trigger: str | None = None,
        request_id: str | None = None,
        wait_for_slot: bool = False,
        tracked: bool = False,
        record_after_answer: bool = False,
        attempt: int | None = None,
    ) -> InvocationRecord:
        """Run one invocation now and return its final record.

        Raises ConcurrencyExhausted when every slot is busy, unless `wait_for_slot`. `tracked`:
        the caller keeps its own durable record of the attempt (the action queue's job row),
        so the `running` row is written only if the invocation outlasts RUNNING_ROW_AFTER_S;
        otherwise it is written first, and a crash leaves it `interrupted`.
        `record_after_answer`: the caller answers with the result itself (a sync HTTP call), so
        the final record is group-committed just after, not awaited (see RecordWriter).
        `attempt`: this runs attempt N of an async invocation (actions/async_invoke.py).
        """
        fv = (
            self.get(name, namespace)
            if version is None
            else await self.get_version(name, namespace, version)
        )
        slot = self._slot(fv)
        if slot.locked() and not wait_for_slot:
            raise ConcurrencyExhausted(
                f"function {name!r} already runs {fv.config.concurrency} invocations"
                " (its concurrency); retry shortly or raise `concurrency` in ondo.yaml"
            )
        record = self._new_record(fv, "sync", trigger, request_id)
        if attempt is not None:
            record = replace(record, mode="async", attempt=attempt)
        async with slot:
            if not tracked:
                await self.store.repos.invocations.record(record)
            return await self._run(
                fv, record, payload, lazy_row=tracked, record_after_answer=record_after_answer
            )

    async def resume_pending(self) -> int:
        """After a restart: run again every async invocation accepted but not finished, except
        one that was running at two crashes in a row (it may be what crashes the platform).
        Only those an earlier version stored with their payload: the action queue runs the
        others (actions/async_invoke.py).

        This start-up recovery assumes no other live process shares the store: one would find
        another's resumed run `running` and end it as a crash victim, and `running` sync rows
        of a live process are marked `interrupted` until their final record replaces them.
        Several processes on one store need node ownership of invocations (leases)."""
        count = 0
        functions, invocations = self.store.repos.functions, self.store.repos.invocations
        for pending in await invocations.pending():
            record, payload = pending.record, pending.payload
            if record.status == "running" and pending.resumed:
                await self._end_failed(record, dict(PLATFORM_CRASH_ERROR))
                continue
            fv = await functions.version(record.namespace, record.function, record.version)
            if fv is None:
                fv = self.current.get(record.namespace, record.function)
            if fv is None:
                await self._finish_without_run(record, "function was deleted before it ran")
                continue
            if not await invocations.claim_resumption(record.id, pending.resumed):
                continue  # another process sharing the store resumed it first
            self._spawn(fv, replace(record, status="queued"), payload, resumed=True)
            count += 1
        await invocations.interrupt_running_sync(self.clock.now())
        return count

    def _spawn(
        self, fv: FunctionVersion, record: InvocationRecord, payload: bytes, resumed: bool = False
    ) -> None:
        task = asyncio.create_task(self._run_async(fv, record, payload, resumed))
        self._async_tasks.add(task)
        task.add_done_callback(self._async_tasks.discard)

    async def _run_async(
        self, fv: FunctionVersion, record: InvocationRecord, payload: bytes, resumed: bool
    ) -> None:
        async with self._slot(fv):
            if self._closing:
                return  # stays queued in the store; the next start resumes it
            # The `queued` row (with the payload) tracks it until the final record replaces it.
            record = replace(record, status="running")
            if resumed:  # `running` before it runs: a crash now counts (see resume_pending)
                await self.store.repos.invocations.record(record, payload)
            await self._run(fv, record, payload, lazy_row=not resumed, row_payload=payload)

    async def _finish_without_run(self, record: InvocationRecord, why: str) -> None:
        await self._end_failed(
            record, {"errorMessage": why, "errorType": "Ondo.NotRun", "stackTrace": []}
        )

    async def _end_failed(self, record: InvocationRecord, error: dict[str, Any]) -> None:
        final = replace(record, status="failed", error=error, finished_at=self.clock.now())
        announce.invocation_failed(self.notices, final, None)
        try:
            await self.store.repos.invocations.record(final)
        except Exception:  # the store's own failure: what the caller raises says more
            log.exception("could not record the failure of invocation %s", record.id)

    async def _run(
        self,
        fv: FunctionVersion,
        record: InvocationRecord,
        payload: bytes,
        lazy_row: bool = False,
        row_payload: bytes | None = None,
        record_after_answer: bool = False,
    ) -> InvocationRecord:
        """Run and record the outcome. `lazy_row`: write the `running` row (with `row_payload`)
        only if the run outlasts RUNNING_ROW_AFTER_S."""
        if lazy_row:
            self._late_rows[record.id] = (record, row_payload)
            self._late_row_deadlines.add(record.id, RUNNING_ROW_AFTER_S)
        self._running += 1
        masked: tuple[str, ...] = ()
        try:
            try:
                if self.bundles.enabled:  # a store shared with other processes
                    await self.bundles.ensure(fv)
                # Cached (the warm path): no coroutine for `_runnable` on every invocation.
                cached = self._cached_spec(fv)
                spec, masked = cached if cached is not None else await self._runnable(fv)
                identity = self._identity(fv, record.id)
                if identity is not None:  # a handler that prints or returns it: masked too
                    masked = (identity.token, *masked)
                outcome = await self.runtime.invoke(spec, payload, record.id, identity)
            except Exception as exc:  # the record ends even when the platform fails to run it
                await self._late_row_done(record.id)
                await self._end_failed(record, redact_json(_platform_error(exc, record.id), masked))
                if isinstance(exc, OndoError) and masked:
                    raise _masked_error(exc, masked) from None
                raise
            finally:
                if lazy_row:
                    self._late_row_deadlines.discard(record.id)
                    self._late_rows.pop(record.id, None)
            await self._late_row_done(record.id)
            final = _apply_outcome(record, outcome, self.clock.now())
            if masked:  # before it is recorded, answered or announced
                final = _masked_record(final, masked)
            announce.invocation_failed(self.notices, final, payload)
            if record_after_answer:
                # Queued and counted by the loop's next callback, after the answer has left;
                # still before any later request is read, so every reader finds it.
                asyncio.get_running_loop().call_soon(self._after_answer, final)
            else:  # committed (with whatever finished alongside) before anyone is answered
                await self.records.write(final, alone=self._running == 1)
                self._count(final)
        finally:
            self._running -= 1
        return final

    def _identity(self, fv: FunctionVersion, invocation_id: str) -> CallerIdentity | None:
        """This invocation's own token, scoped to the function's `permissions` (none declared:
        no token). Issued just before it runs: it expires a margin after the timeout."""
        scope, tokens = fv.config.permissions, self.function_tokens
        if not scope or tokens is None or not tokens.ready:
            return None
        token = tokens.issue(
            fv.namespace, fv.name, fv.version, invocation_id, scope, fv.config.timeout
        )
        return CallerIdentity(token, self.api_url)

    def _write_late_row(self, record_id: str) -> None:
        late = self._late_rows.pop(record_id, None)
        if late is not None:
            task = self._late_writes[record_id] = self._background(self._write_row(*late))
            task.add_done_callback(lambda _t: self._late_writes.pop(record_id, None))

    async def _late_row_done(self, record_id: str) -> None:
        """Wait for the `running` row of `record_id` if one is being written (_late_writes)."""
        task = self._late_writes.pop(record_id, None)
        if task is not None:
            await asyncio.wait({task})  # its failure is logged by _write_row

    async def _write_row(self, record: InvocationRecord, payload: bytes | None) -> None:
        try:
            await self.store.repos.invocations.record(record, payload)
        except Exception:  # the final record follows; a store that fails says so there too
            log.exception("could not record that invocation %s is running", record.id)

    async def _write_records(self, records: Sequence[InvocationRecord]) -> None:
        """One group commit of final records (RecordWriter's batches)."""
        if len(records) == 1:  # one statement: no transaction to open around it
            await self.store.repos.invocations.record_many(records)
            return
        async with self.store.transaction() as uow:
            await uow.invocations.record_many(records)

    def _after_answer(self, final: InvocationRecord) -> None:
        self.records.write_soon(final)
        self._count(final)

    def _count(self, rec: InvocationRecord) -> None:
        series = self.metrics.of_function(rec.namespace, rec.function)
        series.invocations(rec.status).inc()
        series.duration.observe(rec.duration_ms / 1000.0)
        if rec.status != "succeeded":
            series.errors.inc()
        if rec.cold:
            series.cold_starts.inc()

    async def drain(self, grace_s: float) -> None:
        """Stop taking queued async work; let running invocations finish for up to `grace_s`."""
        self._closing = True
        if self._async_tasks:
            await asyncio.wait(set(self._async_tasks), timeout=grace_s)
        if self._writes:
            await asyncio.wait(set(self._writes))
        await self.records.flush()

    def close(self) -> None:
        """Stop following the change feed (after drain)."""
        self.current.close()
        if self._detach_specs is not None:
            self._detach_specs()
            self._detach_specs = None

    # --- records (each read commits queued records first: see RecordWriter) -------------

    async def invocation(self, invocation_id: str) -> InvocationRecord | None:
        await self.records.flush()
        return await self.store.repos.invocations.invocation(invocation_id)

    async def invocations(self, namespace: str, name: str, limit: int) -> list[InvocationRecord]:
        await self.records.flush()
        return await self.store.repos.invocations.invocations(namespace, name, limit)

    async def logs_after(
        self, namespace: str, name: str, after: float, limit: int
    ) -> list[InvocationRecord]:
        await self.records.flush()
        return await self.store.repos.invocations.logs_after(namespace, name, after, limit)

    async def record_final(self, record: InvocationRecord) -> None:
        """Replace an invocation's record (an action job that gave up on it ends it)."""
        await self.store.repos.invocations.record(record)


SpecKey = tuple[str, str, int]  # (namespace, name, version)
# A version as last seen, its runtime spec, and the secret values to mask in its outcomes.
CachedSpec = tuple[FunctionVersion, FunctionSpec, tuple[str, ...]]


def _who(fv: FunctionVersion) -> str:
    return f"function {fv.name!r}"


def _masked_error(exc: OndoError, masked: tuple[str, ...]) -> OndoError:
    """`exc`, or the same kind of error without the secret values its message holds."""
    text = str(exc)
    if not any(value in text for value in masked):
        return exc
    return type(exc)(redact_text(text, masked))


def _masked_record(record: InvocationRecord, masked: tuple[str, ...]) -> InvocationRecord:
    """The record without secret values in its logs, error or result."""
    result, raw = record.result, record.result_json
    if holds_secret(result, masked):
        result, raw = redact_json(result, masked), None  # the API renders `result` again
    error = redact_json(record.error, masked) if record.error is not None else None
    return replace(
        record, logs=redact_text(record.logs, masked), error=error, result=result, result_json=raw
    )


PLATFORM_CRASH_ERROR = {
    "errorMessage": "the platform crashed twice while this invocation was running, so it is"
    " not resumed again; invoke it again once the cause is fixed (see the platform log)",
    "errorType": "Ondo.PlatformCrash",
    "stackTrace": [],
    "reason": "platform_crash",
}


def _platform_error(exc: Exception, record_id: str) -> dict[str, Any]:
    """The error of an invocation the platform could not run (no worker, no slot, a bug)."""
    if isinstance(exc, OndoError):
        message, kind = str(exc), f"Ondo.{type(exc).__name__}"
    else:
        log.error("invocation %s failed in the platform", record_id, exc_info=exc)
        message = f"internal error ({type(exc).__name__}); see the platform log"
        kind = "Ondo.InternalError"
    return {"errorMessage": message, "errorType": kind, "stackTrace": [], "reason": "platform"}


def _apply_outcome(
    record: InvocationRecord, outcome: InvocationOutcome, now: float
) -> InvocationRecord:
    result: Any = None
    raw: bytes | None = None
    if outcome.status == "succeeded" and outcome.result is not None:
        raw, result = outcome.result, outcome.value  # the runtime checked it is UTF-8 JSON
    # Every field spelled out rather than dataclasses.replace, which inspects the class on each
    # call (5% of the server's time at concurrency 64); test_records checks none is forgotten.
    return InvocationRecord(
        id=record.id,
        namespace=record.namespace,
        function=record.function,
        version=record.version,
        status=outcome.status,
        mode=record.mode,
        created_at=record.created_at,
        cold=outcome.cold,
        init_ms=round(outcome.init_ms, 3),
        duration_ms=round(outcome.duration_ms, 3),
        max_memory_mb=round(outcome.max_memory_mb, 2),
        error=dict(outcome.error) if outcome.error is not None else None,
        result=result,
        logs=outcome.logs,
        trigger=record.trigger,
        finished_at=now,
        attempt=record.attempt,
        result_json=raw,
    )
