"""The smtp source's spool: every accepted message on disk before it is acknowledged.

Layout, under the source's data directory (`ctx.data_dir`):

    messages/<ref>.eml   the raw message as received (with ondo's Received: header on top)
    messages/<ref>.json  its envelope and relay state: {"ref", "mail_from", "rcpt_to",
                         "received_at", "pending", "delivered", "failed", "attempts",
                         "next_at", "last_error"}

A message exists once its .eml is there: the .json is written (and fsynced) first, the .eml
last, each through a temporary file renamed into place, then the directory is fsynced. A .json
whose .eml never arrived belongs to a message that was never acknowledged, and is removed at
start. `pending` lists the recipients still to relay; a message with none left is kept for
`keep_messages` (the event's `message_ref` points at it: the actions issue forwards it from
here), then pruned. A message still pending is never pruned.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

REF_RE = re.compile(r"^[0-9a-f]{32}$")


@dataclass
class Spooled:
    """One message's envelope and relay state (the .json file)."""

    ref: str
    mail_from: str
    rcpt_to: list[str]
    received_at: float
    pending: list[str] = field(default_factory=list)
    delivered: list[str] = field(default_factory=list)
    failed: list[dict[str, str]] = field(default_factory=list)
    attempts: int = 0
    next_at: float = 0.0
    last_error: str | None = None

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> Spooled:
        return cls(**{k: obj[k] for k in cls.__dataclass_fields__ if k in obj})


def message_path(data_dir: Path, ref: str) -> Path:
    """Where the raw message `ref` (an event's `message_ref`) is kept; ValueError for a ref
    that is not one of ours (so that no caller can be led out of the spool)."""
    if not REF_RE.match(ref):
        raise ValueError(f"message_ref {ref!r} is not a spool reference (32 hex digits)")
    return data_dir / "messages" / f"{ref}.eml"


class Spool:
    """The files above; blocking I/O, meant to be called through asyncio.to_thread."""

    def __init__(self, data_dir: Path) -> None:
        self.dir = data_dir / "messages"
        self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.unreadable: list[str] = []

    def has(self, ref: str) -> bool:
        return message_path(self.dir.parent, ref).exists()

    def store(self, entry: Spooled, raw: bytes) -> None:
        """Durably keep the message and its envelope (see the module's docstring for order)."""
        self.save(entry)
        _write(message_path(self.dir.parent, entry.ref), raw)
        _sync_dir(self.dir)

    def save(self, entry: Spooled) -> None:
        _write(self.dir / f"{entry.ref}.json", json.dumps(asdict(entry)).encode())

    def raw(self, ref: str) -> bytes:
        return message_path(self.dir.parent, ref).read_bytes()

    def discard(self, ref: str) -> None:
        for suffix in (".eml", ".json"):
            with contextlib.suppress(FileNotFoundError):
                (self.dir / f"{ref}{suffix}").unlink()
        _sync_dir(self.dir)

    def entries(self) -> list[Spooled]:
        """Every message kept, oldest first; envelopes whose message never arrived are removed,
        unreadable ones set aside as <ref>.json.bad and named in `unreadable`."""
        found = []
        for path in sorted(self.dir.glob("*.json")):
            ref = path.stem
            if not REF_RE.match(ref):
                continue
            if not (self.dir / f"{ref}.eml").exists():
                path.unlink(missing_ok=True)
                continue
            try:
                found.append(Spooled.from_json(json.loads(path.read_bytes())))
            except (OSError, ValueError, TypeError, KeyError) as exc:
                path.rename(path.with_name(f"{path.name}.bad"))
                self.unreadable.append(f"spooled envelope {path.name} is unreadable ({exc})")
        return sorted(found, key=lambda e: e.received_at)

    def prune(self, older_than: float) -> int:
        """Remove relayed (or never relayed) messages received before `older_than`."""
        removed = 0
        for entry in self.entries():
            if not entry.pending and entry.received_at < older_than:
                self.discard(entry.ref)
                removed += 1
        return removed


def _write(path: Path, content: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with open(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") as file:
        file.write(content)
        file.flush()
        os.fsync(file.fileno())
    os.replace(tmp, path)


def _sync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
