"""The rule book announces each change of a rule (`ondo.rule.changed`) to the platform's hub."""

from __future__ import annotations

from ondo.notices import RULE_CHANGED, Notice
from tests.unit.rules_engine.conftest import Harness


def test_each_change_of_a_rule_is_announced_once(harness: Harness) -> None:
    heard: list[Notice] = []
    platform = harness.platform
    detach = platform.notices.subscribe("default", heard.append)
    assert platform.rules.book.notices is platform.notices  # wired by platform.py
    book = platform.rules.book
    harness.add("on order.placed do emit order.seen", name="seen")

    async def changes() -> None:
        again = book.prepare("default", "admin", name="seen", text="on order.paid do emit x.y")
        await book.add(again, replace_existing=True)
        await book.set_enabled("default", "seen", False)
        await book.set_enabled("default", "seen", False)  # already disabled: no change
        await book.set_enabled("default", "seen", True)
        await book.delete("default", "seen")

    harness.run(changes)
    detach()
    harness.add("on order.placed do emit order.seen", name="unheard")
    assert {n.type for n in heard} == {RULE_CHANGED}
    assert [(n.subject, n.data["change"]) for n in heard] == [
        ("seen", "created"),
        ("seen", "updated"),
        ("seen", "disabled"),
        ("seen", "enabled"),
        ("seen", "deleted"),
    ]
    assert heard[1].data["text"] == "on order.paid do emit x.y"
