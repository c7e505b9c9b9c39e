"""notify through real Apprise to a real HTTP server (Apprise's json:// service): who receives
what, the per-channel deliveries, retrying only the channels not reached, and validation."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from ondo.actions.base import ActionRequest, ActionResult
from ondo.actions.contacts import Directory, declared
from ondo.actions.model import Action
from ondo.actions.notify import NotifyAction
from ondo.backends.store import open_store
from ondo.backends.store.repositories.sources import StoredContact, StoredGroup
from ondo.clock import ManualClock
from ondo.errors import RuleError
from tests.http_capture import CaptureServer, capture
from tests.platform_ports import closed_port

EVENT = {
    "specversion": "1.0",
    "id": "e-1",
    "source": "fitbit",
    "type": "health.blood_pressure",
    "subject": "alice",
    "data": {"systolic": 150, "diastolic": 85, "diagnosis": "confidential"},
}


@pytest.fixture
def server() -> Iterator[CaptureServer]:
    yield from capture()


def contacts(server: CaptureServer) -> list[StoredContact]:
    def url(path: str) -> str:
        return f"json://127.0.0.1:{server.port}{path}"

    return [
        StoredContact("default", "bob", {"mobile": url("/bob-mobile"), "email": url("/bob-email")}),
        StoredContact("default", "carol", {"mobile": url("/carol")}),
        StoredContact(
            "default",
            "dave",
            {"email": url("/dave"), "pager": f"json://127.0.0.1:{closed_port()}/p"},
        ),
        StoredContact("default", "eve", {"mobile": url("/eve")}),
    ]


GROUPS = [
    StoredGroup("default", "alice.family", ("carol", "dave.email")),
    StoredGroup("default", "night", ("dave.pager",)),
]


def request(action: Action, event: Mapping[str, Any] = EVENT) -> ActionRequest:
    return ActionRequest("k" * 40, "default", "bp-alert", 0, action, event, "enf-1")


def run(
    tmp_path: Path,
    server: CaptureServer,
    steps: Any,
    fields: Sequence[str] = ("data.systolic", "data.diastolic"),
) -> Any:
    """Run `steps(kind, directory)` with a NotifyAction over a real SQLite store's directory."""

    async def scenario() -> Any:
        store = open_store(f"sqlite:///{tmp_path / 'ondo.db'}")
        await store.open()
        for contact in contacts(server):
            await store.repos.directory.put_contact(contact)
        for group in GROUPS:
            await store.repos.directory.put_group(group)
        directory = Directory(store.repos.directory, store.subscribe)
        await directory.start()
        kind = NotifyAction(directory, lambda namespace, rule: tuple(fields), ManualClock(1000.0))
        try:
            return await steps(kind, store)
        finally:
            await kind.stop()
            await directory.stop()
            await store.close()

    return asyncio.run(scenario())


def test_bob_and_the_family_are_notified_and_eve_is_not(
    tmp_path: Path, server: CaptureServer
) -> None:
    action = Action("notify", "bob.mobile", cc=("alice.family",))

    async def steps(kind: NotifyAction, _store: Any) -> ActionResult:
        kind.validate(action, "default")
        return await kind.perform(request(action), 1)

    result = run(tmp_path, server, steps)
    assert result.ok, result.detail
    assert sorted(r.path for r in server.requests) == ["/bob-mobile", "/carol", "/dave"]
    sent = server.to("/bob-mobile")[0].json()
    assert sent["title"] == "bp-alert: health.blood_pressure about alice"
    assert sent["message"] == (
        "Rule bp-alert fired on a health.blood_pressure event about alice:"
        " systolic is 150, diastolic is 85."
    )
    assert all(b"confidential" not in r.body for r in server.requests)
    assert result.detail["reached"] == ["bob.mobile", "carol.mobile", "dave.email"]
    first = result.detail["deliveries"][0]
    assert first == {
        "recipient": "bob.mobile",
        "contact": "bob",
        "channel": "mobile",
        "role": "to",
        "address": "json://1***",
        "ok": True,
        "at": 1000.0,
        "attempt": 1,
    }
    assert [d["role"] for d in result.detail["deliveries"]] == ["to", "cc", "cc"]


def test_a_template_says_only_what_it_names(tmp_path: Path, server: CaptureServer) -> None:
    action = Action(
        "notify", "bob.email", {"title": "{type}"}, saying="BP {data.systolic} ({data.note})"
    )

    async def steps(kind: NotifyAction, _store: Any) -> ActionResult:
        kind.validate(action, "default")
        return await kind.perform(request(action), 1)

    result = run(tmp_path, server, steps)
    assert result.ok
    sent = server.to("/bob-email")[0].json()
    assert (sent["title"], sent["message"]) == ("health.blood_pressure", "BP 150 ([no data.note])")
    assert result.detail["warnings"] == ["the event has no data.note"]


