"""Dependency layers: `pip install -r requirements.txt` once per content hash, then reused."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from ondo.errors import RequirementsError

PIP_TIMEOUT_S = 600.0
_NO_MATCH = re.compile(r"No matching distribution found for ([^\s]+)")
_NOT_FOUND = re.compile(r"Could not find a version that satisfies the requirement ([^\s]+)")


def layer_hash(requirements: Path) -> str:
    return hashlib.sha256(requirements.read_bytes()).hexdigest()


def build_layer(requirements: Path, layers_root: Path) -> Path:
    """Install `requirements` into layers_root/<sha256 of its content>/ (reused when present)."""
    try:
        digest = layer_hash(requirements)
    except OSError as exc:
        raise RequirementsError(f"cannot read {requirements}: {exc.strerror}") from exc
    target = layers_root / digest
    if target.is_dir():
        return target
    layers_root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{digest[:12]}-", dir=layers_root))
    try:
        _pip_install(requirements, staging)
        os.chmod(staging, 0o755)
        try:
            staging.rename(target)
        except OSError:
            if not target.is_dir():  # a concurrent build of the same file may have won
                raise
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return target


def _pip_install(requirements: Path, into: Path) -> None:
    command = [
        sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
        "--no-input", "--no-warn-script-location", "--target", str(into),
        "-r", str(requirements),
    ]  # fmt: skip
    try:
        done = subprocess.run(
            command,
            capture_output=True,
            text=True,
            timeout=PIP_TIMEOUT_S,
            cwd=requirements.parent,
            env={**os.environ, "PIP_NO_INPUT": "1"},
        )
    except subprocess.TimeoutExpired as exc:
        raise RequirementsError(
            f"{requirements}: pip did not finish in {PIP_TIMEOUT_S:.0f} s; "
            "check the network or pin smaller packages"
        ) from exc
    if done.returncode != 0:
        raise RequirementsError(_explain(requirements, done.stderr or done.stdout))


def _explain(requirements: Path, output: str) -> str:
    match = _NO_MATCH.search(output) or _NOT_FOUND.search(output)
    errors = [line.strip() for line in output.splitlines() if line.strip().startswith("ERROR:")]
    reason = errors[-1].removeprefix("ERROR:").strip() if errors else output.strip()[-2000:]
    what = f"package {match.group(1)!r}" if match else "the requirements"
    return (
        f"{requirements}: pip could not install {what}: {reason or 'no message'}. "
        f"Fix the name or version in {requirements.name}, or remove the line."
    )
