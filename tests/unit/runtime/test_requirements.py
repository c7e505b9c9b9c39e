"""The requirements check: what it reads, what it lets through, what it refuses."""

from __future__ import annotations

from pathlib import Path

import pytest

from ondo.errors import UnsafeRequirements
from ondo.runtime.requirements import check_requirements


def _check(tmp_path: Path, text: str, allow_index: bool = False) -> list[str]:
    (tmp_path / "requirements.txt").write_text(text)
    return check_requirements(tmp_path / "requirements.txt", tmp_path, allow_index).index_urls


def test_names_hashes_comments_and_continuations_pass(tmp_path: Path) -> None:
    text = (
        "# pinned\nrequests==2.31 ; python_version > '3.8'  # trailing\n"
        "six==1.16 \\\n    --hash=sha256:abc\n--prefer-binary\n--only-binary=:all:\n"
    )
    assert _check(tmp_path, text) == []


def test_a_continued_line_is_reported_at_its_first_line(tmp_path: Path) -> None:
    with pytest.raises(UnsafeRequirements, match=r"^requirements.txt:2: .*outside"):
        _check(tmp_path, "six\n-r \\\n  /etc/passwd\n")


def test_allowed_index_urls_are_collected_for_the_build(tmp_path: Path) -> None:
    text = "--extra-index-url https://mirror.example/simple\n--trusted-host mirror.example\n"
    urls = _check(tmp_path, text, allow_index=True)
    assert urls == ["https://mirror.example/simple", "https://mirror.example"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("--install-option=--prefix=/\n", "option --install-option is not allowed"),
        ("-r missing.txt\n", "no such file in the app"),
        ("-e git+https://evil.example/x.git#egg=x\n", "outside the package index"),
        ("-e ~/project\n", "outside the app directory"),
        ("pkg @ file:///etc/passwd\n", "a file: URL '/etc/passwd' points outside"),
        ("-r requirements.txt\n", "more than 64 requirements files"),
    ],
)
def test_refusals_name_the_line(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(UnsafeRequirements, match=message):
        _check(tmp_path, text)
