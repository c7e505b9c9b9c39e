"""What the ftp and bucket kinds share: sizes, key patterns, deterministic ids."""

from __future__ import annotations

from pathlib import Path

import pytest

from ondo.errors import ConfigError
from ondo.sources.base import PlainWhere
from ondo.sources.objects import content_type, event_id, key_matches, parse_size

AT = PlainWhere(Path("/app"), "sources.s")


@pytest.mark.parametrize(
    ("text", "size"),
    [(512, 512), ("10MB", 10_000_000), ("1.5GiB", 3 << 29), ("64k", 64_000), ("2 KiB", 2048)],
)
def test_sizes_are_bytes_or_decimal_and_binary_units(text: object, size: int) -> None:
    assert parse_size(text, AT, ("quota", "file")) == size


@pytest.mark.parametrize("text", ["lots", "-1", True, 0, "0MB", [1]])
def test_bad_sizes_name_the_field(text: object) -> None:
    with pytest.raises(ConfigError, match=r"^sources\.s\.quota\.file: must be"):
        parse_size(text, AT, ("quota", "file"))


@pytest.mark.parametrize(
    ("key", "patterns", "matches"),
    [
        ("a/b.csv", [], True),
        ("a/b.csv", ["*.csv"], True),  # on the file name
        ("a/b.csv", ["a/*.csv"], True),
        ("a/b/c.csv", ["a/*.csv"], False),
        ("a/b/c.csv", ["a/**/*.csv"], True),
        ("a/c.csv", ["a/**/*.csv"], True),
        ("reports/q1.txt", ["reports/**"], True),
        ("q1.csv", ["q?.csv"], True),
        ("q10.csv", ["q?.csv"], False),
        ("b.csv.tmp", ["*.csv"], False),
    ],
)
def test_key_patterns(key: str, patterns: list[str], matches: bool) -> None:
    assert key_matches(key, patterns) is matches


def test_ids_follow_the_object_not_the_moment() -> None:
    one = event_id("default", "uploads", "a.csv", "etag", 1)
    assert one == event_id("default", "uploads", "a.csv", "etag", 1)
    assert one.startswith("obj-") and len(one) == 36
    others = {
        event_id("tenant", "uploads", "a.csv", "etag", 1),
        event_id("default", "drop", "a.csv", "etag", 1),
        event_id("default", "uploads", "b.csv", "etag", 1),
        event_id("default", "uploads", "a.csv", "other", 1),
        event_id("default", "uploads", "a.csv", "etag", 2),
    }
    assert one not in others and len(others) == 5


def test_content_types_are_guessed_from_the_key() -> None:
    assert content_type("a/q1.csv") == "text/csv"
    assert content_type("photo.JPG") == "image/jpeg"
    assert content_type("blob") == "application/octet-stream"
