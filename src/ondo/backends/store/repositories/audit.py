"""The audit log: an append-only, hash-chained list of who did what (security/audit.py)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, Protocol

GENESIS = "0" * 64  # the previous hash of the first entry


@dataclass(frozen=True)
class AuditRecord:
    """One thing that happened, before the log gives it a place in the chain."""

    at: float
    namespace: str
    principal: str
    action: str  # e.g. "deploy", "rule.create", "grant.revoke", "login", "authz.denied"
    resource: str  # e.g. "rule:bp-alert", "function:hello", "grant:g_…", "" for none
    outcome: str  # "ok", "denied", "failed"
    about: str = ""  # the data subject the action concerns, if any
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class AuditEntry:
    """An entry of the chain: its record, its place and the hashes that link it."""

    seq: int
    record: AuditRecord
    prev_hash: str
    hash: str

    def to_json(self) -> dict[str, Any]:
        r = self.record
        return {
            "seq": self.seq,
            "at": r.at,
            "namespace": r.namespace,
            "principal": r.principal,
            "action": r.action,
            "resource": r.resource,
            "outcome": r.outcome,
            "about": r.about,
            "detail": r.detail,
            "prev_hash": self.prev_hash,
            "hash": self.hash,
        }


def entry_hash(seq: int, record: AuditRecord, prev_hash: str) -> str:
    """sha256 over the previous hash and the entry's canonical JSON: changing, inserting or
    removing any earlier entry changes every hash after it."""
    body = json.dumps(
        [
            seq,
            repr(float(record.at)),
            record.namespace,
            record.principal,
            record.action,
            record.resource,
            record.outcome,
            record.about,
            record.detail,
        ],
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )
    return hashlib.sha256(f"{prev_hash}\n{body}".encode()).hexdigest()


class AuditRepository(Protocol):
    """The chain in the store. `append` must run in a transaction that serializes appends."""

    async def lock(self) -> None:
        """Take the lock that serializes appends, held until the transaction ends (every
        process's appends: the head read after it is the newest committed one)."""
        ...

    async def last(self) -> AuditEntry | None:
        """The newest entry (the head of the chain), or None when the log is empty."""
        ...

    async def append(self, entry: AuditEntry) -> None: ...

    async def listing(
        self,
        namespace: str | None,
        *,
        about: str | None = None,
        principal: str | None = None,
        involving: str | None = None,
        after_seq: int | None = None,
        limit: int = 100,
    ) -> list[AuditEntry]:
        """Entries in chain order, filtered (None: any): `involving` X keeps those whose
        principal or subject is X. With `after_seq`, the first `limit` after it; without,
        the newest `limit`."""
        ...

    async def at(self, seq: int) -> AuditEntry | None:
        """The entry numbered `seq`, if it is there."""
        ...

    async def chain(self, after_seq: int, limit: int) -> list[AuditEntry]:
        """Every entry after `after_seq`, in order, `limit` at a time (for verification)."""
        ...