def test_only_the_channels_not_reached_are_tried_again(
    tmp_path: Path, server: CaptureServer
) -> None:
    server.answer("/dave", 500)  # dave's first delivery fails, the next one is accepted
    action = Action("notify", "bob.mobile", cc=("alice.family",))

    async def steps(kind: NotifyAction, _store: Any) -> tuple[ActionResult, ActionResult]:
        first = await kind.perform(request(action), 1)
        second = await kind.perform_after(request(action), 2, first.detail)
        return first, second

    first, second = run(tmp_path, server, steps)
    assert not first.ok and first.retryable
    assert first.detail["error"].startswith("could not reach dave.email (json://1***): ")
    assert "500" in first.detail["error"]
    assert second.ok, second.detail
    assert [len(server.to(p)) for p in ("/bob-mobile", "/carol", "/dave")] == [1, 1, 2]
    history = [(d["recipient"], d["ok"], d["attempt"]) for d in second.detail["deliveries"]]
    assert history == [
        ("bob.mobile", True, 1),
        ("carol.mobile", True, 1),
        ("dave.email", False, 1),
        ("dave.email", True, 2),
    ]
    assert second.detail["reached"] == ["bob.mobile", "carol.mobile", "dave.email"]


def test_an_unreachable_channel_fails_with_the_reason(
    tmp_path: Path, server: CaptureServer
) -> None:
    action = Action("notify", "night")

    async def steps(kind: NotifyAction, _store: Any) -> ActionResult:
        return await kind.perform(request(action), 1)

    result = run(tmp_path, server, steps)
    assert not result.ok and result.retryable
    assert "dave.pager" in result.detail["error"] and "Connection error" in result.detail["error"]
    assert result.detail["deliveries"][0]["ok"] is False


def test_a_recipient_deleted_since_is_not_retried(tmp_path: Path, server: CaptureServer) -> None:
    action = Action("notify", "eve")

    async def steps(kind: NotifyAction, store: Any) -> ActionResult:
        kind.validate(action, "default")
        await store.repos.directory.delete_contact("default", "eve")
        for _ in range(200):  # the change feed reloads the directory in the background
            await asyncio.sleep(0.01)
            try:
                kind.validate(action, "default")
            except RuleError:
                break
        return await kind.perform(request(action), 1)

    result = run(tmp_path, server, steps)
    assert not result.ok and not result.retryable
    assert "no contact or group 'eve'" in result.detail["error"]
    assert server.requests == []


@pytest.mark.parametrize(
    ("action", "words"),
    [
        (Action("notify", "zed"), "no contact or group 'zed'"),
        (Action("notify", "bob.pager"), "contact 'bob' has no channel 'pager'"),
        (Action("notify", "bob", cc=("nobody",)), "'nobody'"),
        (Action("notify", "bob", saying="hi {name}"), "{name} is not a field"),
        (Action("notify", "bob", {"level": "high"}), "not a setting of notify"),
        (Action("notify", "bob", {"title": "{data.x"}), "unmatched"),
    ],
)
def test_what_cannot_be_sent_is_refused_when_the_rule_is_made(
    tmp_path: Path, server: CaptureServer, action: Action, words: str
) -> None:
    async def steps(kind: NotifyAction, _store: Any) -> None:
        with pytest.raises(RuleError, match=words.replace("{", r"\{")):
            kind.validate(action, "default")

    run(tmp_path, server, steps)


def test_a_deploy_checks_against_the_contacts_it_declares(
    tmp_path: Path, server: CaptureServer
) -> None:
    async def steps(kind: NotifyAction, _store: Any) -> None:
        action = Action("notify", "frank.mobile", cc=("team",))
        with pytest.raises(RuleError, match=r"'frank\.mobile'"):
            kind.validate(action, "default")
        with declared("default", "app", {"frank": {"mobile": "ntfy://f"}}, {"team": ("bob",)}):
            kind.validate(action, "default")
        wrong = {"frank": {"mobile": "nosuch://f"}}
        with (
            declared("default", "app", wrong, {"team": ("bob",)}),
            pytest.raises(RuleError, match=r"Apprise cannot use nosuch:// URL"),
        ):
            kind.validate(action, "default")

    run(tmp_path, server, steps)
