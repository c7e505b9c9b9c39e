"""The data directory of a real `ondo up`: one process at a time, and owner-only modes."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from tests.functional.conftest import EXAMPLES
from tests.functional.platform import REPO, RunningPlatform, free_port

SHARED_WITH_SANDBOXES = ("code", "layers")


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def owner_only_problems(data_dir: Path) -> list[str]:
    """Every path whose mode is not 0700 (directories) or 0600 (files); the files inside code/
    and layers/ are read-only for all by design (sandboxes read them as other uids)."""
    problems = [f"{data_dir} {oct(mode_of(data_dir))}"] if mode_of(data_dir) != 0o700 else []
    for path in sorted(data_dir.rglob("*")):
        relative = path.relative_to(data_dir)
        if relative.parts[0] in SHARED_WITH_SANDBOXES and len(relative.parts) > 1:
            continue
        wanted = 0o700 if path.is_dir() else 0o600
        if mode_of(path) != wanted:
            problems.append(f"{relative} {oct(mode_of(path))}")
    return problems


def test_a_second_ondo_up_on_the_same_data_dir_is_refused(tmp_path: Path) -> None:
    with RunningPlatform(tmp_path / "data") as first:
        assert first.proc is not None
        args = ["--data-dir", str(first.data_dir), "up", "--port", str(free_port())]
        second = subprocess.run(
            [sys.executable, "-m", "ondo", *args],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=REPO,
            env=first.env,
        )
        assert second.returncode != 0
        assert f"another ondo (pid {first.proc.pid}) is using {first.data_dir}" in second.stderr
        assert "stop it first" in second.stderr and "Traceback" not in second.stderr
        with first.client() as api:  # the first one is untouched
            assert api.get("/v1/functions").status_code == 200


def test_the_lock_is_released_when_ondo_stops(tmp_path: Path) -> None:
    platform = RunningPlatform(tmp_path / "data")
    with platform:
        pass
    with platform:  # the same directory again, after a clean stop
        assert platform.proc is not None
        holder = (platform.data_dir / "ondo.lock").read_text().strip()
        assert holder == str(platform.proc.pid)


@pytest.mark.embedded_only
def test_a_fresh_data_dir_is_owner_only_wal_files_code_and_layers_included(
    tmp_path: Path,
) -> None:
    with RunningPlatform(tmp_path / "data", apps=[EXAMPLES / "hello"]) as platform:
        with platform.client() as api:
            assert api.post("/v1/functions/hello/invoke", json={"name": "x"}).status_code == 200
            sent = api.post("/v1/events", json={"specversion": "1.0", "source": "/s", "type": "t"})
            assert sent.status_code == 202
        data = platform.data_dir
        expected = {"ondo.db-wal", "ondo.db-shm", "bus.db-wal", "bus.db-shm", "code", "layers"}
        assert expected <= {p.name for p in data.iterdir()}
        assert any((data / "code").iterdir())  # the hello bundle
        assert owner_only_problems(data) == []


def test_an_old_world_readable_data_dir_is_made_owner_only_at_start(tmp_path: Path) -> None:
    platform = RunningPlatform(tmp_path / "data", apps=[EXAMPLES / "hello"])
    with platform:
        pass
    data = platform.data_dir
    os.chmod(data, 0o755)  # as an older ondo left it
    for path in data.rglob("*"):
        relative = path.relative_to(data)
        if relative.parts[0] in SHARED_WITH_SANDBOXES and len(relative.parts) > 1:
            continue
        os.chmod(path, 0o755 if path.is_dir() else 0o644)
    assert owner_only_problems(data) != []
    with platform:
        assert owner_only_problems(data) == []
        with platform.client() as api:  # and functions still run from the code store
            assert api.post("/v1/functions/hello/invoke", json={"name": "x"}).status_code == 200
