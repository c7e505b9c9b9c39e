"""Action words the rule language knows but this version cannot carry out yet.

A rule that uses one is refused when it is deployed (ActionNotAvailable), so nothing is queued
for them. Each one arrives later as its own module, which platform.py registers in place of this
one (as notify.py, webhook.py and mqtt.py did).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ondo.actions.base import ActionRequest, ActionResult, not_available

if TYPE_CHECKING:
    from ondo.actions.model import Action

WHY = {
    "bcc": "copying mail arrives with the mail source",
    "forward": "forwarding mail arrives with the mail source",
}


class UnavailableAction:
    destinations = False

    def __init__(self, kind: str) -> None:
        self.kind = kind

    def validate(self, action: Action, namespace: str) -> None:
        raise not_available(self.kind, WHY.get(self.kind, "not in this version"))

    async def perform(self, request: ActionRequest, attempt: int) -> ActionResult:
        error = str(not_available(self.kind, WHY.get(self.kind, "not in this version")))
        return ActionResult(ok=False, detail={"error": error}, retryable=False)


def unavailable_kinds() -> list[UnavailableAction]:
    """One kind for each word of the rule language this version cannot carry out."""
    return [UnavailableAction(word) for word in WHY]
