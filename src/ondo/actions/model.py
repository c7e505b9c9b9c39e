"""What a rule asks to be done: the action words, as the rule language and the action kinds
share them. Here, not in rules/, so that actions/ never imports rules/ (rules builds action
requests; the arrow points one way)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

ACTION_KINDS: Final = ("invoke", "emit", "notify", "bcc", "forward", "webhook", "mqtt")
# Words that parse but have no kind yet would be left out here (every word has one today).
AVAILABLE_ACTIONS: Final = frozenset(ACTION_KINDS)


@dataclass(frozen=True)
class Action:
    """One thing to do: kind is invoke|emit|notify|bcc|forward|webhook|mqtt, target the
    function, event type, recipient, URL or topic; args the JSON after `with`; cc the copies
    (notify) or the further recipients (bcc, forward: `bcc trent, carol`);
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
