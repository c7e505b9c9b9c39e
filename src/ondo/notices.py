"""The platform telling itself what happened: a small in-process hub of notices.

Parts of the platform (the function service, the rule book, the action queue, the source
supervisor) `publish` a notice when something worth reacting to happens: a function deployed,
an invocation failed, a rule changed, an action dead-lettered, a source disconnected. The
`ondo` source kind (sources/platform_events.py) subscribes for its namespace and puts each
notice on the bus as a CloudEvent with source `ondo`, so rules can react to the platform.

Publishing costs nothing when nobody listens in the namespace (no `ondo` source deployed
there): `publish` returns before building anything, and `listened` lets a publisher skip even
the work of gathering its data. A subscriber is called synchronously and must not block (the
source queues the notice and emits from its own task); one that raises is logged, never the
publisher's problem.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from ondo.ids import uuid7

log = logging.getLogger("ondo.notices")

FUNCTION_DEPLOYED: Final = "ondo.function.deployed"
INVOCATION_FAILED: Final = "ondo.invocation.failed"
RULE_CHANGED: Final = "ondo.rule.changed"
# A rule ondo disabled because the consent it depended on was revoked (data: owner, reason).
RULE_DISABLED: Final = "ondo.rule.disabled"
ACTION_DEAD_LETTERED: Final = "ondo.action.dead_lettered"
SOURCE_DISCONNECTED: Final = "ondo.source.disconnected"
TYPES: Final = (
    FUNCTION_DEPLOYED,
    INVOCATION_FAILED,
    RULE_CHANGED,
    RULE_DISABLED,
    ACTION_DEAD_LETTERED,
    SOURCE_DISCONNECTED,
)


@dataclass(frozen=True)
class Notice:
    """One thing that happened in `namespace`; `id` is made once, so every subscriber's event
    for it has the same id (two `ondo` sources in a namespace make one event, not two)."""

    namespace: str
    type: str
    subject: str | None
    data: Mapping[str, Any]
    hops: int = 0  # rule hops behind it (an invocation a rule made): loops stop at the limit
    id: str = field(default_factory=uuid7)


Subscriber = Callable[[Notice], None]


class Notices:
    """The hub: `publish` to the subscribers of a namespace; `subscribe` returns the detach."""

    def __init__(self) -> None:
        self._subscribers: dict[str, list[Subscriber]] = {}

    def listened(self, namespace: str) -> bool:
        """Whether anyone listens in `namespace` (else publishing there is skipped)."""
        return bool(self._subscribers.get(namespace))

    def publish(
        self,
        namespace: str,
        type: str,
        subject: str | None,
        data: Mapping[str, Any],
        hops: int = 0,
    ) -> None:
        subscribers = self._subscribers.get(namespace)
        if not subscribers:
            return
        notice = Notice(namespace, type, subject, data, hops)
        for subscriber in tuple(subscribers):
            try:
                subscriber(notice)
            except Exception:  # a subscriber's bug must not fail a deploy or an invocation
                log.exception("a subscriber of %s notices failed", namespace)

    def subscribe(self, namespace: str, subscriber: Subscriber) -> Callable[[], None]:
        subscribers = self._subscribers.setdefault(namespace, [])
        subscribers.append(subscriber)

        def unsubscribe() -> None:
            if subscriber in subscribers:
                subscribers.remove(subscriber)
            if not subscribers and self._subscribers.get(namespace) is subscribers:
                del self._subscribers[namespace]

        return unsubscribe
