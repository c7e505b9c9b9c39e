"""The schedule source on a real supervisor, store and bus, driven by a manual clock: which
instants tick (rates, cron in a time zone across both DST changes), restarts with and without
catch_up, a crash between emitting and saving, and the settings refused at deploy."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from ondo.deploy.manifest import parse_manifest
from ondo.errors import ConfigError
from ondo.sources.base import PlainWhere
from ondo.sources.schedule import GRACE_S, KIND, LAST_TICK
from ondo.sources.ticks import Ticks, from_rfc3339, rfc3339
from tests.unit.sources.harness import SourceHarness

T0 = 1_800_000_000.0  # 2027-01-15T08:00:00Z, a multiple of 300 s and of 3600 s


def at(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


def run(tmp_path: Path, start: float, body: Callable[[SourceHarness], Awaitable[None]]) -> None:
    async def main() -> None:
        async with SourceHarness(tmp_path, start) as harness:
            await body(harness)

    asyncio.run(main())


async def next_tick(h: SourceHarness, name: str) -> float:
    """The tick the source waits for (from its status), once it waits for one."""
    detail = await h.until(lambda: (s := h.status(name)).detail.startswith("next tick ") and s)
    return from_rfc3339(detail.detail.removeprefix("next tick "))


async def step(h: SourceHarness, name: str, late_s: float = 0.0) -> float:
    """Move the clock to the next tick (plus `late_s`) and wait until the source handled it."""
    tick = await next_tick(h, name)
    h.clock.advance(tick + late_s - h.clock.now())
    await h.until(lambda: h.status(name).detail != f"next tick {rfc3339(tick)}")
    return tick


def scheduled(events: list[Any]) -> list[str]:
    return [e.data["scheduled_time"] for e in events]


def test_a_rate_ticks_on_multiples_of_its_period_with_the_documented_event(
    tmp_path: Path,
) -> None:
    async def body(h: SourceHarness) -> None:
        await h.deploy("every5", "schedule", {"rate": "rate(5 minutes)", "data": {"job": "sync"}})
        assert await next_tick(h, "every5") == T0 + 300
        await step(h, "every5")
        await step(h, "every5", late_s=7)
        first, second = await h.events("every5")
        assert first.id == "tick-2027-01-15T08:05:00Z"
        assert first.type == "schedule.tick" and first.source == "every5"
        assert first.time == datetime(2027, 1, 15, 8, 5, tzinfo=UTC)
        assert first.data == {
            "job": "sync",
            "scheduled_time": "2027-01-15T08:05:00Z",
            "schedule": "rate(5 minutes)",
            "timezone": "UTC",
        }
        assert second.data["scheduled_time"] == "2027-01-15T08:10:00Z"  # not the late instant
        assert await next_tick(h, "every5") == T0 + 900
        assert h.status("every5").events == 2

    run(tmp_path, T0 + 10, body)


def test_nothing_fires_before_a_tick_is_due(tmp_path: Path) -> None:
    async def body(h: SourceHarness) -> None:
        await h.deploy("hourly", "schedule", {"rate": "1h", "type": "report.due"})
        assert await next_tick(h, "hourly") == T0 + 3600
        h.clock.advance(3600 - 10 - 0.5)  # half a second before the tick
        await h.until(lambda: h.clock.now() == T0 + 3599.5)
        await asyncio.sleep(0.2)  # the source wakes on the advance and sleeps again
        assert await h.events() == []
        await step(h, "hourly")
        assert [e.type for e in await h.events()] == ["report.due"]
        assert h.status("hourly").last_event_at == T0 + 3600  # emitted once the tick came

    run(tmp_path, T0 + 10, body)


def test_cron_in_a_time_zone_skips_the_missing_hour_in_spring(tmp_path: Path) -> None:
    async def body(h: SourceHarness) -> None:
        await h.deploy("night", "schedule", {"cron": "30 2 * * *", "timezone": "Europe/Berlin"})
        ticks = [await step(h, "night") for _ in range(3)]
        # 02:30 does not exist on 2026-03-29 in Berlin (02:00 jumps to 03:00): no tick that day.
        assert [rfc3339(t) for t in ticks] == [
            "2026-03-28T01:30:00Z",  # 02:30 CET
            "2026-03-30T00:30:00Z",  # 02:30 CEST
            "2026-03-31T00:30:00Z",
        ]
        events = await h.events()
        assert scheduled(events) == [rfc3339(t) for t in ticks]
        assert {e.data["timezone"] for e in events} == {"Europe/Berlin"}

    run(tmp_path, at("2026-03-27T12:00:00+00:00"), body)


def test_cron_in_a_time_zone_fires_a_repeated_wall_time_once_in_autumn(tmp_path: Path) -> None:
    async def body(h: SourceHarness) -> None:
        await h.deploy("night", "schedule", {"cron": "30 2 * * *", "timezone": "Europe/Berlin"})
        ticks = [await step(h, "night") for _ in range(3)]
        # 02:30 happens twice on 2026-10-25 in Berlin (03:00 CEST goes back to 02:00 CET).
        assert [rfc3339(t) for t in ticks] == [
            "2026-10-24T00:30:00Z",
            "2026-10-25T00:30:00Z",  # the first 02:30 (CEST) only
            "2026-10-26T01:30:00Z",  # 02:30 CET
        ]

    run(tmp_path, at("2026-10-23T12:00:00+00:00"), body)


def test_cron_weekdays_at_nine_local_time() -> None:
    ticks = Ticks("0 9 * * 1-5", None, "America/New_York")
    found, t = [], at("2027-01-15T00:00:00+00:00")  # a Friday
    for _ in range(3):
        t = ticks.after(t) or 0.0
        found.append(rfc3339(t))
    assert found == ["2027-01-15T14:00:00Z", "2027-01-18T14:00:00Z", "2027-01-19T14:00:00Z"]
    assert ticks.at_or_before(at("2027-01-18T14:00:00+00:00")) == at("2027-01-18T14:00:00+00:00")


@pytest.mark.parametrize("catch_up", [False, True])
def test_ticks_missed_while_down_fire_once_only_with_catch_up(
    tmp_path: Path, catch_up: bool
) -> None:
    async def body(h: SourceHarness) -> None:
        await h.deploy("hourly", "schedule", {"rate": "rate(1 hour)", "catch_up": catch_up})
        await step(h, "hourly")  # 09:00 fires while running
        await h.supervisor.stop()
        h.clock.advance(3 * 3600 + 600)  # down from 09:00 until 12:10: 10:00, 11:00, 12:00 missed
        await h.restart()
        assert await next_tick(h, "hourly") == T0 + 5 * 3600  # 13:00
        await step(h, "hourly")
        expected = ["2027-01-15T09:00:00Z"]
        if catch_up:
            expected.append("2027-01-15T12:00:00Z")  # the latest missed tick, once
        assert scheduled(await h.events()) == [*expected, "2027-01-15T13:00:00Z"]
        caught = [e.data.get("catch_up", False) for e in await h.events()]
        assert caught == ([False, True, False] if catch_up else [False, False])

    run(tmp_path, T0 + 10, body)


def test_a_restart_within_the_grace_neither_loses_nor_repeats_a_tick(tmp_path: Path) -> None:
    async def body(h: SourceHarness) -> None:
        await h.deploy("hourly", "schedule", {"rate": "rate(1 hour)"})
        await step(h, "hourly")  # 09:00
        await h.supervisor.stop()
        h.clock.advance(3600 + GRACE_S / 2)  # 10:00 falls due while down, noticed in time
        await h.restart()
        assert await next_tick(h, "hourly") == T0 + 3 * 3600
        assert scheduled(await h.events()) == ["2027-01-15T09:00:00Z", "2027-01-15T10:00:00Z"]

    run(tmp_path, T0 + 10, body)


def test_a_crash_between_emitting_and_saving_emits_the_tick_once(tmp_path: Path) -> None:
    async def body(h: SourceHarness) -> None:
        await h.deploy("hourly", "schedule", {"rate": "rate(1 hour)"})
        tick = await step(h, "hourly", late_s=5)
        await h.supervisor.stop()
        # As if the process died after the append and before the state was saved.
        await h.store.repos.sources.save_state(
            "default", "hourly", LAST_TICK, repr(tick - 10), h.clock.now()
        )
        await h.restart()
        await next_tick(h, "hourly")
        state = await h.store.repos.sources.state("default", "hourly")
        assert float(state[LAST_TICK]) == tick  # it emitted the tick again ...
        assert len(await h.events()) == 1  # ... and the bus dropped the duplicate
        assert h.status("hourly").events == 0

    run(tmp_path, T0 + 10, body)


def test_a_changed_schedule_starts_afresh(tmp_path: Path) -> None:
    async def body(h: SourceHarness) -> None:
        await h.deploy("job", "schedule", {"rate": "rate(1 hour)", "catch_up": True})
        await step(h, "job")  # 09:00
        await h.supervisor.stop()
        h.clock.advance(5 * 3600 - 600)  # 13:50
        await h.deploy("job", "schedule", {"rate": "rate(2 hours)", "catch_up": True}, wait=False)
        await h.restart()
        # No catch-up: the ticks missed belong to the old schedule.
        assert await next_tick(h, "job") == T0 + 6 * 3600
        assert scheduled(await h.events()) == ["2027-01-15T09:00:00Z"]

    run(tmp_path, T0 + 10, body)


# --- settings ---------------------------------------------------------------------------


def where() -> PlainWhere:
    return PlainWhere(Path("."), "sources.tick")


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({}, "exactly one of cron: or rate:"),
        ({"cron": "* * * * *", "rate": "5m"}, "exactly one of cron: or rate:"),
        ({"cron": "0 0 30 2 *"}, "never fires"),
        ({"cron": "0 0 31 4,6 *"}, "never fires"),
        ({"cron": "0 0 * * * *"}, "has 6 fields; write 5"),
        ({"cron": "61 * * * *"}, "is not valid"),
        ({"cron": "@sometimes"}, "known aliases"),
        ({"cron": 5}, "cron must be text"),
        ({"rate": "rate(5 weeks)"}, "rate(N minutes)"),
        ({"rate": "rate(0 minutes)"}, "at least one second"),
        ({"rate": "soon"}, "not a rate"),
        ({"rate": "1.5s"}, "whole number of seconds"),
        ({"rate": "5m", "timezone": "Mars/Olympus"}, "unknown time zone 'Mars/Olympus'"),
        ({"rate": "5m", "catch_up": "yes"}, "catch_up must be true or false"),
        ({"rate": "5m", "data": [1]}, "data must be a mapping"),
        ({"rate": "5m", "data": {"scheduled_time": 1}}, "set by the schedule"),
        ({"rate": "5m", "type": ""}, "type must be non-empty text"),
        ({"rate": "5m", "every": "1m"}, "unknown key 'every'"),
    ],
)
def test_bad_settings_are_refused_naming_the_field(settings: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=r"^sources\.tick") as caught:
        KIND.validate(settings, where())
    assert message in str(caught.value)


def test_accepted_settings_are_stored_with_defaults() -> None:
    assert KIND.validate({"cron": "@daily", "timezone": "Asia/Tokyo"}, where()) == {
        "cron": "@daily",
        "rate": None,
        "every_s": None,
        "timezone": "Asia/Tokyo",
        "catch_up": False,
        "type": "schedule.tick",
        "subject": None,
        "data": {},
    }
    for rate, seconds in [("rate(1 minute)", 60), ("rate(2 hours)", 7200), ("90s", 90)]:
        assert KIND.validate({"rate": rate}, where())["every_s"] == seconds
    assert KIND.validate({"rate": "rate(1 day)"}, where())["every_s"] == 86400


def test_a_cron_that_never_fires_is_refused_with_file_and_line(tmp_path: Path) -> None:
    text = "name: app\nsources:\n  leap:\n    kind: schedule\n    cron: '0 0 30 2 *'\n"
    with pytest.raises(ConfigError) as caught:
        parse_manifest(text, tmp_path, "ondo.yaml")
    message = str(caught.value)
    assert message.startswith("ondo.yaml:5"), message
    assert "never fires" in message and "February 30" in message
