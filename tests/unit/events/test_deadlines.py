"""One timer for many deadlines: due keys are called back once, in time; discarded ones never."""

from __future__ import annotations

import asyncio

from ondo.deadlines import Deadlines


def test_due_keys_are_called_once_and_discarded_ones_never() -> None:
    async def scenario() -> tuple[list[tuple[str, float]], int]:
        loop = asyncio.get_running_loop()
        started = loop.time()
        fired: list[tuple[str, float]] = []
        deadlines: Deadlines[str] = Deadlines(lambda key: fired.append((key, loop.time())))
        deadlines.add("slow", 0.08)
        deadlines.add("fast", 0.02)  # earlier than what the timer was armed for
        deadlines.add("finished", 0.01)
        deadlines.discard("finished")
        await asyncio.sleep(0.15)
        return [(key, at - started) for key, at in fired], len(deadlines)

    fired, left = asyncio.run(scenario())
    assert [key for key, _ in fired] == ["fast", "slow"] and left == 0
    assert 0.02 <= fired[0][1] < 0.07 and 0.08 <= fired[1][1] < 0.14


def test_a_key_added_again_takes_its_new_deadline_and_close_stops_everything() -> None:
    async def scenario() -> list[str]:
        fired: list[str] = []
        deadlines: Deadlines[str] = Deadlines(fired.append)
        deadlines.add("a", 0.01)
        deadlines.add("a", 0.05)  # re-added with a later deadline: not due at 0.01
        await asyncio.sleep(0.03)
        early = list(fired)
        deadlines.add("b", 0.01)
        deadlines.close()
        await asyncio.sleep(0.06)
        return [*early, "|", *fired]

    assert asyncio.run(scenario()) == ["|"]
