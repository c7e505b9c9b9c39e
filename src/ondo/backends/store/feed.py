"""Delivering change notifications to this process's subscribers (every engine uses it; the
PostgreSQL engine feeds it from LISTEN as well, so other processes' changes arrive the same way)."""

from __future__ import annotations

import logging
from collections.abc import Callable

from ondo.backends.store.base import EVERYTHING, ChangeCallback

log = logging.getLogger("ondo.store")


class LocalFeed:
    def __init__(self) -> None:
        self._subscribers: dict[str, list[ChangeCallback]] = {}

    def subscribe(self, topic: str, callback: ChangeCallback) -> Callable[[], None]:
        callbacks = self._subscribers.setdefault(topic, [])
        callbacks.append(callback)

        def detach() -> None:
            if callback in callbacks:
                callbacks.remove(callback)

        return detach

    def deliver(self, topic: str, key: str) -> None:
        for callback in list(self._subscribers.get(topic, ())):
            try:
                callback(key)
            except Exception:  # one broken cache must not stop the others hearing of it
                log.exception("a subscriber of %r failed on the change of %r", topic, key)

    def deliver_everything(self) -> None:
        """Notifications may have been missed (a reconnect): every cache drops all it holds."""
        for topic in list(self._subscribers):
            self.deliver(topic, EVERYTHING)
