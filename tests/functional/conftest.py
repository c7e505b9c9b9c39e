from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.functional import backends
from tests.functional.platform import RunningPlatform

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.fixture(autouse=True, scope="session")
def _drop_clusters_left() -> Iterator[None]:
    """On the distributed backend: drop the clusters still there when the session ends."""
    yield
    if backends.distributed():
        backends.drop_all()


@pytest.fixture(autouse=True)
def _on_the_backend(request: pytest.FixtureRequest) -> Iterator[None]:
    """Skip `embedded_only` tests on the distributed backend; drop each test's clusters after it
    (those of platforms still running, a module's shared one, at the end of the session)."""
    if backends.distributed() and request.node.get_closest_marker("embedded_only"):
        backend = backends.configured()
        pytest.skip(f"looks at the embedded engines' files (ONDO_TEST_BACKEND={backend})")
    yield
    if backends.distributed():
        backends.drop_finished()


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
