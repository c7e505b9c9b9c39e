"""Quantities as people read them in messages."""

from __future__ import annotations

import math


def size_text(size: int) -> str:
    """Bytes in binary units: 512 B, 64 KiB, 1.5 MiB, 2 GiB.

    A size that is not a whole number of its unit is rounded up to a tenth, so a body one byte
    over a 64 KiB limit reads "64.1 KiB", never the limit itself.
    """
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if size >= scale:
            if size % scale == 0:
                return f"{size // scale} {unit}"
            return f"{math.ceil(size * 10 / scale) / 10:g} {unit}"
    return f"{size} B"


_DURATION_UNITS = (("day", 86400.0), ("hour", 3600.0), ("minute", 60.0), ("second", 1.0))


def duration_text(seconds: float) -> str:
    """A duration in the largest unit that says it in a whole number, or to the tenth:
    7 days, 36 hours, 90 minutes, 30 seconds, 1.5 seconds."""
    for unit, size in _DURATION_UNITS:
        if seconds >= size and (seconds / size).is_integer():
            count = int(seconds / size)
            return f"{count} {unit}{'' if count == 1 else 's'}"
    return f"{seconds:.3g} seconds"
