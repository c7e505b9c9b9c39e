"""Identifiers that sort by creation time: UUID version 7 (RFC 9562).

Invocation, event and enforcement ids are primary keys. Random ones (uuid4) land on a random
B-tree page each, so a commit of N rows dirties about N index pages; time-ordered ones land
together at the right edge of the index. A UUIDv7 is a 48-bit Unix millisecond timestamp, the
version and variant bits, and 74 random bits: as unguessable across calls as it needs to be,
and still a UUID wherever one is expected (AWS-style request ids).
"""

from __future__ import annotations

import os
import time

_RAND_A = (1 << 12) - 1
_RAND_B = (1 << 62) - 1


def uuid7_hex() -> str:
    """32 hex digits, time-ordered to the millisecond."""
    millis = time.time_ns() // 1_000_000 & ((1 << 48) - 1)
    rand = int.from_bytes(os.urandom(10), "big")  # 80 bits, 74 of them used
    value = millis << 80 | 0x7 << 76 | (rand >> 62 & _RAND_A) << 64 | 0b10 << 62 | rand & _RAND_B
    return f"{value:032x}"


def uuid7() -> str:
    """The canonical 8-4-4-4-12 form."""
    h = uuid7_hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def uuid7_time(text: str) -> float | None:
    """When a UUIDv7 (either form) was made, in seconds since the epoch; None for anything else
    (ids chosen by people or other systems carry no time)."""
    digits = text.replace("-", "").lower()
    if len(digits) != 32 or digits[12] != "7" or digits[16] not in "89ab":
        return None
    try:
        value = int(digits, 16)
    except ValueError:
        return None
    return (value >> 80) / 1000.0
