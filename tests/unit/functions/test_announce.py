"""The function service's notices: what an `ondo.invocation.failed` says, and its rule hops."""

from __future__ import annotations

import json

from ondo.backends.store.repositories.functions import InvocationRecord
from ondo.functions.announce import invocation_failed
from ondo.notices import INVOCATION_FAILED, Notice, Notices


def record(status: str = "failed", trigger: str | None = "rule:bill") -> InvocationRecord:
    error = {"errorType": "RuntimeError", "errorMessage": "x" * 5000, "stackTrace": []}
    return InvocationRecord(
        id="inv-1",
        namespace="default",
        function="billing",
        version=3,
        status=status,  # type: ignore[arg-type]
        mode="async",
        created_at=0.0,
        error=error if status != "succeeded" else None,
        trigger=trigger,
    )


def heard_of(rec: InvocationRecord, payload: bytes | None) -> list[Notice]:
    hub, heard = Notices(), []
    hub.subscribe("default", heard.append)
    invocation_failed(hub, rec, payload)
    return heard


def test_a_failed_invocation_a_rule_started_counts_one_more_hop() -> None:
    event = json.dumps({"type": "bill.due", "ondohops": 3, "data": {}}).encode()
    (notice,) = heard_of(record(), event)
    assert (notice.type, notice.subject, notice.hops) == (INVOCATION_FAILED, "billing", 4)
    assert notice.data["error_type"] == "RuntimeError"
    assert len(notice.data["error_message"]) == 1000  # bounded
    assert notice.data["trigger"] == "rule:bill" and notice.data["invocation_id"] == "inv-1"
    assert heard_of(record(), b'{"type": "bill.due"}')[0].hops == 1
    assert heard_of(record(), b"not json, mentions ondohops")[0].hops == 1


def test_only_failures_are_announced_and_direct_calls_carry_no_hops() -> None:
    assert heard_of(record("succeeded"), None) == []
    assert heard_of(record("timed_out", trigger=None), b'{"ondohops": 9}')[0].hops == 0
