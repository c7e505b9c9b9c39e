"""The audit chain's head kept outside the database: the anchor that shows a deleted tail.

The hash chain (security/audit.py) shows an entry changed or removed in the middle, but not the
newest entries removed (what is left is still a whole chain), nor a chain rewritten from some
entry on with its hashes recomputed. Both are caught by remembering, somewhere the database's
writers cannot reach, which entry was the head and what its hash was: here a small file in the
platform's data dir, rewritten after every append this process makes (`ondo audit verify`
prints the head too, for an operator to keep elsewhere and pass back with `--expect`).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from ondo.errors import ValidationError

_HASH_LENGTH = 64
AUDIT_ANCHOR = "audit.head"  # the anchor's file name in the data dir


@dataclass(frozen=True)
class Head:
    """An entry of the chain as an anchor remembers it: its number and its hash."""

    seq: int
    hash: str

    def __str__(self) -> str:
        return f"{self.seq}:{self.hash}"

    @classmethod
    def parse(cls, text: str, what: str = "the expected head") -> Head:
        """`SEQ:HASH` as `ondo audit verify` prints it."""
        seq, sep, digest = text.strip().partition(":")
        if not sep or not seq.isdigit() or not _is_hash(digest):
            raise ValidationError(
                f"{what} {text[:90]!r} is not SEQ:HASH (a number, ':', 64 hex digits);"
                " copy it from the `head` line of an earlier `ondo audit verify`"
            )
        return cls(int(seq), digest.lower())


def _is_hash(text: str) -> bool:
    return len(text) == _HASH_LENGTH and all(c in "0123456789abcdefABCDEF" for c in text)


class HeadAnchor:
    """The newest head this process appended, in `path` (0600).

    Rewritten in place, one fixed-width line at offset 0 through a descriptor kept open: a
    write-and-rename per append cost ~4 ms on the test machine's disk (more than the commit),
    this costs microseconds. Not fsynced: after a power cut the file may name an older entry,
    never a newer one (the database's commit came first)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def load(self) -> Head | None:
        """The remembered head; None when there is none yet. A damaged file raises: it is
        evidence, and verify reports it instead of starting over."""
        try:
            raw = self.path.read_text()
        except FileNotFoundError:
            return None
        if not raw.strip():  # a crash between creating and filling it: no anchor yet
            return None
        try:
            doc = json.loads(raw)
            return Head(int(doc["seq"]), str(doc["hash"]))
        except (ValueError, KeyError, TypeError) as exc:
            raise ValidationError(
                f"the audit anchor {self.path} is damaged ({exc}); it names the newest audit"
                " entry this node wrote: find out who changed it before removing it"
            ) from None

    def save(self, head: Head) -> None:
        """Remember `head` (called after its entry committed, in chain order)."""
        line = f'{{"seq": {head.seq:>20}, "hash": "{head.hash}"}}\n'.encode()
        if self._fd is None or not self.path.exists():  # first use, or the file was removed
            self.close()
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        os.pwrite(self._fd, line, 0)
        os.ftruncate(self._fd, len(line))

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
