"""Flood control of audited refusals: what is recorded one by one, what only counted."""

from __future__ import annotations

from ondo.security.refusals import MAX_SUMMARIES, OTHERS, RefusalGate


class Ticks:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_source_gets_its_share_per_window_then_is_counted() -> None:
    time = Ticks()
    gate = RefusalGate(time, per_source=3, overall=100, window_s=60)
    admitted = [gate.admit("10.0.0.1", "default", "", "GET /v1/x") for _ in range(10)]
    assert admitted == [True] * 3 + [False] * 7
    assert gate.admit("10.0.0.2", "default", "", "GET /v1/x")  # another source has its own
    assert gate.take() == []  # the window is still open
    time.now = 61.0
    [summary] = gate.take()
    assert (summary.source, summary.count, summary.actions) == ("10.0.0.1", 7, {"GET /v1/x": 7})
    assert not gate.pending
    assert gate.admit("10.0.0.1", "default", "", "GET /v1/x")  # a new window


def test_all_sources_together_are_capped_and_summaries_are_bounded() -> None:
    time = Ticks()
    gate = RefusalGate(time, per_source=1, overall=5, window_s=60)
    admitted = [gate.admit(f"10.0.{i}.1", "default", "", "GET /v1/x") for i in range(100)]
    assert sum(admitted) == 5
    for i in range(100):
        gate.admit(f"10.0.{i}.1", "default", "", "GET /v1/x")
    time.now = 60.0
    summaries = gate.take()
    assert len(summaries) == MAX_SUMMARIES + 1
    assert summaries[-1].source == OTHERS and summaries[-1].sources == 100 - MAX_SUMMARIES
    assert sum(s.count for s in summaries) == 195


def test_everything_takes_open_windows_too() -> None:
    gate = RefusalGate(Ticks(), per_source=0, overall=10, window_s=60)
    assert not gate.admit("bob", "clinic", "bob", "POST /v1/rules")
    assert gate.pending
    [summary] = gate.take(everything=True)
    assert (summary.namespace, summary.principal, summary.count) == ("clinic", "bob", 1)
