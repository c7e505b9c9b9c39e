"""The data dir's lock and modes, in-process (the functional tests run real `ondo up`s)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from ondo import datadir
from ondo.errors import DataDirInUse


def mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def test_the_lock_is_exclusive_names_its_holder_and_is_released(tmp_path: Path) -> None:
    held = datadir.lock(tmp_path / "data")
    assert mode(tmp_path / "data") == 0o700
    with pytest.raises(DataDirInUse, match=f"another ondo \\(pid {os.getpid()}\\) is using"):
        datadir.lock(tmp_path / "data")
    held.release()
    datadir.lock(tmp_path / "data").release()


def test_make_private_keeps_owner_exec_and_leaves_shared_contents_readable(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    (data / "code" / "abc").mkdir(parents=True)
    (data / "code" / "abc" / "app.py").write_text("")
    os.chmod(data / "code" / "abc" / "app.py", 0o444)
    (data / "other" / "deep").mkdir(parents=True)
    (data / "other" / "deep" / "tool").write_text("")
    os.chmod(data / "other" / "deep" / "tool", 0o755)
    (data / "ondo.db").write_text("")
    os.chmod(data / "ondo.db", 0o644)
    os.chmod(data, 0o755)
    datadir.make_private(data)
    assert mode(data) == mode(data / "code") == mode(data / "layers") == 0o700
    assert mode(data / "ondo.db") == 0o600
    assert mode(data / "other" / "deep") == 0o700
    assert mode(data / "other" / "deep" / "tool") == 0o700
    assert mode(data / "code" / "abc" / "app.py") == 0o444  # sandboxes read it as other uids


def test_only_sandboxes_without_a_private_root_need_the_path() -> None:
    rooted = {"mount": {"active": True}, "rootfs": {"active": True}, "user": {"active": True}}
    hidden_paths = {**rooted, "rootfs": {"active": False}}
    no_mount = {**hidden_paths, "mount": {"active": False}}
    off = {name: {"active": False} for name in rooted}
    as_root = os.geteuid() == 0
    assert datadir.sandboxes_read_code_by_path(rooted) is False
    assert datadir.sandboxes_read_code_by_path(hidden_paths) is False
    assert datadir.sandboxes_read_code_by_path(off) is False
    assert datadir.sandboxes_read_code_by_path(no_mount) is as_root
