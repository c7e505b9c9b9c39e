"""The one way ondo reads a duration, wherever a person writes one.

The rule language (`within 2w`, `for 10m`, `at most once per 1d`), ondo.yaml
(`async.max_event_age: 6h`), `ondo events replay --since 2h` (and its API field) and
`ondo clock advance 1h30m` all accept the same text: a number and a unit (`ms`, `s`, `m`, `h`,
`d`, `w`), or several such parts together (`1h30m`), with optional spaces between a number and
its unit or between parts, in any letter case. Where a bare number has always meant seconds
(the CLI's clock, a YAML number), the caller says so with `bare_seconds`.
"""

from __future__ import annotations

import math
import re
from typing import Final

from ondo.errors import DurationError

UNITS: Final = {
    "ms": 0.001,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
    "d": 86400.0,
    "w": 604800.0,
}
_NUMBER: Final = r"\d+(?:\.\d+)?"
# `ms` before `m`: the longest unit is tried first.
_PART: Final = re.compile(rf"\s*({_NUMBER})\s*(ms|s|m|h|d|w)\s*", re.IGNORECASE)
_BARE: Final = re.compile(rf"\s*({_NUMBER})\s*")
_SIGNED: Final = re.compile(rf"\s*-\s*{_NUMBER}")
FORMS: Final = "a number and a unit (ms, s, m, h, d or w) such as 90s, 15m, 2h, 1d or 2w"
_MAX_TEXT: Final = 100


def accepted_forms(bare_seconds: bool = False) -> str:
    """What a duration may look like, for messages and help texts."""
    more = ", or plain seconds such as 90" if bare_seconds else ""
    return f"{FORMS}, or several together such as 1h30m{more}"


def parse_duration(text: str, *, bare_seconds: bool = False) -> float:
    """`text` as a number of seconds (zero or more, finite); DurationError naming the text and
    the accepted forms otherwise. `bare_seconds`: a number without a unit is seconds."""
    shown = text if len(text) <= _MAX_TEXT else text[:_MAX_TEXT] + "…"
    if bare_seconds and (bare := _BARE.fullmatch(text)):
        return _finite(float(bare.group(1)), shown)
    parts = _parts(text)
    if parts is None:
        if _SIGNED.match(text):
            raise DurationError(f"duration {shown!r} is negative; a duration is zero or more")
        raise DurationError(
            f"duration {shown!r} is not understood; write {accepted_forms(bare_seconds)}"
        )
    return _finite(sum(float(number) * UNITS[unit.lower()] for number, unit in parts), shown)


def _parts(text: str) -> list[tuple[str, str]] | None:
    """The (number, unit) parts that make up the whole text, or None."""
    parts: list[tuple[str, str]] = []
    at = 0
    while at < len(text):
        match = _PART.match(text, at)
        if match is None or match.end() == at:
            return None
        parts.append((match.group(1), match.group(2)))
        at = match.end()
    return parts or None


def _finite(seconds: float, shown: str) -> float:
    if not math.isfinite(seconds):
        raise DurationError(f"duration {shown!r} is too long to count in seconds")
    return seconds
