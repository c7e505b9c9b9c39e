"""What retention has deleted so far: per kind of record, the time before which rows are gone.

The retention service raises a kind's watermark each time it deletes some of it, so that a
lookup which misses can tell "deleted by retention" (older than the watermark) from "never
there". One row per kind: written once per sweep that removed something, read on misses only.
"""

from __future__ import annotations

from typing import Protocol


class WatermarkRepository(Protocol):
    async def get(self, kind: str) -> float | None:
        """Rows of `kind` older than this may have been deleted (None: none ever was)."""
        ...

    async def raise_to(self, kind: str, before: float, now: float) -> None:
        """Rows of `kind` older than `before` are being deleted (it never goes back)."""
        ...
