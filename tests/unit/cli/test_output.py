"""What the CLI prints: RFC 3339 UTC in JSON, local ISO 8601 for people, durations, sizes."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

import pytest

from ondo.cli.output import for_json, local_time, localize
from ondo.durations import parse_duration
from ondo.errors import ValidationError
from ondo.events import format_epoch
from ondo.units import size_text


@pytest.fixture
def berlin() -> Iterator[None]:
    before = os.environ.get("TZ")
    os.environ["TZ"] = "Europe/Berlin"
    time.tzset()
    yield
    if before is None:
        del os.environ["TZ"]
    else:
        os.environ["TZ"] = before
    time.tzset()


def test_json_documents_carry_rfc3339_utc_for_every_epoch_field() -> None:
    doc = {
        "created_at": 1796281726.308,
        "jobs": [{"at": 0, "attempts": 3}],
        "seq": 7,
        "x": None,
        "state": {"last_fired": {"alice": 1796281726.308}, "counts": {"alice": 2}},
    }
    assert for_json(doc) == {
        "created_at": "2026-12-03T07:08:46.308Z",
        "jobs": [{"at": "1970-01-01T00:00:00.000Z", "attempts": 3}],
        "seq": 7,
        "x": None,
        "state": {"last_fired": {"alice": "2026-12-03T07:08:46.308Z"}, "counts": {"alice": 2}},
    }


def test_people_see_their_own_time_zone(berlin: None) -> None:
    assert local_time(1796281726.308) == "2026-12-03T08:08:46+01:00"
    assert localize("fires at 2026-12-03T07:08:46.308Z unless") == (
        "fires at 2026-12-03T08:08:46+01:00 unless"
    )
    assert format_epoch(1796281726.308) == "2026-12-03T07:08:46.308Z"


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90s", 90), ("15m", 900), ("2h", 7200), ("1d", 86400), ("1h30m", 5400), ("2.5", 2.5)],
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text, bare_seconds=True) == seconds


@pytest.mark.parametrize("text", ["", "15x", "m", "1h 30", "-5"])
def test_bad_durations_say_how_to_write_one(text: str) -> None:
    with pytest.raises(ValidationError, match=r"duration|negative"):
        parse_duration(text, bare_seconds=True)


def test_sizes_read_in_binary_units() -> None:
    sizes = (512, 1024, 1536, 64 << 20, 3 << 30, (64 << 10) + 1)
    assert [size_text(n) for n in sizes] == [
        "512 B",
        "1 KiB",
        "1.5 KiB",
        "64 MiB",
        "3 GiB",
        "64.1 KiB",  # one byte over 64 KiB never reads as the limit itself
    ]
