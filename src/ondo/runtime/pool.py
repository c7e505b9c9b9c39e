"""The warm pool of one function version: a zygote, workers forked from it, reaped when idle."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import mmap
import os
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from ondo.deadlines import Deadlines
from ondo.errors import ConcurrencyExhausted, HandlerImportError, RuntimeUnavailable
from ondo.runtime.base import CallerIdentity, FunctionSpec, InvocationOutcome
from ondo.runtime.channel import WorkerChannel, WorkerGone
from ondo.runtime.reply import MalformedReply, WorkerReply, read_reply
from ondo.runtime.worker import Worker, describe_death
from ondo.runtime.zygote import ZYGOTE_GONE, ZygoteProcess

log = logging.getLogger("ondo.runtime")

HELLO_TIMEOUT_S = 10.0
# Spin, then sleep: when a reply is expected within half this long and nothing else is in
# flight, the pool polls the worker's socket instead of going back to the event loop to sleep in
# epoll. Waking a sleeping loop was measured at a third of a warm round trip (~18 us of ~64 us
# without HTTP); behind HTTP, warm round trips take ~110 us, hence the 400 us budget.
SPIN_BUDGET_S = 0.0004
EXIT_REPORT_TIMEOUT_S = 2.0


class WorkerHooks:
    """Where the sandbox plugs in around a worker's life (cgroups); the default does nothing."""

    def zygote_cgroups(self, pool_id: str, spec: FunctionSpec) -> list[str]:
        return []

    def adopt(self, pool_id: str, slot: int, pid: int) -> list[str]:
        return []

    def kill_tree(self, cgroups: list[str]) -> None:
        return None

    def oom_killed(self, cgroups: list[str]) -> bool:
        return False

    def peak_memory_mb(self, cgroups: list[str]) -> float:
        return 0.0

    def pool_oom_killed(self, pool_id: str) -> bool:
        return False

    def populated(self, cgroups: list[str]) -> bool:
        return False

    def forget(self, cgroups: list[str]) -> None:
        return None

    def forget_pool(self, pool_id: str) -> None:
        return None

    def close(self) -> None:
        return None


