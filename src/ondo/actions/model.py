"""What a rule asks to be done: the action words, as the rule language and the action kinds
share them. Here, not in rules/, so that actions/ never imports rules/ (rules builds action
requests; the arrow points one way)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

ACTION_KINDS: Final = ("invoke", "emit", "notify", "bcc", "forward", "webhook", "mqtt")
# The others parse; the engine refuses them until their kind exists (bcc, forward: mail).
AVAILABLE_ACTIONS: Final = frozenset({"invoke", "emit", "notify", "webhook", "mqtt"})


@dataclass(frozen=True)
class Action:
    """One thing to do: kind is invoke|emit|notify|bcc|forward|webhook|mqtt, target the
    function, event type, recipient, URL or topic; args the JSON after `with`; cc the copies;
    saying the message template of a notification (`saying "…"`)."""

    kind: str
    target: str
    args: Mapping[str, Any] | None = None
    cc: tuple[str, ...] = ()
    saying: str | None = None

    @property
    def available(self) -> bool:
        """False for action words this version parses but cannot carry out yet."""
        return self.kind in AVAILABLE_ACTIONS
