"""When a schedule ticks: 5-field cron expressions in a time zone, or a fixed rate.

Cron ticks follow the wall clock of the schedule's time zone, as EventBridge Scheduler's do:
the expression is walked over local wall times (croniter, on naive datetimes, so croniter's own
DST handling never applies), and each wall time becomes one instant. On the spring-forward day a
wall time that does not exist (02:30 in Europe/Berlin on the last Sunday of March) is skipped;
on the fall-back day a wall time that happens twice fires once, at its first occurrence.

Rate ticks are the multiples of the period since the Unix epoch (`rate(5 minutes)` ticks at
:00, :05, … UTC), so every process and every restart agrees on them without stored state.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final
from zoneinfo import ZoneInfo

from ondo.durations import parse_duration
from ondo.errors import DurationError

# How many wall times a cron walk may look at before giving up: enough for any expression that
# fires at all (croniter itself gives up on Feb 30 after searching some years).
MAX_WALK: Final = 1000
RATE_RE: Final = re.compile(
    r"^\s*rate\(\s*(\d+)\s+(minute|minutes|hour|hours|day|days)\s*\)\s*$", re.IGNORECASE
)
RATE_UNITS: Final = {"minute": 60, "hour": 3600, "day": 86400}
CRON_ALIASES: Final = ("@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight")
CRON_ALIASES_HOURLY: Final = (*CRON_ALIASES, "@hourly")


class TickError(ValueError):
    """Raised when a cron expression or a rate cannot be a schedule; the message says why."""


def parse_rate(text: str) -> int:
    """`rate(N minutes|hours|days)` (EventBridge Scheduler) or a duration (`90s`, `5m`, `1h`) as
    whole seconds, one or more."""
    match = RATE_RE.match(text)
    if match is not None:
        value, unit = int(match.group(1)), match.group(2).lower().rstrip("s")
        seconds = value * RATE_UNITS[unit]
    elif text.strip().lower().startswith("rate"):
        raise TickError(
            f"{text!r} is not a rate; write rate(N minutes), rate(N hours) or rate(N days)"
        )
    else:
        try:
            exact = parse_duration(text)
        except DurationError as exc:
            raise TickError(
                f"{text!r} is not a rate; write rate(5 minutes) or a duration such as 30s or 1h"
            ) from exc
        if exact != math.floor(exact):
            raise TickError(f"rate {text!r} must be a whole number of seconds")
        seconds = int(exact)
    if seconds < 1:
        raise TickError(f"rate {text!r} must be at least one second")
    return seconds


def check_cron(expression: str) -> None:
    """Refuse what is not a 5-field cron expression (or an @daily-style alias) croniter reads."""
    from croniter import CroniterBadCronError, croniter  # type: ignore[import-untyped]

    text = expression.strip()
    if not text.startswith("@") and len(text.split()) != 5:
        raise TickError(
            f"cron {expression!r} has {len(text.split())} fields; write 5: minute hour"
            " day-of-month month day-of-week, e.g. '0 9 * * 1-5'"
        )
    if text.startswith("@") and text.lower() not in CRON_ALIASES_HOURLY:
        raise TickError(f"cron {expression!r}: known aliases are {', '.join(CRON_ALIASES_HOURLY)}")
    try:
        croniter(text)
    except (CroniterBadCronError, ValueError) as exc:
        raise TickError(f"cron {expression!r} is not valid: {exc}") from exc


@dataclass(frozen=True)
class Ticks:
    """A schedule's tick instants (epoch seconds): cron in `timezone`, or every `every_s`."""

    cron: str | None
    every_s: int | None
    timezone: str

    @classmethod
    def from_spec(cls, spec: dict[str, Any]) -> Ticks:
        every = spec.get("every_s")
        return cls(spec.get("cron"), int(every) if every else None, spec.get("timezone", "UTC"))

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def after(self, t: float) -> float | None:
        """The first tick strictly after `t`; None when there is none (a cron that never fires)."""
        if self.every_s is not None:
            return float((math.floor(t / self.every_s) + 1) * self.every_s)
        return self._walk(t, forward=True)

    def at_or_before(self, t: float) -> float | None:
        """The last tick at or before `t` (None if there is none within the walk)."""
        if self.every_s is not None:
            return float(math.floor(t / self.every_s) * self.every_s)
        return self._walk(t + 1.0, forward=False)

    def _walk(self, t: float, forward: bool) -> float | None:
        from croniter import CroniterBadDateError, croniter

        zone = self.zone
        start = datetime.fromtimestamp(t, zone).replace(tzinfo=None)
        walk = croniter(self.cron, start)
        try:
            for _ in range(MAX_WALK):
                wall: datetime = walk.get_next(datetime) if forward else walk.get_prev(datetime)
                instant = _instant(wall, zone)
                if instant is None:
                    continue  # skipped by the spring-forward jump
                if (instant > t) if forward else (instant < t):
                    return instant
        except CroniterBadDateError:
            return None
        return None


def _instant(wall: datetime, zone: ZoneInfo) -> float | None:
    """The first instant showing `wall` in `zone`; None when the wall time does not exist."""
    aware = wall.replace(tzinfo=zone, fold=0)
    if aware.astimezone(UTC).astimezone(zone).replace(tzinfo=None) != wall:
        return None
    return aware.timestamp()


def rfc3339(t: float) -> str:
    """`t` as RFC 3339 UTC: whole seconds as `…:00Z`, otherwise with microseconds."""
    moment = datetime.fromtimestamp(t, UTC)
    text = moment.isoformat(timespec="seconds" if t == math.floor(t) else "microseconds")
    return text.replace("+00:00", "Z")


def from_rfc3339(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def as_datetime(t: float) -> datetime:
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(seconds=t)
