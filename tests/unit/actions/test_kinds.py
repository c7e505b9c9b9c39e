"""Action kinds: validation words, the stored request form, and the events emit builds."""

from __future__ import annotations

import asyncio
import json

import pytest

from ondo.actions.base import (
    ActionRequest,
    ActionResult,
    attempt_id,
    derived_id,
)
from ondo.actions.codec import request_from_json, request_to_json
from ondo.actions.destinations import destination_event
from ondo.actions.emit import event_of
from ondo.actions.invoke import payload_of
from ondo.actions.model import Action
from ondo.errors import RuleError, ValidationError
from ondo.platform import Platform

EVENT = {
    "specversion": "1.0",
    "id": "e-1",
    "source": "shop/orders",
    "type": "order.placed",
    "subject": "order/42",
    "ondohops": 2,
    "data": {"total": 12},
}


def req(action: Action) -> ActionRequest:
    return ActionRequest(
        key="a" * 40,
        namespace="default",
        rule="big-orders",
        action_index=1,
        action=action,
        event=EVENT,
        enforcement_id="enf-1",
    )


def test_an_unknown_action_word_is_refused_with_the_known_ones(platform: Platform) -> None:
    with pytest.raises(RuleError, match=r"unknown action 'frobnicate'.*emit.*invoke"):
        platform.actions.kinds.validate(Action(kind="frobnicate", target="x"))


@pytest.mark.parametrize("word", ["bcc", "forward"])
def test_mail_words_check_their_recipients(platform: Platform, word: str) -> None:
    platform.actions.kinds.validate(Action(kind=word, target="trent@example.org"))
    with pytest.raises(RuleError, match=rf"{word} x: there is no contact or group 'x'"):
        platform.actions.kinds.validate(Action(kind=word, target="x"))
    assert platform.actions.kinds.acts_on(word) == "mail.received"
    assert platform.actions.kinds.acts_on("notify") is None


def test_invoke_needs_a_deployed_function(platform: Platform) -> None:
    with pytest.raises(RuleError, match="function 'nope' does not exist in namespace 'default'"):
        platform.actions.kinds.validate(Action(kind="invoke", target="nope"))


def test_emit_needs_a_one_word_type(platform: Platform) -> None:
    platform.actions.kinds.validate(Action(kind="emit", target="order.big"))
    with pytest.raises(RuleError, match="one word"):
        platform.actions.kinds.validate(Action(kind="emit", target="order big"))


def test_a_request_survives_its_stored_form(platform: Platform) -> None:
    original = req(Action(kind="invoke", target="f", args={"a": [1, 2]}, cc=("x", "y")))
    again = request_from_json(request_to_json(original))
    assert again == original
    assert platform.actions.kinds.get(again.action.kind).kind == "invoke"


def test_invoke_sends_the_event_or_the_with_json_instead() -> None:
    assert payload_of(req(Action(kind="invoke", target="f"))) == (
        b'{"specversion":"1.0","id":"e-1","source":"shop/orders","type":"order.placed",'
        b'"subject":"order/42","ondohops":2,"data":{"total":12}}'
    )
    assert payload_of(req(Action(kind="invoke", target="f", args={"x": 1}))) == b'{"x":1}'


def test_invoke_gives_the_event_the_functions_shape_but_not_a_with_json() -> None:
    bridged = json.loads(payload_of(req(Action(kind="invoke", target="f")), "eventbridge"))
    assert (bridged["detail-type"], bridged["detail"]) == ("order.placed", {"total": 12})
    given = payload_of(req(Action(kind="invoke", target="f", args={"x": 1})), "eventbridge")
    assert given == b'{"x":1}'
    with pytest.raises(ValidationError, match="function 'f' takes S3 events"):
        payload_of(req(Action(kind="invoke", target="f")), "s3")


def test_emit_builds_a_deduplicable_event_one_hop_further() -> None:
    event = event_of(req(Action(kind="emit", target="order.big")))
    assert (event.source, event.type, event.subject) == (
        "ondo/rules/big-orders",
        "order.big",
        "order/42",
    )
    assert event.id == derived_id("a" * 40) and event.hops == 3 and event.data == {"total": 12}
    again = event_of(req(Action(kind="emit", target="order.big", args={"n": 1})))
    assert again.id == event.id and again.data == {"n": 1}


def test_destination_events_say_what_happened() -> None:
    request = req(Action(kind="invoke", target="f"))
    ok = destination_event(
        request, 2, 2, ActionResult(ok=True, detail={"result": 5}, invocation_id="i")
    )
    failed = destination_event(request, 3, 3, ActionResult(ok=False, detail={"error": "boom"}))
    assert (ok.type, failed.type) == ("ondo.action.succeeded", "ondo.action.failed")
    assert ok.source == "ondo/rules/big-orders" and ok.hops == 3
    assert ok.data["result"] == {"result": 5} and ok.data["invocation_id"] == "i"
    assert failed.data["error"] == {"error": "boom"}
    assert ok.data["event"] == {"source": "shop/orders", "id": "e-1"}
    assert ok.id != failed.id


def test_each_attempt_has_its_own_request_id() -> None:
    assert attempt_id("k" * 40, 1) != attempt_id("k" * 40, 2)
    assert attempt_id("k" * 40, 1) == attempt_id("k" * 40, 1)
    assert len(attempt_id("x" * 500, 1)) < 50


def test_an_emit_too_large_for_the_bus_fails_without_retrying(platform: Platform) -> None:
    huge = req(Action(kind="emit", target="order.big", args={"blob": "x" * 300_000}))

    async def scenario() -> ActionResult:
        return await platform.actions.kinds.get("emit").perform(huge, 1)

    result = asyncio.run(scenario())
    assert not result.ok and not result.retryable
    assert "the limit is" in result.detail["error"]


def test_an_emit_is_appended_once_even_when_repeated(platform: Platform) -> None:
    request = req(Action(kind="emit", target="order.big"))

    async def scenario() -> list[ActionResult]:
        emit = platform.actions.kinds.get("emit")
        return [await emit.perform(request, 1), await emit.perform(request, 2)]

    first, second = asyncio.run(scenario())
    assert first.ok and second.ok
    assert first.detail["duplicate"] is False and second.detail["duplicate"] is True
    assert first.detail["seq"] == second.detail["seq"]
