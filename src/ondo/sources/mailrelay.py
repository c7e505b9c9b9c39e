"""Relaying spooled messages to the smarthost (aiosmtplib), with retries and backoff.

Each pending message is sent to its pending recipients in one SMTP transaction. A recipient
the smarthost accepts is delivered; one it refuses with a 5xx answer is failed for good (a
problem is recorded, the message stays in the spool); anything else (a 4xx answer, a lost
connection, a timeout) is retried after a backoff that doubles from `retry_first` to
`retry_max`, until `give_up_after` has passed since the message was received.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ondo.sources.mailspool import Spool, Spooled

if TYPE_CHECKING:
    from ondo.clock import Clock
    from ondo.sources.base import SourceContext

WAKE_POLL_S = 0.2  # how soon an added message is noticed while the relayer sleeps
IDLE_WAKE_S = 60.0


@dataclass(frozen=True)
class Smarthost:
    host: str
    port: int
    tls: str  # none | starttls | tls | auto
    username: str | None
    password: str | None
    timeout: float
    verify: bool
    retry_first: float
    retry_max: float
    give_up_after: float

    @classmethod
    def from_spec(cls, spec: dict[str, Any]) -> Smarthost:
        return cls(**{k: spec[k] for k in cls.__dataclass_fields__})


@dataclass
class Outcome:
    delivered: list[str]
    failed: dict[str, str]  # recipient -> the smarthost's answer (permanent)
    retry: str | None  # why the rest must be tried again, if anything is left
    later: dict[str, str] = field(default_factory=dict)  # recipient -> a 4xx answer


async def send(smarthost: Smarthost, entry: Spooled, raw: bytes) -> Outcome:
    """One attempt at relaying `entry` to its pending recipients."""
    return await deliver(smarthost, entry.mail_from, list(entry.pending), raw)


async def deliver(smarthost: Smarthost, mail_from: str, pending: list[str], raw: bytes) -> Outcome:
    """One SMTP transaction through the smarthost (also the bcc and forward actions' way out):
    who was delivered, who was refused for good (5xx), and why the rest must be tried again."""
    import aiosmtplib

    client = aiosmtplib.SMTP(
        hostname=smarthost.host,
        port=smarthost.port,
        use_tls=smarthost.tls == "tls",
        start_tls={"starttls": True, "none": False, "tls": False}.get(smarthost.tls),
        username=smarthost.username,
        password=smarthost.password,
        timeout=smarthost.timeout,
        validate_certs=smarthost.verify,
    )
    try:
        async with client:
            refused, _ = await client.sendmail(mail_from, pending, raw)
    except aiosmtplib.SMTPRecipientsRefused as exc:
        return _refusals({r.recipient: (r.code, r.message) for r in exc.recipients}, [])
    except aiosmtplib.SMTPResponseException as exc:
        if 500 <= exc.code < 600:
            return Outcome([], {r: f"{exc.code} {exc.message}" for r in pending}, None)
        return Outcome([], {}, f"smarthost answered {exc.code} {exc.message}")
    except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
        return Outcome([], {}, f"smarthost {smarthost.host}:{smarthost.port}: {exc}")
    answers = {r: (resp.code, resp.message) for r, resp in refused.items()}
    return _refusals(answers, [r for r in pending if r not in refused])


def _refusals(answers: dict[str, tuple[int, str]], delivered: list[str]) -> Outcome:
    failed = {r: f"{code} {text}" for r, (code, text) in answers.items() if code >= 500}
    later = {r: f"{code} {text}" for r, (code, text) in answers.items() if code < 500}
    why = "; ".join(f"{r}: {answer}" for r, answer in later.items())
    return Outcome(delivered, failed, why or None, later)


class Relayer:
    """Relays the messages waiting in the spool, oldest first. It holds them in memory (read
    once at start, then `add`ed as they are acknowledged), so that a large spool of kept
    messages costs nothing per delivery."""

    def __init__(
        self, spool: Spool, smarthost: Smarthost, ctx: SourceContext, waiting: list[Spooled]
    ) -> None:
        self.spool = spool
        self.smarthost = smarthost
        self.ctx = ctx
        self.queue = {entry.ref: entry for entry in waiting if entry.pending}
        self._wake = asyncio.Event()

    def add(self, entry: Spooled) -> None:
        """A message was acknowledged: relay it now."""
        self.queue[entry.ref] = entry
        self._wake.set()

    async def run(self) -> None:
        starting = True  # on start, everything pending is tried at once: the smarthost may be back
        while True:
            self._wake.clear()
            now = self.ctx.clock.now()
            due = [e for e in self.queue.values() if starting or e.next_at <= now]
            starting = False
            for entry in sorted(due, key=lambda e: e.received_at):
                await self.attempt(entry)
                honour_cancellation()
                if not entry.pending:
                    del self.queue[entry.ref]
            later = [e.next_at for e in self.queue.values()]
            await self._sleep(min([*later, now + IDLE_WAKE_S]) - self.ctx.clock.now())

    async def attempt(self, entry: Spooled) -> None:
        raw = await asyncio.to_thread(self.spool.raw, entry.ref)
        outcome = await send(self.smarthost, entry, raw)
        entry.attempts += 1
        entry.delivered += outcome.delivered
        for recipient, answer in outcome.failed.items():
            entry.failed.append({"recipient": recipient, "error": answer})
            self.ctx.problem(f"relay of message {entry.ref} to {recipient} refused: {answer}")
        done = set(outcome.delivered) | set(outcome.failed)
        entry.pending = [r for r in entry.pending if r not in done]
        entry.last_error = outcome.retry
        if entry.pending:
            self._reschedule(entry, outcome.retry or "not relayed")
        await asyncio.to_thread(self.spool.save, entry)

    def _reschedule(self, entry: Spooled, why: str) -> None:
        now = self.ctx.clock.now()
        if now - entry.received_at >= self.smarthost.give_up_after:
            for recipient in entry.pending:
                entry.failed.append({"recipient": recipient, "error": f"gave up: {why}"})
            self.ctx.problem(
                f"relay of message {entry.ref} given up after {entry.attempts} attempts: {why}"
            )
            entry.pending = []
            return
        backoff = self.smarthost.retry_first * 2 ** (entry.attempts - 1)
        entry.next_at = now + min(backoff, self.smarthost.retry_max)
        self.ctx.problem(
            f"relay of message {entry.ref} failed (attempt {entry.attempts}), retrying: {why}"
        )

    async def _sleep(self, seconds: float) -> None:
        """Until `seconds` pass on the clock or a message is added, whichever comes first.
        Polled, with no helper tasks: cancelling the relayer then ends it at once (a pair of
        waiter tasks here once kept a cancelled relayer, and the source's stop, waiting)."""
        deadline = self.ctx.clock.now() + seconds
        while not self._wake.is_set() and (left := deadline - self.ctx.clock.now()) > 0:
            honour_cancellation()
            await self.ctx.clock.sleep(min(left, WAKE_POLL_S))


def honour_cancellation() -> None:
    """Raise CancelledError if this task was cancelled but the cancellation got lost: on Python
    3.11, `asyncio.wait_for` (which aiosmtplib uses for every reply) swallows a cancellation that
    arrives as the awaited read completes, and the relayer then ran on, cancelled, for ever (the
    source's stop waited for it)."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


async def sleep_until(clock: Clock, deadline: float) -> None:
    """`clock.sleep` may return early (a manual clock wakes its sleepers to re-check)."""
    while (left := deadline - clock.now()) > 0:
        await clock.sleep(left)
