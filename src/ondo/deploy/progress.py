"""What a running deploy is doing, for whoever asked to watch (`ondo deploy` on a terminal).

The deployments route sets a listener for the duration of one deploy; the steps report to it
without being handed it, so plan, apply and the layer build keep their signatures. A listener
must be safe to call from worker threads (the layer build runs in one).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from contextvars import ContextVar

Listener = Callable[[str], None]

_listener: ContextVar[Listener | None] = ContextVar("ondo_deploy_progress", default=None)


def report(step: str) -> None:
    """Tell the watcher of this deploy, if any, what happens now."""
    listener = _listener.get()
    if listener is not None:
        listener(step)


def current() -> Listener | None:
    """The listener of this deploy, to pass to code that runs outside its context."""
    return _listener.get()


@contextlib.contextmanager
def watched_by(listener: Listener) -> Iterator[None]:
    """Report this context's deploy steps to `listener`."""
    token = _listener.set(listener)
    try:
        yield
    finally:
        _listener.reset(token)
