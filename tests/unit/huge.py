"""Huge inputs for property tests, drawn as small recipes and built in the test: hypothesis
prints the repr of what it draws (and warns past 30 kB), and a 100,000-level structure has a
repr of that size, or none at all."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
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


def bounded(examples: int) -> settings:
    """Settings of the robustness properties: a deadline bounds each example's work (generous
    for a loaded 2-core machine: the failures guarded against took seconds to hours)."""
    return settings(
        max_examples=examples,
        deadline=timedelta(seconds=3),
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


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
