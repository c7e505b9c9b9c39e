"""Rule state that can no longer change a decision, found for retention.

- count-window rows older than their rule's window (`count` ignores and drops them, but only
  when the same key counts again: a subject that goes quiet would keep them forever);
- throttles whose quiet period is over (the next firing is allowed with or without them);
- every count and throttle row of a rule that no longer exists or has no such window;
- fired and cancelled `for D` timers.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from ondo.backends.store.repositories.rules import StateTable, WindowRepository
from ondo.rules.definitions import CompiledRule
from ondo.rules.model import CountWindow

RuleLookup = Callable[[str], CompiledRule | None]
Prune = Callable[[str, float, int], Awaitable[int]]


@dataclass(frozen=True)
class StaleWindowRows:
    """A prunable kind (see ondo.retention) whose `before` is now: each rule's own window
    length decides which of its rows are stale. One short statement per rule and table."""

    windows: WindowRepository
    rule: RuleLookup
    name: str = "window_rows"

    async def prune(self, before: float, limit: int) -> int:
        counts = self.windows.prune_counts
        removed = await self._prune("rule_counts", counts, self._count_cutoff, before, limit)
        throttles = self.windows.prune_throttles
        left = limit - removed
        removed += await self._prune(
            "rule_throttles", throttles, self._throttle_cutoff, before, left
        )
        if removed < limit:
            removed += await self.windows.prune_timers(before, limit - removed)
        return removed

    async def _prune(
        self,
        table: StateTable,
        prune: Prune,
        cutoff_of: Callable[[str, float], float],
        now: float,
        limit: int,
    ) -> int:
        removed, rule_id = 0, ""
        while removed < limit:
            found = await self.windows.next_rule_with_rows(table, rule_id)
            if found is None:
                break
            rule_id = found
            removed += await prune(rule_id, cutoff_of(rule_id, now), limit - removed)
        return removed

    def _count_cutoff(self, rule_id: str, now: float) -> float:
        """Counted events at or before this no longer count (inf: the rule counts no more)."""
        rule = self.rule(rule_id)
        window = rule.spec.window if rule is not None else None
        return now - window.within_s if isinstance(window, CountWindow) else math.inf

    def _throttle_cutoff(self, rule_id: str, now: float) -> float:
        """Firings at or before this no longer hold the rule back (inf: it has no throttle)."""
        rule = self.rule(rule_id)
        throttle = rule.spec.throttle if rule is not None else None
        return now - throttle.per_s if throttle is not None else math.inf
