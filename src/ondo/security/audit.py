"""The audit log: every administrative action, grant, rule change, login and refused call, in
an append-only chain of sha256 hashes that `verify` walks to find a changed or missing entry.

Appends are serialized: in this process by a lock, across processes by the store's append lock
(`AuditRepository.lock`, taken before the head is read, in the transaction that writes the next
entry), so the chain never forks; the primary key on `seq` refuses a fork even if that failed.

What the chain proves, and what it does not (docs/security.md, "Audit"): anyone who can write
to the database can also recompute hashes, so the chain alone shows tampering only up to the
newest entry an anchor outside the database remembers: the data dir's anchor file
(security/audit_anchor.py) or a head an operator kept from an earlier `ondo audit verify`.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ondo.backends.store.repositories.audit import (
    GENESIS,
    AuditEntry,
    AuditRecord,
    entry_hash,
)
from ondo.backends.store.store import Store
from ondo.security.audit_anchor import Head, HeadAnchor
from ondo.security.refusals import RefusalGate, Summary

log = logging.getLogger("ondo.audit")
VERIFY_PAGE = 1000
MAX_TEXT = 1000  # characters kept of a principal, action, resource or subject
MAX_DETAIL_BYTES = 16 * 1024  # a detail larger than this is replaced by its keys
SUPPRESSED = "audit.refusals_suppressed"  # the action of a flood summary
MAX_BATCH = 100  # entries appended in one transaction at most


@dataclass(frozen=True)
class Verification:
    """What `verify` found: how many entries it checked, the head, and the first break."""

    checked: int
    head_seq: int
    head_hash: str
    problem: str = ""  # empty: the chain is whole
    broken_seq: int | None = None  # the first entry found wrong or missing
    anchors: tuple[str, ...] = ()  # the anchors the chain was compared with

    @property
    def ok(self) -> bool:
        return not self.problem

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "checked": self.checked,
            "head": {"seq": self.head_seq, "hash": self.head_hash},
            "problem": self.problem,
            "broken_seq": self.broken_seq,
            "anchors": list(self.anchors),
        }


class AuditLog:
    """Appends records to the chain in `store` and checks it."""

    def __init__(
        self,
        store: Store,
        clock: Callable[[], float],
        anchor: HeadAnchor | None = None,
        gate: RefusalGate | None = None,
    ) -> None:
        self.store = store
        self.clock = clock
        self.anchor = anchor
        self.gate = gate
        self._lock = asyncio.Lock()
        self._pending: list[tuple[AuditRecord, asyncio.Future[AuditEntry]]] = []
        self._flush: asyncio.TimerHandle | None = None
        self._flushing: set[asyncio.Task[None]] = set()

    async def record(
        self,
        namespace: str,
        principal: str,
        action: str,
        resource: str = "",
        *,
        outcome: str = "ok",
        about: str = "",
        **detail: Any,
    ) -> AuditEntry:
        """Append one entry, stamped now; returns it with its place in the chain."""
        record = AuditRecord(
            self.clock(), namespace, principal, action, resource, outcome, about, detail
        )
        return await self.append(record)

    async def append(self, record: AuditRecord) -> AuditEntry:
        """Add `record` as the chain's next entry (as `clean_record` leaves it, so that its
        hash still matches what the store gives back).

        Group commit: records that arrive while an append is being written wait, and the
        next writer appends all of them (up to MAX_BATCH) in one transaction, in arrival
        order: a chain admits one commit at a time, so under concurrency this is what keeps
        the rate from falling to one commit per entry."""
        waiting: asyncio.Future[AuditEntry] = asyncio.get_running_loop().create_future()
        self._pending.append((clean_record(record), waiting))
        async with self._lock:
            while not waiting.done():  # else an earlier writer took it into its batch
                await self._write_batch(waiting)
        return waiting.result()

    async def _write_batch(self, own: asyncio.Future[AuditEntry]) -> None:
        batch, self._pending = self._pending[:MAX_BATCH], self._pending[MAX_BATCH:]
        try:
            # Read committed: after the lock, the head read is the newest committed one.
            entries = await self.store.atomic(
                lambda uow: _append_all(uow, [r for r, _ in batch]), isolation="read committed"
            )
        except BaseException:
            # The others' records go back, for the next of them to get the lock; own is not
            # written (its caller gets the error).
            others = [item for item in batch if item[1] is not own]
            self._pending = others + [item for item in self._pending if item[1] is not own]
            raise
        if self.anchor is not None:
            self.anchor.save(Head(entries[-1].seq, entries[-1].hash))
        for (_, waiting), entry in zip(batch, entries, strict=True):
            if not waiting.done():  # a caller that was cancelled meanwhile: written anyway
                waiting.set_result(entry)

    async def refused(
        self,
        source: str,
        namespace: str,
        principal: str,
        action: str,
        resource: str = "",
        *,
        about: str = "",
        **detail: Any,
    ) -> None:
        """Record a refused call ("denied"), unless `source` (a principal or a peer address)
        or everyone together already had their share this window: then only count it, for a
        summary entry written when the window closes (refusals.RefusalGate)."""
        if self.gate is not None and not self.gate.admit(source, namespace, principal, action):
            self._flush_later()
            return
        try:
            await self.record(
                namespace, principal, action, resource, outcome="denied", about=about, **detail
            )
        except Exception:  # the refusal stands: a store that fails must not make it a 500
            log.exception("could not record the refused call %s by %r", action, source)

    def _flush_later(self) -> None:
        if self._flush is not None or self.gate is None:
            return
        loop = asyncio.get_running_loop()
        self._flush = loop.call_later(self.gate.window_s, self._start_flush)

    def _start_flush(self) -> None:
        self._flush = None
        task = asyncio.get_running_loop().create_task(self.flush())
        self._flushing.add(task)
        task.add_done_callback(self._flushing.discard)

    async def flush(self, everything: bool = False) -> None:
        """Write the summaries of the closed windows (`everything`: of every window)."""
        if self.gate is None:
            return
        for summary in self.gate.take(everything):
            await self._summarize(summary)
        if self.gate.pending:
            self._flush_later()

    async def _summarize(self, summary: Summary) -> None:
        try:
            await self.record(
                summary.namespace,
                summary.principal,
                SUPPRESSED,
                outcome="denied",
                **summary.detail(),
            )
        except Exception:  # a flush runs on its own: the log says why the store refused it
            log.exception("could not write the summary of %d refused calls", summary.count)

    async def close(self) -> None:
        """Write what is still only counted (before the store closes)."""
        if self._flush is not None:
            self._flush.cancel()
            self._flush = None
        if self._flushing:
            await asyncio.gather(*self._flushing, return_exceptions=True)
        await self.flush(everything=True)
        async with self._lock:  # records of callers cancelled while they waited
            while self._pending:
                try:
                    await self._write_batch(self._pending[0][1])
                except Exception:
                    log.exception("could not write %d audit entries", len(self._pending))
                    return

    def remembered_head(self) -> Head | None:
        """The head the anchor file remembers (None: no anchor, or nothing appended yet)."""
        return None if self.anchor is None else self.anchor.load()

    async def verify(self, expect: Head | None = None) -> Verification:
        """Walk the whole chain: each entry's hash must be its own and link to the one before,
        sequence numbers must have no gap (a deleted entry leaves one), and each anchor (the
        data dir's file, `expect`) must name an entry that is there with the same hash."""
        anchors = [head for head in (self.remembered_head(), expect) if head is not None]
        walk = _Walk(anchors)
        while True:
            page = await self.store.repos.audit.chain(walk.expected_seq - 1, VERIFY_PAGE)
            for entry in page:
                if not walk.step(entry):
                    return walk.result()
            if len(page) < VERIFY_PAGE:
                walk.finish()
                return walk.result()


async def _append_all(uow: Any, records: list[AuditRecord]) -> list[AuditEntry]:
    """`records` as the next entries of the chain, in one transaction (`AuditLog.append`)."""
    await uow.audit.lock()
    head = await uow.audit.last()
    seq, prev = (0, GENESIS) if head is None else (head.seq, head.hash)
    entries = []
    for record in records:
        seq += 1
        entry = AuditEntry(seq, record, prev, entry_hash(seq, record, prev))
        await uow.audit.append(entry)
        entries.append(entry)
        prev = entry.hash
    return entries


class _Walk:
    """The state of one walk down the chain."""

    def __init__(self, anchors: list[Head]) -> None:
        self.anchors = {head.seq: head for head in anchors}
        self.names = tuple(str(head) for head in anchors)
        self.checked, self.expected_seq, self.prev = 0, 1, GENESIS
        self.problem = ""
        self.broken_seq: int | None = None

    def step(self, entry: AuditEntry) -> bool:
        """Check one entry; False once the chain is broken."""
        problem = _problem(entry, self.expected_seq, self.prev)
        anchor = self.anchors.get(entry.seq)
        if not problem and anchor is not None and anchor.hash != entry.hash:
            problem = (
                f"entry {entry.seq} is not the one the anchor {anchor} remembers: it, or the"
                " chain before it, was rewritten"
            )
        if problem:
            self.problem, self.broken_seq = problem, min(entry.seq, self.expected_seq)
            return False
        self.checked, self.expected_seq, self.prev = self.checked + 1, entry.seq + 1, entry.hash
        return True

    def finish(self) -> None:
        """After the last entry: an anchor past the head means the tail was deleted."""
        head_seq = self.expected_seq - 1
        beyond = [seq for seq in self.anchors if seq > head_seq]
        if beyond:
            anchor = self.anchors[min(beyond)]
            self.problem = (
                f"entries {head_seq + 1}-{anchor.seq} or more are missing (deleted): the chain"
                f" ends at {head_seq}, but the anchor {anchor} remembers entry {anchor.seq}"
            )
            self.broken_seq = head_seq + 1

    def result(self) -> Verification:
        head_seq = self.expected_seq - 1
        return Verification(
            self.checked, head_seq, self.prev, self.problem, self.broken_seq, self.names
        )


def _problem(entry: AuditEntry, expected_seq: int, prev: str) -> str:
    if entry.seq != expected_seq:
        missing = (
            f"{expected_seq}"
            if entry.seq == expected_seq + 1
            else f"{expected_seq}-{entry.seq - 1}"
        )
        return f"entry {missing} is missing (deleted): the chain jumps to {entry.seq}"
    if entry.prev_hash != prev:
        return (
            f"entry {entry.seq} does not link to entry {entry.seq - 1}: one of them was"
            " replaced, or entries before it were removed and it was renumbered"
        )
    if entry.hash != entry_hash(entry.seq, entry.record, entry.prev_hash):
        return f"entry {entry.seq} was modified: its content no longer matches its hash"
    return ""


def clean_record(record: AuditRecord) -> AuditRecord:
    """`record` as the store gives it back, so its hash still matches after a round trip:
    texts without NUL (PostgreSQL refuses it) and bounded, `detail` as JSON would read it
    (keys as text, tuples as lists, other values as their text) and bounded in size."""
    return AuditRecord(
        float(record.at),
        namespace=_text(record.namespace),
        principal=_text(record.principal),
        action=_text(record.action),
        resource=_text(record.resource),
        outcome=_text(record.outcome),
        about=_text(record.about),
        detail=_detail(record.detail),
    )


def _text(value: str) -> str:
    return str(value).replace("\x00", "\ufffd")[:MAX_TEXT]


def _detail(detail: dict[str, Any]) -> dict[str, Any]:
    try:
        raw = json.dumps(detail, default=str, ensure_ascii=False)
    except (TypeError, ValueError):  # keys that JSON cannot name, circular values
        raw = json.dumps({str(key): str(value) for key, value in detail.items()})
    if len(raw.encode()) > MAX_DETAIL_BYTES:
        keys = sorted(str(key) for key in detail)[:50]
        return {
            "cut": f"the detail was {len(raw)} characters; only its keys are kept",
            "keys": keys,
        }
    parsed: dict[str, Any] = json.loads(raw)
    return parsed
