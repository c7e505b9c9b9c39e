"""The data directory: owned by one ondo process at a time, and readable by its owner only.

It holds function environment values, event payloads and invocation results (`ondo.db`,
`bus.db` and their `-wal`/`-shm` files), the admin token and the function code. So:

- `lock` takes `fcntl.flock` on `<data dir>/ondo.lock` for the life of the platform and writes
  the holder's pid in it; a second platform on the same directory is refused (DataDirInUse)
  before it touches anything, instead of both doing the same work twice.
- `make_private` makes the directory 0700 and every file in it 0600 (directories 0700), on a
  fresh start and on an upgrade from a 0755/0644 directory. The *contents* of `code/` and
  `layers/` stay read-only for all: sandboxes run as other uids and read them through bind
  mounts, and nobody else can reach them, because `code/`, `layers/` and the data dir are 0700.
- The platform creates its databases and directories under umask 077. SQLite creates a
  database's `-wal`/`-shm` files (again after every clean stop) with the database file's own
  mode, so they are 0600 too. The umask is not kept for the process's life: sandboxes and pip
  (function layers) are started by this process and must create files other uids can read.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import stat
import weakref
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from ondo.errors import DataDirInUse

log = logging.getLogger("ondo.datadir")

LOCK_NAME = "ondo.lock"
PRIVATE_DIR = 0o700
PRIVATE_FILE = 0o600
SHARED_WITH_SANDBOXES = ("code", "layers")  # their contents are read by sandbox uids
OWNER_ONLY_UMASK = 0o077


class DataDirLock:
    """An exclusive `flock` on `<data dir>/ondo.lock`, held until `release` (or process exit).

    A platform that is dropped without `stop` (tests build some) releases it when collected.
    """

    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / LOCK_NAME
        self._fd = -1
        self._closer: weakref.finalize[Any, Any] | None = None

    def acquire(self) -> DataDirLock:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, PRIVATE_FILE)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 64).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise DataDirInUse(
                f"another ondo (pid {holder}) is using {self.path.parent}; stop it first, or "
                "give this one a data directory of its own (--data-dir or ONDO_DATA_DIR)"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd
        self._closer = weakref.finalize(self, os.close, fd)
        return self

    def release(self) -> None:
        if self._closer is not None and self._closer.alive:
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, 0)
            self._closer()  # closing the descriptor drops the flock


def lock(data_dir: Path) -> DataDirLock:
    """Create `data_dir` (0700) if needed and lock it; DataDirInUse if another process holds it."""
    data_dir.mkdir(mode=PRIVATE_DIR, parents=True, exist_ok=True)
    return DataDirLock(data_dir).acquire()


@contextlib.contextmanager
def owner_only_umask() -> Iterator[None]:
    previous = os.umask(OWNER_ONLY_UMASK)
    try:
        yield
    finally:
        os.umask(previous)


def make_private(data_dir: Path) -> None:
    """0700 for the directory and every directory in it, 0600 for files (see the module doc)."""
    os.chmod(data_dir, PRIVATE_DIR)
    for name in SHARED_WITH_SANDBOXES:  # made now, so not later under another umask
        (data_dir / name).mkdir(mode=PRIVATE_DIR, exist_ok=True)
    for entry in os.scandir(data_dir):
        if entry.name in SHARED_WITH_SANDBOXES and entry.is_dir(follow_symlinks=False):
            os.chmod(entry.path, PRIVATE_DIR)
        else:
            _make_private_tree(entry.path)


def _make_private_tree(path: str) -> None:
    mode = os.lstat(path).st_mode
    if stat.S_ISLNK(mode):
        return
    if not stat.S_ISDIR(mode):
        _chmod_if_needed(path, mode, PRIVATE_FILE | (stat.S_IXUSR & mode))
        return
    _chmod_if_needed(path, mode, PRIVATE_DIR)
    for entry in os.scandir(path):
        _make_private_tree(entry.path)


def _chmod_if_needed(path: str, mode: int, wanted: int) -> None:
    if stat.S_IMODE(mode) != wanted:
        os.chmod(path, wanted)


def sandboxes_read_code_by_path(layers: Mapping[str, Any]) -> bool:
    """Whether sandboxes run as other uids yet see the host's data dir itself (no mount layer).

    Then they must traverse it to reach their code: it gets 0711 (enter, not list) and a
    warning. With a mount namespace they see code through a private root (rootfs) or through
    a 0755 tmpfs laid over the data dir (hidden paths), never through the 0700 directory.
    """
    active = {name for name, state in layers.items() if state.get("active")}
    return os.geteuid() == 0 and bool(active) and "mount" not in active


def open_for_sandboxes(data_dir: Path) -> None:
    log.warning(
        "sandboxes run without a mount namespace and reach function code by its path: %s "
        "and its code/ and layers/ are 0711 (others may enter, not list); every other file "
        "in it stays 0600",
        data_dir,
    )
    for path in (data_dir, *(data_dir / name for name in SHARED_WITH_SANDBOXES)):
        if path.is_dir():
            os.chmod(path, 0o711)
