"""`rules test`: a dry run says why a rule does not match, and changes nothing."""

from __future__ import annotations

from typing import Any

from ondo.rules.tester import dry_run
from tests.unit.rules_engine.conftest import Harness


def _event(**attrs: Any) -> dict[str, Any]:
    return {"specversion": "1.0", "id": "e", "source": "ftp", "type": "object.created", **attrs}


def test_each_rule_says_whether_and_why_not(harness: Harness) -> None:
    harness.add('on object.created where key endswith ".csv" do emit csv.seen', name="csv")
    harness.add("on object.created where size > limit do emit big", name="big")  # CEL residual
    harness.add("on claim 2 times within 1h do emit claims", name="claims")
    engine = harness.platform.rules

    def test(event: dict[str, Any], rule: str | None = None) -> dict[str, Any]:
        return harness.run(lambda: dry_run(engine, "default", event, rule))

    result = test(_event(data={"key": "a.txt", "size": 1, "limit": 5}))
    by_rule = {r["rule"]: r for r in result["results"]}
    assert not by_rule["csv"]["matches"] and "key" in by_rule["csv"]["reason"]
    assert not by_rule["big"]["matches"] and "is false" in by_rule["big"]["reason"]
    assert not by_rule["claims"]["matches"] and "type" in by_rule["claims"]["reason"]
    hit = test(_event(data={"key": "a.csv"}), rule="csv")["results"]
    assert hit == [
        {"rule": "csv", "enabled": True, "matches": True, "effect": "fires: emit csv.seen"}
    ]


def test_a_dry_run_counts_nothing(harness: Harness) -> None:
    harness.add("on claim 2 times within 1h do emit claims", name="claims")
    engine = harness.platform.rules
    claim = _event(type="claim")

    def effect() -> str:
        result = harness.run(lambda: dry_run(engine, "default", claim))
        return str(result["results"][0]["effect"])

    for _ in range(3):
        assert "now 0 in the window" in effect()

    async def real() -> str:
        return (await harness.send("claim", id="c1"))[0].outcome

    assert harness.run(real) == "counted"
    assert "now 1 in the window" in effect()
    assert harness.jobs("claims") == []
