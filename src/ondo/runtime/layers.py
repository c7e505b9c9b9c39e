"""Dependency layers: `pip install -r requirements.txt` once per content hash, then reused."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from ondo.errors import RequirementsError
from ondo.runtime.builds import BuildSettings, sandboxed_pip
from ondo.runtime.requirements import check_requirements

_NO_MATCH = re.compile(r"No matching distribution found for ([^\s]+)")
_NOT_FOUND = re.compile(r"Could not find a version that satisfies the requirement ([^\s]+)")
# pip's own lines that start a step people wait for, and the word we show for it.
_PIP_STEPS = (
    ("Collecting ", "resolving"),
    ("Processing ", "resolving"),
    ("Downloading ", "downloading"),
    ("Using cached ", "downloading (cached)"),
    ("Building wheel for ", "building"),
    ("Installing collected packages: ", "installing"),
)

Progress = Callable[[str], None]


def pip_step(line: str) -> str | None:
    """`resolving requests` for pip's `Collecting requests`; None for lines that start no step."""
    text = line.strip()
    for prefix, step in _PIP_STEPS:
        if text.startswith(prefix):
            what = text.removeprefix(prefix).split(" (from ")[0]  # not pip's own file paths
            return f"{step} {what}"
    return None


def layer_hash(requirements: Path) -> str:
    return hashlib.sha256(requirements.read_bytes()).hexdigest()


def build_layer(
    requirements: Path,
    layers_root: Path,
    progress: Progress | None = None,
    app_root: Path | None = None,
    settings: BuildSettings | None = None,
) -> Path:
    """Install `requirements` into layers_root/<sha256 of its content>/ (reused when present).

    `progress` hears each step of pip's work as it starts (resolving, downloading, building).
    The file and its includes are checked first (nothing outside `app_root`, by default the
    file's directory); pip then runs in a sandbox (builds.py) that can write only the layer.
    """
    settings = settings or BuildSettings()
    try:
        digest = layer_hash(requirements)
    except OSError as exc:
        raise RequirementsError(f"cannot read {requirements}: {exc.strerror}") from exc
    root = (app_root or requirements.parent).resolve()
    checked = check_requirements(requirements, root, settings.allow_index_options)
    target = layers_root / digest
    if target.is_dir():
        (progress or _quiet)(f"{requirements.name} unchanged: layer {digest[:12]} reused")
        return target
    layers_root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{digest[:12]}-", dir=layers_root))
    try:
        build = Build(requirements.resolve(), root, staging, settings, checked.index_urls)
        _pip_install(build, progress or _quiet)
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


def _quiet(step: str) -> None:
    pass


@dataclass(frozen=True)
class Build:
    requirements: Path
    app_root: Path
    staging: Path
    settings: BuildSettings
    index_urls: list[str]


def _pip_install(build: Build, progress: Progress) -> None:
    requirements, timeout_s = build.requirements, build.settings.timeout_s
    with sandboxed_pip(
        requirements, build.app_root, build.staging, build.settings, build.index_urls
    ) as pip:
        expired = threading.Event()
        timer = threading.Timer(timeout_s, _expire, (pip, expired))
        timer.start()
        output = _follow(pip.stdout, progress)
        returncode = pip.wait()
        timer.cancel()
    if expired.is_set():
        raise RequirementsError(
            f"{requirements.name}: the dependency build did not finish in {timeout_s:.0f} s; "
            "check the network or pin smaller packages"
        )
    if returncode != 0:
        raise RequirementsError(_explain(requirements, output))


def _expire(pip: subprocess.Popen[str], expired: threading.Event) -> None:
    expired.set()
    pip.kill()


def _follow(stream: Iterable[str] | None, progress: Progress) -> str:
    """pip's output, reporting each step as its line arrives."""
    lines: list[str] = []
    for line in stream or ():
        lines.append(line)
        step = pip_step(line)
        if step:
            progress(step)
    return "".join(lines)


def _explain(requirements: Path, output: str) -> str:
    match = _NO_MATCH.search(output) or _NOT_FOUND.search(output)
    errors = [line.strip() for line in output.splitlines() if line.strip().startswith("ERROR:")]
    reason = errors[-1].removeprefix("ERROR:").strip() if errors else output.strip()[-2000:]
    what = f"package {match.group(1)!r}" if match else "the requirements"
    return (
        f"{requirements}: pip could not install {what}: {reason or 'no message'}. "
        f"Fix the name or version in {requirements.name}, or remove the line."
    )
