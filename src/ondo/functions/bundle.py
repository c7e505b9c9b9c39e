"""Code bundles: a function's directory copied into a content-addressed, read-only store."""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import tempfile
from pathlib import Path

from ondo.errors import DeployError
from ondo.units import size_text

MAX_CODE_BYTES = 50 * 1024 * 1024
IGNORED_NAMES = frozenset({"__pycache__", ".git", ".venv", ".mypy_cache", ".pytest_cache"})


def _files(root: Path) -> list[Path]:
    found: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in IGNORED_NAMES)
        found.extend(Path(dirpath, f) for f in sorted(filenames) if not f.endswith(".pyc"))
    return found


def hash_code(root: Path, *, limit: int = MAX_CODE_BYTES) -> str:
    """sha256 over relative paths and contents; raises DeployError past `limit` bytes."""
    digest = hashlib.sha256()
    total = 0
    for path in _files(root):
        if path.is_symlink() or not path.is_file():
            continue
        total += path.stat().st_size
        if total > limit:
            raise DeployError(
                f"code directory {root} is larger than {size_text(limit)};"
                " keep data out of it or move dependencies to requirements.txt"
            )
        digest.update(str(path.relative_to(root)).encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()


class CodeStore:
    """`<root>/<sha256>/` holds an immutable copy of each distinct code directory."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)

    def path(self, code_hash: str) -> Path:
        return self.root / code_hash

    def add(self, source: Path) -> str:
        if not source.is_dir():
            raise DeployError(f"code directory {source} does not exist or is not a directory")
        code_hash = hash_code(source)
        target = self.path(code_hash)
        if target.is_dir():
            return code_hash
        staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=self.root))
        try:
            for path in _files(source):
                if path.is_symlink() or not path.is_file():
                    continue
                dest = staging / path.relative_to(source)
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(path, dest)
            make_read_only(staging)
            staging.rename(target)
        except FileExistsError:
            pass  # another deploy stored the same content first
        except OSError:
            shutil.rmtree(staging, ignore_errors=True)
            if not target.is_dir():
                raise
        finally:
            if staging.exists():
                shutil.rmtree(staging, ignore_errors=True)
        return code_hash


def make_read_only(root: Path) -> None:
    read_only_file = stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH
    for dirpath, _dirs, filenames in os.walk(root):
        for name in filenames:
            os.chmod(Path(dirpath, name), read_only_file)
        os.chmod(dirpath, read_only_file | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
