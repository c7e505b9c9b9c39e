"""Huge inputs for property tests, drawn as small recipes and built in the test: hypothesis
prints the repr of what it draws (and warns past 30 kB), and a 100,000-level structure has a
repr of that size, or none at all."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st


@dataclass(frozen=True)
class Repeat:
    """`text` written `times` times, joined by `sep`."""

    text: str
    times: int
    sep: str = ""

    def build(self) -> str:
        return self.sep.join([self.text] * self.times)


@dataclass(frozen=True)
class Nested:
    """`leaf` wrapped `depth` times: in lists ("["), objects ("{") or $or pairs ("$or")."""

    depth: int
    leaf: Any
    via: str = "{"

    def build(self) -> Any:
        value = build(self.leaf)
        for _ in range(self.depth):
            if self.via == "[":
                value = [value]
            elif self.via == "$or":
                value = {"$or": [value, value]}
            else:
                value = {"k": value}
        return value


def build(value: Any) -> Any:
    """`value` with every recipe in it (at any depth of lists and dicts) built."""
    if isinstance(value, Repeat | Nested):
        return value.build()
    if isinstance(value, list):
        return [build(item) for item in value]
    if isinstance(value, dict):
        return {build(key): build(item) for key, item in value.items()}
    return value


def bounded(examples: int, cpu_s: float = 3.0) -> Callable[[Any], Any]:
    """Settings of the robustness properties: each example's work is bounded by `cpu_s` seconds
    of this process's CPU time (the failures guarded against took seconds to hours). CPU time,
    not hypothesis' wall-clock deadline: other work on a loaded 2-core machine stretches the
    wall clock of a trivial example past any fixed bound, but not its CPU time."""
    chosen = settings(
        max_examples=examples,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )

    def apply(test: Any) -> Any:
        inner = test.hypothesis.inner_test  # hypothesis' documented hook around each example

        @functools.wraps(inner)
        def within_bound(*args: Any, **kwargs: Any) -> None:
            started = time.process_time()
            inner(*args, **kwargs)
            used = time.process_time() - started
            assert used < cpu_s, f"one example took {used:.2f} s of CPU (bound: {cpu_s} s)"

        test.hypothesis.inner_test = within_bound
        return chosen(test)

    return apply


def scalars(*special: Any) -> st.SearchStrategy[Any]:
    """Any JSON scalar (and floats JSON lacks), or one of `special`."""
    return st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.floats(),
        st.text(max_size=12),
        st.sampled_from(special),
    )