class FunctionPool:
    in_flight = 0  # invocations awaiting a worker's reply, in every pool of the process

    def __init__(
        self,
        spec: FunctionSpec,
        pool_id: str,
        zygote_config: Callable[[], dict[str, Any]],
        idle_ttl_s: float,
        hooks: WorkerHooks,
        import_timeout_s: float = 30.0,
        spare_workers: int = 0,
    ) -> None:
        self.spec = spec
        self.pool_id = pool_id
        self._zygote_config = zygote_config
        self.idle_ttl_s = idle_ttl_s
        self.import_timeout_s = import_timeout_s
        self.spare_target = spare_workers
        self.spares: list[Worker] = []  # forked and adopted ahead of need, never used yet
        self._spare_task: asyncio.Task[None] | None = None
        self.hooks = hooks
        self.zygote: ZygoteProcess | None = None
        self.idle: list[Worker] = []
        self.busy: set[Worker] = set()
        self.starting = 0
        self.closing = False
        self.next_slot = 0
        self.exits: dict[int, asyncio.Future[int]] = {}
        self.counts = {"invocations": 0, "cold_starts": 0, "timeouts": 0, "kills": 0}
        self.typical_s: float | None = None  # moving average of warm round trips
        self._prepare_lock = asyncio.Lock()
        self._idle_changed = asyncio.Event()
        self._background: set[asyncio.Task[None]] = set()
        self._reaper: asyncio.TimerHandle | None = None
        self._timeouts: Deadlines[Worker] = Deadlines(self._on_timeout)  # busy workers

    # --- zygote -------------------------------------------------------------------------

    async def prepare(self) -> None:
        async with self._prepare_lock:
            if self.zygote is not None and self.zygote.alive:
                return
            if self.closing:
                raise RuntimeUnavailable(f"{self.spec.key} is being retired")
            zygote = ZygoteProcess(self.spec.key, self._zygote_config(), self._on_exit)
            self.zygote = zygote
            try:
                await zygote.start(self.import_timeout_s)
            except RuntimeUnavailable as exc:
                await zygote.wait_dead(5.0)  # nothing of a failed start outlives it
                if self.hooks.pool_oom_killed(self.pool_id):
                    raise HandlerImportError(
                        f"{self.spec.key}: importing {self.spec.handler!r} ran out of memory "
                        f"(the version may use {self.spec.memory_mb} MB per worker); "
                        "raise `memory` or import less at module level"
                    ) from exc
                raise
            except BaseException:
                await zygote.wait_dead(5.0)
                raise
        self._refill_spares()

    def _on_exit(self, slot: int, status: int) -> None:
        if slot == ZYGOTE_GONE:
            for pending in self.exits.values():
                if not pending.done():
                    pending.set_result(ZYGOTE_GONE)
            idle, self.idle = [*self.idle, *self.spares], []
            self.spares = []
            for worker in idle:
                worker.kill("its zygote stopped")
                self._forget(worker)
            return
        future = self._exit_future(slot)
        if not future.done():
            future.set_result(status)

    def _exit_future(self, slot: int) -> asyncio.Future[int]:
        future = self.exits.get(slot)
        if future is None:
            future = asyncio.get_running_loop().create_future()
            self.exits[slot] = future
        return future

    # --- invocation ---------------------------------------------------------------------

    async def invoke(
        self, event: bytes, request_id: str, identity: CallerIdentity | None = None
    ) -> InvocationOutcome:
        if self.closing:
            raise RuntimeUnavailable(
                f"{self.spec.key} is being retired; invoke the current version"
            )
        if not self.idle and len(self.busy) + self.starting >= self.spec.concurrency:
            raise ConcurrencyExhausted(
                f"{self.spec.key} already runs {self.spec.concurrency} invocations "
                "(its concurrency); retry later or raise `concurrency`"
            )
        if self.idle:
            worker = self.idle.pop()
            self.busy.add(worker)
            return await self._run(worker, event, request_id, identity, cold=False, init_ms=0.0)
        self.starting += 1
        started = time.perf_counter()
        try:
            worker = await self._new_worker()
        finally:
            self.starting -= 1
        self.busy.add(worker)
        self._refill_spares()
        init_ms = (time.perf_counter() - started) * 1000.0
        return await self._run(worker, event, request_id, identity, cold=True, init_ms=init_ms)

    async def _new_worker(self) -> Worker:
        """A spare if one is ready (or about to be), else a fork now."""
        spawning = self._spare_task is not None and not self._spare_task.done()
        if spawning and not self.spares and self._workers() >= self.spec.concurrency:
            assert self._spare_task is not None
            await asyncio.shield(self._spare_task)  # the spare is our only capacity
        if self.spares:
            return self.spares.pop()
        return await self._spawn()

    def _workers(self) -> int:
        spawning = self._spare_task is not None and not self._spare_task.done()
        return len(self.idle) + len(self.busy) + self.starting + len(self.spares) + spawning

    # --- spares: the next cold start's fork and cgroup moves, done ahead of it ---------------

    def _refill_spares(self) -> None:
        if self.closing or self.zygote is None or not self.zygote.alive:
            return
        if self._spare_task is not None and not self._spare_task.done():
            return
        if len(self.spares) < self.spare_target and self._workers() < self.spec.concurrency:
            self._spare_task = asyncio.get_running_loop().create_task(self._make_spare())

    async def _make_spare(self) -> None:
        try:
            worker = await self._spawn()
        except Exception as exc:  # a background task: report, never raise into the loop
            log.warning("%s: could not fork a spare worker: %s", self.spec.key, exc)
            return
        if self.closing:
            self._retire_worker(worker, "retire")
            return
        self.spares.append(worker)

    async def _spawn(self) -> Worker:
        if self.zygote is None or not self.zygote.alive:
            await self.prepare()
        assert self.zygote is not None
        slot, self.next_slot = self.next_slot, self.next_slot + 1
        sock, log_fd = self.zygote.fork(slot)
        channel = WorkerChannel(sock)
        timer = channel.loop.call_later(HELLO_TIMEOUT_S, channel.close, "no hello in time")
        try:
            pid = await channel.hello
        except asyncio.CancelledError:
            channel.close("the invocation was cancelled")  # the worker exits on EOF
            os.close(log_fd)
            raise
        except WorkerGone as exc:
            os.close(log_fd)
            why = self.zygote.fork_failures.pop(slot, None) or exc.why
            raise RuntimeUnavailable(f"{self.spec.key}: could not start a worker: {why}") from exc
        finally:
            timer.cancel()
        # On a thread: the kernel's move into the worker's cgroups took 8-14 ms here after an
        # idle spell, which on the loop's thread would stall every other request meanwhile.
        adopting = asyncio.ensure_future(
            asyncio.to_thread(self.hooks.adopt, self.pool_id, slot, pid)
        )
        try:
            cgroups = await asyncio.shield(adopting)
        except asyncio.CancelledError:
            channel.close("the invocation was cancelled")  # the worker exits on EOF
            os.close(log_fd)
            adopting.add_done_callback(self._kill_adopted)  # and nothing it started outlives it
            raise
        return self._attach(slot, pid, channel, log_fd, cgroups)

    def _kill_adopted(self, adopting: asyncio.Future[list[str]]) -> None:
        if not adopting.cancelled() and adopting.exception() is None:
            self.hooks.kill_tree(adopting.result())

    def _attach(
        self, slot: int, pid: int, channel: WorkerChannel, log_fd: int, cgroups: list[str]
    ) -> Worker:
        worker = Worker(
            slot=slot,
            pid=pid,
            channel=channel,
            log_fd=log_fd,
            log_map=mmap.mmap(log_fd, os.fstat(log_fd).st_size, prot=mmap.PROT_READ),
            exit_status=self._exit_future(slot),
            cgroups=cgroups,
        )
        with contextlib.suppress(OSError):
            worker.pidfd = os.pidfd_open(pid)
        channel.on_close = lambda: self._on_channel_closed(worker)
        return worker

    def _on_channel_closed(self, worker: Worker) -> None:
        """A warm worker died between invocations: it must not be handed out again."""
        for waiting in (self.idle, self.spares):
            if worker in waiting:
                waiting.remove(worker)
                self._retire_worker(worker, "died idle")

    async def _run(
        self,
        worker: Worker,
        event: bytes,
        request_id: str,
        identity: CallerIdentity | None,
        cold: bool,
        init_ms: float,
    ) -> InvocationOutcome:
        self.counts["invocations"] += 1
        self.counts["cold_starts"] += cold
        started = time.perf_counter()
        header: dict[str, Any] = {"id": request_id}
        if identity is not None:  # per invocation: a zygote's workers serve many
            header["ondo"] = {"token": identity.token, "api_url": identity.api_url}
        reply = worker.channel.request(header, event)
        self._timeouts.add(worker, self.spec.timeout_s)
        FunctionPool.in_flight += 1
        try:
            if self._expect_soon():
                worker.channel.spin(SPIN_BUDGET_S)
            header, body = await reply
        except WorkerGone as gone:
            return await self._death(worker, gone.why, request_id, cold, init_ms, started)
        except asyncio.CancelledError:
            self._abandon(worker)
            raise
        finally:
            FunctionPool.in_flight -= 1
            self._timeouts.discard(worker)
        if not cold:
            took = time.perf_counter() - started
            self.typical_s = took if self.typical_s is None else 0.8 * self.typical_s + 0.2 * took
        worker.invocations += 1
        try:
            checked = read_reply(header, body, request_id)
        except MalformedReply as bad:
            worker.channel.violated(bad.why)
            return await self._death(worker, bad.why, request_id, cold, init_ms, started)
        if checked.fatal:
            return await self._death(worker, "memory", request_id, cold, init_ms, started, checked)
        outcome = _outcome_from_reply(checked, worker, cold, init_ms)
        self._release(worker)
        return outcome

    def _expect_soon(self) -> bool:
        """Worth spinning for: this is the only invocation in flight in the process (so no other
        reply is delayed), and this version's warm replies come well within the budget."""
        typical = self.typical_s
        return FunctionPool.in_flight == 1 and typical is not None and typical < SPIN_BUDGET_S / 2

    def _abandon(self, worker: Worker) -> None:
        """The caller went away mid-invocation: the worker cannot be reused, its slot can."""
        self.busy.discard(worker)
        self._idle_changed.set()
        self._retire_worker(worker, "cancelled")

    def _on_timeout(self, worker: Worker) -> None:
        self.counts["timeouts"] += 1
        self.hooks.kill_tree(worker.cgroups)
        worker.kill("timeout")

    async def _death(
        self,
        worker: Worker,
        why: str,
        request_id: str,
        cold: bool,
        init_ms: float,
        started: float,
        reply: WorkerReply | None = None,
    ) -> InvocationOutcome:
        duration_ms = (time.perf_counter() - started) * 1000.0
        self.counts["kills"] += 1
        if worker.killed_for is None:
            self.hooks.kill_tree(worker.cgroups)
            worker.kill("protocol" if worker.channel.protocol_error else "died")
        status = await self._wait_exit(worker)
        await self._wait_tree_gone(worker)
        self.busy.discard(worker)  # only now: its slot is free once the process is gone
        self._idle_changed.set()
        self._refill_spares()
        logs = worker.read_logs()
        oom = self.hooks.oom_killed(worker.cgroups) or (reply is not None and reply.fatal)
        peak_mb = self.hooks.peak_memory_mb(worker.cgroups)
        self._forget(worker)
        if worker.killed_for == "timeout":
            outcome = _timed_out(self.spec, request_id, cold, init_ms, duration_ms, logs)
            return replace(outcome, max_memory_mb=peak_mb)
        if worker.killed_for == "protocol":
            return _unreadable(request_id, why, cold, init_ms, duration_ms, peak_mb, logs)
        death = describe_death(status, oom)
        if worker.killed_for == "retire":
            death.update(signal="SIGKILL", reason="the runtime shut down before it finished")
        error = {
            "errorMessage": _death_message(request_id, death),
            "errorType": death["errorType"],
            "stackTrace": [],
            **{k: v for k, v in death.items() if k != "errorType"},
        }
        if reply is not None and reply.error is not None:
            error["stackTrace"] = reply.error["stackTrace"]
        return InvocationOutcome("killed", None, error, cold, init_ms, duration_ms, peak_mb, logs)

    async def _wait_tree_gone(self, worker: Worker) -> None:
        """After a kill, report only once nothing the worker started is left running."""
        deadline = time.monotonic() + EXIT_REPORT_TIMEOUT_S
        while self.hooks.populated(worker.cgroups) and time.monotonic() < deadline:
            await asyncio.sleep(0.002)

    async def _wait_exit(self, worker: Worker) -> int | None:
        try:
            async with asyncio.timeout(EXIT_REPORT_TIMEOUT_S):
                return await asyncio.shield(worker.exit_status)
        except TimeoutError:
            log.warning("%s: no exit report for worker %d", self.spec.key, worker.pid)
            return None

    def _release(self, worker: Worker) -> None:
        self.busy.discard(worker)
        self._idle_changed.set()
        if self.closing or worker.killed_for is not None:
            self._retire_worker(worker, "retire")
            return
        loop = asyncio.get_running_loop()
        worker.idle_since = loop.time()
        self.idle.append(worker)  # most recently used last: it is handed out first
        if self._reaper is None:
            self._reaper = loop.call_at(worker.idle_since + self.idle_ttl_s, self._reap_idle)

    def _reap_idle(self) -> None:
        """Scale down: retire the workers idle for the TTL (the oldest sit at the front)."""
        self._reaper = None
        loop = asyncio.get_running_loop()
        while self.idle and self.idle[0].idle_since + self.idle_ttl_s <= loop.time():
            self._retire_worker(self.idle.pop(0), "idle")
        self._refill_spares()
        if self.idle:
            self._reaper = loop.call_at(self.idle[0].idle_since + self.idle_ttl_s, self._reap_idle)

    def _retire_worker(self, worker: Worker, why: str) -> None:
        self.hooks.kill_tree(worker.cgroups)
        worker.kill(why)
        task = asyncio.get_running_loop().create_task(self._collect(worker))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _collect(self, worker: Worker) -> None:
        await self._wait_exit(worker)
        self._forget(worker)

    def _forget(self, worker: Worker) -> None:
        if worker.forgotten:
            return
        worker.forgotten = True
        self.exits.pop(worker.slot, None)
        worker.release_resources()
        self.hooks.forget(worker.cgroups)

    # --- lifecycle ----------------------------------------------------------------------

    async def close(self, grace_s: float) -> None:
        """Stop taking invocations, let running ones finish up to grace_s, then kill everything."""
        self.closing = True
        if self._reaper is not None:
            self._reaper.cancel()
        deadline = time.monotonic() + grace_s
        while (self.busy or self.starting) and time.monotonic() < deadline:
            self._idle_changed.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(deadline - time.monotonic()):
                    await self._idle_changed.wait()
        if self._spare_task is not None:
            self._spare_task.cancel()
        for worker in [*self.idle, *self.spares, *self.busy]:
            self.hooks.kill_tree(worker.cgroups)
            worker.kill("retire")
        self.idle.clear()
        self.spares.clear()
        if self.zygote is not None:
            self.zygote.kill()
            await self.zygote.wait_dead(5.0)
        for worker in list(self.busy):
            self._forget(worker)
        self._timeouts.close()

    def status(self) -> dict[str, Any]:
        zygote = self.zygote
        return {
            "zygote": bool(zygote and zygote.alive),
            "zygote_pid": zygote.pid if zygote else None,
            "host_uid": zygote.config.get("host_uid") if zygote else None,
            "sandbox": zygote.layers if zygote else {},
            "warm": len(self.idle),
            "spare": len(self.spares),
            "spare_pids": [worker.pid for worker in self.spares],
            "busy": len(self.busy),
            "starting": self.starting,
            "concurrency": self.spec.concurrency,
            **self.counts,
        }


