"""Flood control for audited refusals: a caller spraying bad tokens must not grow the log
without bound, nor slow the API with one database write per attempt.

Each source (a principal, or the peer address of a caller without a valid token) may have
`per_source` refusals recorded per window, and all sources together `overall`; the rest are
only counted, in memory, and written as summary entries when their window has closed. At most
`MAX_SUMMARIES` summaries are written per flush (the sources with the most refusals; the rest
are folded into one), so many sources cannot multiply the entries either.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

PER_SOURCE = 10  # refusals recorded per source and window, before counting only
OVERALL = 200  # refusals recorded per window from all sources together
WINDOW_S = 60.0
MAX_SOURCES = 10_000  # sources tracked at once; more are counted under OTHERS
MAX_SUMMARIES = 20  # summaries per flush; the other sources share one
OTHERS = "*"


@dataclass
class _Window:
    start: float
    namespace: str
    principal: str
    recorded: int = 0
    suppressed: int = 0
    actions: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Summary:
    """The refusals of one source (or of several, `sources` > 1) that were counted only."""

    source: str
    namespace: str
    principal: str
    count: int
    start: float
    end: float
    actions: dict[str, int]
    sources: int = 1

    def detail(self) -> dict[str, Any]:
        top = dict(sorted(self.actions.items(), key=lambda kv: -kv[1])[:10])
        return {
            "source": self.source,
            "count": self.count,
            "sources": self.sources,
            "window_s": round(self.end - self.start, 3),
            "actions": top,
        }


class RefusalGate:
    """Decides which refusals are recorded one by one and collects the others' counts."""

    def __init__(
        self,
        now: Callable[[], float],
        *,
        per_source: int = PER_SOURCE,
        overall: int = OVERALL,
        window_s: float = WINDOW_S,
    ) -> None:
        self.now = now
        self.per_source = per_source
        self.overall = overall
        self.window_s = window_s
        self._windows: dict[str, _Window] = {}
        self._overall_start = now()
        self._overall_recorded = 0

    def admit(self, source: str, namespace: str, principal: str, action: str) -> bool:
        """True: record this refusal; False: it was counted for a later summary."""
        now = self.now()
        if now - self._overall_start >= self.window_s:
            self._overall_start, self._overall_recorded = now, 0
        window = self._window(source, namespace, principal, now)
        if window.recorded < self.per_source and self._overall_recorded < self.overall:
            window.recorded += 1
            self._overall_recorded += 1
            return True
        window.suppressed += 1
        window.actions[action] = window.actions.get(action, 0) + 1
        return False

    def _window(self, source: str, namespace: str, principal: str, now: float) -> _Window:
        window = self._windows.get(source)
        if window is not None and now - window.start < self.window_s:
            return window
        if window is not None and window.suppressed:
            return window  # closed but not yet summarized: it keeps counting until the flush
        if window is None and len(self._windows) >= MAX_SOURCES:
            source = OTHERS
            existing = self._windows.get(OTHERS)
            if existing is not None:
                return existing
        fresh = _Window(now, namespace, principal)
        self._windows[source] = fresh
        return fresh

    @property
    def pending(self) -> bool:
        """Whether some refusals were counted and not yet summarized."""
        return any(window.suppressed for window in self._windows.values())

    def take(self, everything: bool = False) -> list[Summary]:
        """The summaries of the windows that have closed (`everything`: of all), which are
        forgotten; windows that closed with nothing counted are dropped."""
        now = self.now()
        closed = [
            (source, window)
            for source, window in self._windows.items()
            if everything or now - window.start >= self.window_s
        ]
        for source, _ in closed:
            del self._windows[source]
        counted = [(s, w) for s, w in closed if w.suppressed]
        counted.sort(key=lambda sw: -sw[1].suppressed)
        summaries = [_summary(s, w, now) for s, w in counted[:MAX_SUMMARIES]]
        if len(counted) > MAX_SUMMARIES:
            summaries.append(_folded(counted[MAX_SUMMARIES:], now))
        return summaries


def _summary(source: str, window: _Window, now: float) -> Summary:
    return Summary(
        source,
        window.namespace,
        window.principal,
        window.suppressed,
        window.start,
        now,
        dict(window.actions),
    )


def _folded(rest: list[tuple[str, _Window]], now: float) -> Summary:
    actions: dict[str, int] = {}
    for _, window in rest:
        for action, count in window.actions.items():
            actions[action] = actions.get(action, 0) + count
    return Summary(
        OTHERS,
        rest[0][1].namespace,
        "",
        sum(w.suppressed for _, w in rest),
        min(w.start for _, w in rest),
        now,
        actions,
        sources=len(rest),
    )
