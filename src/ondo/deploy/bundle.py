"""Moving an app directory over HTTP: the CLI packs it as tar.gz, the server unpacks it safely."""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path

from ondo.errors import PayloadTooLarge, ValidationError
from ondo.functions.bundle import IGNORED_NAMES
from ondo.units import size_text

MAX_APP_BYTES = 64 * 1024 * 1024


def pack(app_dir: Path) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for dirpath, dirnames, filenames in os.walk(app_dir):
            dirnames[:] = sorted(d for d in dirnames if d not in IGNORED_NAMES)
            for name in sorted(filenames):
                path = Path(dirpath, name)
                if path.is_file() and not path.is_symlink() and not name.endswith(".pyc"):
                    tar.add(path, arcname=str(path.relative_to(app_dir)), recursive=False)
    return buf.getvalue()


def unpack(data: bytes, target: Path, limit: int = MAX_APP_BYTES) -> None:
    """Extract regular files and directories only, never outside `target`."""
    try:
        tar = tarfile.open(fileobj=io.BytesIO(data), mode="r:*")  # noqa: SIM115 (closed below)
    except tarfile.TarError:
        raise ValidationError(
            "deployment body is not a tar archive; send the app directory as tar.gz"
            " (`ondo deploy DIR` does)"
        ) from None
    total = 0
    with tar:
        for member in tar:
            if not (member.isfile() or member.isdir()):
                raise ValidationError(f"deployment archive: {member.name!r} is not a regular file")
            dest = (target / member.name).resolve()
            if not dest.is_relative_to(target.resolve()):
                raise ValidationError(f"deployment archive: {member.name!r} points outside the app")
            total += member.size
            if total > limit:
                raise PayloadTooLarge(f"deployment unpacks to more than {size_text(limit)}")
            if member.isdir():
                dest.mkdir(parents=True, exist_ok=True)
                continue
            dest.parent.mkdir(parents=True, exist_ok=True)
            source = tar.extractfile(member)
            if source is not None:
                dest.write_bytes(source.read())
