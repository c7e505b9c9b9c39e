from __future__ import annotations

from pathlib import Path

import pytest

from ondo.errors import DeployError
from ondo.functions.bundle import CodeStore, hash_code


def code_dir(root: Path, text: str = "def handler(e, c):\n    return e\n") -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "app.py").write_text(text)
    return root


def test_same_content_same_hash_and_one_copy(tmp_path: Path) -> None:
    store = CodeStore(tmp_path / "code")
    first = store.add(code_dir(tmp_path / "a"))
    second = store.add(code_dir(tmp_path / "b"))
    assert first == second == hash_code(tmp_path / "a")
    assert [p.name for p in (tmp_path / "code").iterdir()] == [first]
    assert (store.path(first) / "app.py").read_text().startswith("def handler")


def test_changed_content_changes_hash_and_copies_are_read_only(tmp_path: Path) -> None:
    store = CodeStore(tmp_path / "code")
    first = store.add(code_dir(tmp_path / "a"))
    second = store.add(code_dir(tmp_path / "a", "def handler(e, c):\n    return 1\n"))
    assert first != second
    mode = (store.path(first) / "app.py").stat().st_mode
    assert mode & 0o222 == 0  # no write bit for anyone (the sandbox also mounts it read-only)


def test_size_limit_and_missing_directory(tmp_path: Path) -> None:
    big = code_dir(tmp_path / "big")
    (big / "data.bin").write_bytes(b"x" * 4096)
    with pytest.raises(DeployError, match="larger than"):
        hash_code(big, limit=1024)
    with pytest.raises(DeployError, match="does not exist"):
        CodeStore(tmp_path / "code").add(tmp_path / "nope")
