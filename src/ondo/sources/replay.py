"""Signed requests already seen: what refuses a captured webhook sent again (http_hmac.py)."""

from __future__ import annotations


class ReplayGuard:
    """Signatures taken within their window, each kept until its timestamp's window ends, at
    most `max_entries` (the oldest go first: a flood cannot grow memory)."""

    def __init__(self, max_entries: int = 100_000) -> None:
        self._until: dict[bytes, float] = {}
        self._max = max_entries

    def first(self, signature: bytes, until: float, now: float) -> bool:
        """Whether `signature` is new (then remember it until `until`)."""
        self._forget(now)
        if signature in self._until:
            return False
        if len(self._until) >= self._max:
            del self._until[next(iter(self._until))]
        self._until[signature] = until
        return True

    def _forget(self, now: float) -> None:
        while self._until:
            oldest, until = next(iter(self._until.items()))
            if until >= now:
                return
            del self._until[oldest]
