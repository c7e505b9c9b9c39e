from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.functional.platform import RunningPlatform

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.fixture
def platform(tmp_path: Path) -> Iterator[RunningPlatform]:
    """A fresh platform with the hello example deployed."""
    with RunningPlatform(tmp_path / "data", apps=[EXAMPLES / "hello"]) as running:
        yield running


@pytest.fixture
def manual_platform(tmp_path: Path) -> Iterator[RunningPlatform]:
    """A fresh platform whose clock moves only when a test advances it."""
    with RunningPlatform(tmp_path / "data", env={"ONDO_CLOCK": "manual"}) as running:
        yield running
