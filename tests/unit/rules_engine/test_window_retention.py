"""Retention of rule state through the platform's wiring: rows of quiet subjects, expired
throttles and a deleted rule's rows go; what can still change a decision stays."""

from __future__ import annotations

from ondo.backends.store.repositories.rules import WindowState
from tests.unit.rules_engine.conftest import Harness


def test_stale_window_rows_go_and_live_ones_stay(harness: Harness) -> None:
    harness.add("on claim 3 times within 1h per subject do emit claim.many", name="many")
    harness.add("on ping at most once per 10m per subject do emit pong", name="quiet")
    windows = harness.platform.store.repos.windows

    async def state(rule: str) -> WindowState:
        return await windows.state(f"default/{rule}")

    async def scenario() -> None:
        retention = harness.platform.retention
        await harness.send("claim", subject="quiet-one")
        await harness.send("ping", subject="a")
        harness.clock.advance(30 * 60)
        await harness.send("claim", subject="busy")
        await harness.send("ping", subject="b")
        assert (await retention.sweep())["window_rows"] == 1  # a's throttle: 30 min > 10 min
        assert (await state("quiet")).last_fired == {"b": harness.clock.now()}
        harness.clock.advance(31 * 60)  # quiet-one's claim is now 61 min old, busy's 31
        assert (await retention.sweep())["window_rows"] == 2  # and b's throttle
        assert (await state("many")).counts == {"busy": 1}
        # Rows of a rule that no longer exists (left by an older version): all of them go.
        now = harness.clock.now()
        await windows.add_count("default/ghost", "k", "u1", now, now - 3600.0)
        await windows.set_last_fired("default/ghost", "k", now)
        assert (await retention.sweep())["window_rows"] == 2
        ghost = await state("ghost")
        assert (ghost.counts, ghost.last_fired) == ({}, {})
        assert (await state("many")).counts == {"busy": 1}

    harness.run(scenario)
