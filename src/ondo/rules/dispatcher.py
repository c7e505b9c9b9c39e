"""The rules dispatcher: consumes the bus as consumer `rules`, in order, at least once.

Each batch is decided through the engine (whose decisions are idempotent per rule and event) in
chunks of up to CHUNK events, each chunk one unit of work of the store, then acknowledged; a crash
between the two re-delivers the batch and changes nothing. A chunk that fails is taken again
event by event, so one bad event cannot hold up the others. The acknowledgement is written
in the background (the next batch does not wait for the bus to sync it): it only bounds what a
restart re-reads. A second loop fires `for D` timers when they fall due by the platform clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence

from ondo.backends.bus.base import Bus, StoredEvent
from ondo.clock import Clock
from ondo.rules.enforcement import TIMER_STARTED
from ondo.rules.engine import RuleEngine
from ondo.rules.isolation import reason_of

log = logging.getLogger("ondo.rules")

CONSUMER = "rules"
BATCH = 200
CHUNK = 50  # events per store transaction: bounds how long one holds the event loop
MAX_ATTEMPTS_PER_EVENT = 5  # a poison event is skipped (and logged) after this many failures
RETRY_DELAY_S = 0.5
MAX_SETTLE_ROUNDS = 20  # settle(): dispatch/fire rounds before giving up on a quiet state
TIMER_POLL_S = 1.0  # longest sleep of the timer loop (new timers and clock jumps wake it sooner)


class RuleDispatcher:
    """A platform Service: the bus consumer loop and the timer loop (and the engine's start:
    rules are loaded from the store before the first event is read)."""

    def __init__(self, bus: Bus, clock: Clock, engine: RuleEngine) -> None:
        self.bus = bus
        self.clock = clock
        self.engine = engine
        self.position = 0
        self._tasks: list[asyncio.Task[None]] = []
        self._timer_wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._lock = asyncio.Lock()  # one evaluation at a time: the loop, or a test's settle()
        self._acked = 0  # the position last written to the bus
        self._acking: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self.engine.start()
        self.position = self._acked = await self.bus.committed(CONSUMER)
        self._tasks = [
            asyncio.create_task(self._consume(), name="ondo-rules-dispatcher"),
            asyncio.create_task(self._timers(), name="ondo-rules-timers"),
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        if self._acking is not None:
            await self._acking
        if self._acked < self.position:
            await self._write_acks()
        await self.engine.stop()

    def wake_timers(self) -> None:
        self._timer_wake.set()

    # --- the bus consumer ------------------------------------------------------------------

    async def _consume(self) -> None:
        bus = self.bus
        while True:
            try:
                async with self._lock:
                    batch = await bus.read(self.position, BATCH)
                    if batch:
                        await self._dispatch_batch(batch)
                if not batch:
                    await bus.wait(self.position, timeout=1.0)
            except asyncio.CancelledError:
                raise
            except Exception:  # the bus is unwell (disk, closed): keep the loop, try again
                log.exception("reading the bus failed; retrying in %s s", RETRY_DELAY_S)
                await asyncio.sleep(RETRY_DELAY_S)

    async def _dispatch_batch(self, batch: Sequence[StoredEvent]) -> None:
        timers = False  # whether a decision may have started a timer due sooner than awaited
        for start in range(0, len(batch), CHUNK):
            chunk = batch[start : start + CHUNK]
            try:
                decided = await self.engine.dispatch_now(chunk)
                timers = timers or any(r.outcome == TIMER_STARTED for r in decided)
            except Exception:
                timers = True
                log.warning(
                    "deciding %d events together failed; taking them one at a time",
                    len(chunk),
                    exc_info=True,
                )
                for stored in chunk:
                    await self._dispatch_one(stored)
            if start + CHUNK < len(batch):
                await asyncio.sleep(0)  # let requests and invocations in between chunks
        self.position = batch[-1].seq
        self._ack_soon()
        if timers:  # else the timer loop's sleep still ends in time (and costs no store reads)
            self.wake_timers()

    def _ack_soon(self) -> None:
        """Write the position to the bus in the background; one write in flight at a time."""
        if self._acking is None or self._acking.done():
            self._acking = asyncio.create_task(self._write_acks(), name="ondo-rules-ack")

    async def _write_acks(self) -> None:
        while self._acked < self.position:
            seq = self.position
            try:
                await self.bus.ack(CONSUMER, seq)
            except Exception:  # the next batch tries again; a restart re-reads a little more
                log.warning("recording the rules position %d on the bus failed", seq, exc_info=True)
                return
            self._acked = seq

    async def _dispatch_one(self, stored: StoredEvent) -> None:
        """Decide one event; a rule that fails on it is isolated (engine.dispatch_isolating).
        What still fails is no rule's fault (the store, the bus): tried again, and recorded as
        skipped if every attempt fails, so that `ondo trace` says so."""
        reason = ""
        for attempt in range(1, MAX_ATTEMPTS_PER_EVENT + 1):
            try:
                await self.engine.dispatch_isolating(stored)
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                reason = reason_of(exc)
                log.exception(
                    "dispatching event %s (seq %d) failed, attempt %d of %d",
                    stored.event.id,
                    stored.seq,
                    attempt,
                    MAX_ATTEMPTS_PER_EVENT,
                )
                await asyncio.sleep(RETRY_DELAY_S * attempt)
        await self._record_skipped(stored, reason)

    async def _record_skipped(self, stored: StoredEvent, reason: str) -> None:
        log.error("skipping event %s (seq %d): %s", stored.event.id, stored.seq, reason)
        try:
            await self.engine.index_alone([stored])
            await self.engine.log.record_skipped(
                stored.namespace,
                stored.event.to_json_dict(),
                self.clock.now(),
                MAX_ATTEMPTS_PER_EVENT,
                reason,
            )
        except Exception:  # the store itself is what fails: the log above is all there is
            log.exception("recording that event %s was skipped failed", stored.event.id)

    async def catch_up(self) -> int:
        """Dispatch everything on the bus now (tests with the manual clock); returns the count."""
        done = 0
        async with self._lock:
            while batch := await self.bus.read(self.position, BATCH):
                await self._dispatch_batch(batch)
                done += len(batch)
        return done

    # --- the timer loop --------------------------------------------------------------------

    async def _timers(self) -> None:
        while True:
            try:
                async with self._lock:
                    await self.engine.fire_due_timers()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("firing due rule timers failed; trying again shortly")
            await self._sleep_until_next_timer()

    async def _sleep_until_next_timer(self) -> None:
        clock = self.clock
        try:
            due = await self.engine.next_timer_due()
        except Exception:  # the store is unwell: poll again after the longest sleep
            log.warning("reading when the next rule timer is due failed", exc_info=True)
            due = None
        delay = TIMER_POLL_S if due is None else min(TIMER_POLL_S, max(0.0, due - clock.now()))
        self._timer_wake.clear()
        waker = asyncio.ensure_future(self._timer_wake.wait())
        sleeper = asyncio.ensure_future(clock.sleep(delay))
        try:
            await asyncio.wait({waker, sleeper}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (waker, sleeper):
                task.cancel()

    async def replay(self, events: Sequence[StoredEvent], rule: str | None) -> int:
        """platform.replay_target: dispatch stored events again, to one rule or to all."""
        async with self._lock:
            for stored in sorted(events, key=lambda e: e.seq):
                await self.engine.dispatch_isolating(stored, only_rule=rule)
        return len(events)

    async def settle(self) -> dict[str, int]:
        """Dispatch what is on the bus, fire due timers, and again (a firing may emit events)."""
        dispatched = fired = 0
        for _round in range(MAX_SETTLE_ROUNDS):
            more = await self.catch_up()
            async with self._lock:
                timers = await self.engine.fire_due_timers()
            dispatched, fired = dispatched + more, fired + timers
            if not more and not timers:
                break
        return {"dispatched": dispatched, "timers_fired": fired}