def _outcome_from_reply(
    reply: WorkerReply, worker: Worker, cold: bool, init_ms: float
) -> InvocationOutcome:
    return InvocationOutcome(
        status="succeeded" if reply.succeeded else "failed",
        result=reply.result,
        error=reply.error,
        cold=cold,
        init_ms=init_ms,
        duration_ms=reply.duration_ms,
        max_memory_mb=reply.max_rss_kb / 1024.0,
        logs=worker.read_logs(),
        value=reply.value,
    )


def _unreadable(
    request_id: str,
    why: str,
    cold: bool,
    init_ms: float,
    duration_ms: float,
    peak_mb: float,
    logs: str,
) -> InvocationOutcome:
    """The worker broke the protocol (it was killed): the invocation failed, saying how."""
    reason = f"the worker sent a reply the platform cannot read: {why}"
    error: dict[str, Any] = {
        "errorMessage": f"RequestId: {request_id} Error: {reason}; the worker was stopped",
        "errorType": "Runtime.InvalidReply",
        "stackTrace": [],
        "signal": "SIGKILL",
        "exitCode": None,
        "reason": reason,
    }
    return InvocationOutcome("failed", None, error, cold, init_ms, duration_ms, peak_mb, logs)


def _timed_out(
    spec: FunctionSpec, request_id: str, cold: bool, init_ms: float, duration_ms: float, logs: str
) -> InvocationOutcome:
    error = {
        "errorMessage": f"RequestId: {request_id} Task timed out after {spec.timeout_s:.2f} s",
        "errorType": "Sandbox.Timedout",
        "stackTrace": [],
        "signal": "SIGKILL",
        "reason": "timeout",
    }
    return InvocationOutcome("timed_out", None, error, cold, init_ms, duration_ms, 0.0, logs)


def _death_message(request_id: str, death: dict[str, Any]) -> str:
    how = f"signal {death['signal']}" if death["signal"] else f"exit code {death['exitCode']}"
    return f"RequestId: {request_id} Error: Runtime exited with {how} ({death['reason']})"
