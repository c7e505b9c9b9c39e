"""Owner-only data dirs and the sandbox's fallbacks: functions still run from the code store."""

from __future__ import annotations

import asyncio
import os
import shutil
import stat
import tempfile
from pathlib import Path

import pytest

from ondo.api.routes.deployments import deploy_manifest
from ondo.config import Config
from ondo.deploy.manifest import read_manifest
from ondo.platform import Platform
from ondo.runtime.runtime import ZygoteRuntime
from ondo.runtime.sandbox import SandboxOptions
from tests.functional.conftest import EXAMPLES


def run_hello(data: Path, disabled: tuple[str, ...]) -> tuple[str, int]:
    async def scenario() -> tuple[str, int]:
        config = Config(data_dir=data)
        options = SandboxOptions(hidden_paths=(str(data),), disabled_layers=disabled)
        platform = Platform(config, runtime=ZygoteRuntime(sandbox=options))
        await platform.start()
        try:
            manifest = read_manifest(EXAMPLES / "hello")
            await deploy_manifest(platform.deploy_targets, manifest, "default", dry_run=False)
            record = await platform.functions.invoke("hello", b'{"name": "x"}')
            return record.status, stat.S_IMODE(data.stat().st_mode)
        finally:
            await platform.stop()

    return asyncio.run(scenario())


@pytest.mark.parametrize(
    ("disabled", "data_mode"),
    [((), 0o700), (("rootfs",), 0o700), (("mount", "rootfs"), 0o711)],
    ids=["private-root", "hidden-paths", "no-mount-namespace"],
)
def test_functions_run_under_each_sandbox_fallback(
    disabled: tuple[str, ...], data_mode: int
) -> None:
    # Not under pytest's tmp_path: its 0700 parents would stop sandbox uids on their own.
    base = Path(tempfile.mkdtemp(prefix="ondo-datadir-"))
    try:
        os.chmod(base, 0o755)
        status, mode = run_hello(base / "data", disabled)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    assert status == "succeeded"
    # 0711 only where sandboxes must walk the real directory (and only when ondo runs as root).
    assert mode == (data_mode if os.geteuid() == 0 else 0o700)
