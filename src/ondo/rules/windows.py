"""Rule windows: count windows, sustain (`for D`) timers and throttles, decided over the store.

Each function runs in the caller's unit of work (`Store.atomic`), so the engine updates window
state and writes the enforcement record that depends on it atomically: a crash keeps both or
neither, a re-delivered event finds its decision already recorded, and two processes deciding
the same window are serialized by the store (one of them retried on the state the other left).

Time is the platform clock at dispatch time (not the event's `time` attribute), so windows behave
the same for late or clock-skewed producers and tests with the manual clock are deterministic.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ondo.backends.store.repositories.rules import Timer, WindowRepository


@dataclass(frozen=True)
class CountResult:
    count: int  # events in the window after this one (before any reset)
    reached: bool  # the count hit the threshold: fire, and the key's count was reset


async def count(
    windows: WindowRepository,
    rule_id: str,
    key: str,
    event_uid: str,
    now: float,
    threshold: int,
    within_s: float,
) -> CountResult:
    """Count one event for (rule, key) in the sliding window; reset the key when it fires."""
    seen = await windows.add_count(rule_id, key, event_uid, now, now - within_s)
    if seen < threshold:
        return CountResult(seen, False)
    await windows.reset_count(rule_id, key)
    return CountResult(seen, True)


async def throttle_allows(
    windows: WindowRepository, rule_id: str, key: str, now: float, per_s: float
) -> tuple[bool, float | None]:
    """(allowed, last firing time); an allowed firing is remembered as the new last one."""
    last = await windows.last_fired(rule_id, key)
    if last is not None and now - last < per_s:
        return False, last
    await windows.set_last_fired(rule_id, key, now)
    return True, last


async def start_timer(
    windows: WindowRepository,
    rule_id: str,
    key: str,
    now: float,
    for_s: float,
    event: dict[str, Any],
) -> tuple[Timer, bool]:
    """(timer, started): a new timer due at now + for_s, or the one already pending for the key."""
    existing = await windows.pending_timer(rule_id, key)
    if existing is not None:
        return existing, False
    return await windows.add_timer(rule_id, key, now, now + for_s, event), True


async def cancel_timer(windows: WindowRepository, rule_id: str, key: str) -> Timer | None:
    """Cancel the pending timer of (rule, key), if any; returns what was cancelled."""
    existing = await windows.pending_timer(rule_id, key)
    if existing is not None:
        await windows.set_timer_status(existing.id, "cancelled")
    return existing
