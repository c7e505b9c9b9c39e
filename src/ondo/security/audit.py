"""The audit log: every administrative action, grant, rule change, login and refused call, in
an append-only chain of sha256 hashes that `verify` walks to find a changed or missing entry.

Appends are serialized: in this process by a lock, across processes by the store's serializable
transaction (the head is read and the next entry written in one), so the chain never forks.
"""

from __future__ import annotations

import asyncio
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

log = logging.getLogger("ondo.audit")
VERIFY_PAGE = 1000


@dataclass(frozen=True)
class Verification:
    """What `verify` found: how many entries it checked and the first break, if any."""

    checked: int
    head_seq: int
    head_hash: str
    problem: str = ""  # empty: the chain is whole

    @property
    def ok(self) -> bool:
        return not self.problem

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "checked": self.checked,
            "head": {"seq": self.head_seq, "hash": self.head_hash},
            "problem": self.problem,
        }


class AuditLog:
    """Appends records to the chain in `store` and checks it."""

    def __init__(self, store: Store, clock: Callable[[], float]) -> None:
        self.store = store
        self.clock = clock
        self._lock = asyncio.Lock()

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
        async def body(uow: Any) -> AuditEntry:
            head = await uow.audit.last()
            seq, prev = (1, GENESIS) if head is None else (head.seq + 1, head.hash)
            entry = AuditEntry(seq, record, prev, entry_hash(seq, record, prev))
            await uow.audit.append(entry)
            return entry

        async with self._lock:
            entry: AuditEntry = await self.store.atomic(body)
        return entry

    async def verify(self) -> Verification:
        """Walk the whole chain: each entry's hash must be its own, and link to the one before;
        sequence numbers must have no gap (a deleted entry leaves one)."""
        checked, expected_seq, prev = 0, 1, GENESIS
        while True:
            page = await self.store.repos.audit.chain(expected_seq - 1, VERIFY_PAGE)
            for entry in page:
                problem = _problem(entry, expected_seq, prev)
                if problem:
                    return Verification(checked, expected_seq - 1, prev, problem)
                checked, expected_seq, prev = checked + 1, entry.seq + 1, entry.hash
            if len(page) < VERIFY_PAGE:
                return Verification(checked, expected_seq - 1, prev)


def _problem(entry: AuditEntry, expected_seq: int, prev: str) -> str:
    if entry.seq != expected_seq:
        missing = (
            f"{expected_seq}"
            if entry.seq == expected_seq + 1
            else f"{expected_seq}-{entry.seq - 1}"
        )
        return f"entry {missing} is missing (deleted): the chain jumps to {entry.seq}"
    if entry.prev_hash != prev:
        return f"entry {entry.seq} does not link to entry {entry.seq - 1} (one was replaced)"
    if entry.hash != entry_hash(entry.seq, entry.record, entry.prev_hash):
        return f"entry {entry.seq} was modified: its content no longer matches its hash"
    return ""
