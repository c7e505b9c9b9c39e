"""The `ftp` source's server: pyftpdlib's FTPServer on its own IO loop in a thread.

Imported only by `ftp.py`'s `run`, so pyftpdlib is needed only where an ftp source runs.
pyftpdlib is synchronous; everything the server learns (an upload completed, a file deleted or
renamed, an upload refused) is handed to the asyncio side through `tell`, which must be safe to
call from this thread (ftp.py passes `loop.call_soon_threadsafe`). Nothing here touches the
platform.

Each user is jailed in `homes/<user>` (pyftpdlib refuses any path whose real location, symbolic
links resolved, is outside the home; `..` stops at the home's root). Quotas are enforced while
the bytes arrive: over the limit, the rest of the upload is read and discarded (up to
DRAIN_BYTES) so the client hears a `552` reply instead of a reset connection, and the partial
file is removed.
"""

from __future__ import annotations

import errno
import hashlib
import hmac
import logging
import os
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pyftpdlib.authorizers import (  # type: ignore[import-untyped]
    AuthenticationFailed,
    DummyAuthorizer,
)
from pyftpdlib.filesystems import AbstractedFS  # type: ignore[import-untyped]
from pyftpdlib.handlers import DTPHandler, FTPHandler  # type: ignore[import-untyped]
from pyftpdlib.ioloop import IOLoop  # type: ignore[import-untyped]
from pyftpdlib.servers import FTPServer  # type: ignore[import-untyped]

from ondo.sources.passwords import BadHash, verify_password
from ondo.units import size_text

log = logging.getLogger("ondo.sources.ftp")
# pyftpdlib configures logging itself (globally) unless its logger has a handler; its lines
# (a session opened, a file received) go to ondo's logs only from warnings up.
logging.getLogger("pyftpdlib").addHandler(logging.NullHandler())
logging.getLogger("pyftpdlib").setLevel(logging.WARNING)

PERMISSIONS = "elradfmwT"  # list, read, append, delete, rename, mkdir, store, set mtime; no chmod
DRAIN_BYTES = 64 << 20  # over quota: bytes read and dropped before the connection is cut
POLL_S = 0.1  # how long the server thread waits for sockets before looking at its stop flag
AUTH_FAILED_DELAY_S = 1.0  # pyftpdlib's pause before answering a wrong password (3 s default)


@dataclass(frozen=True)
class Received:
    """A whole file arrived; measured on the server's thread, before the client's next command
    (a rename right after the upload) can move it."""

    user: str
    path: str
    size: int
    etag: str
    mtime_ns: int


@dataclass(frozen=True)
class Deleted:
    user: str
    path: str


@dataclass(frozen=True)
class Refused:
    """An upload over quota, or aborted: what `ctx.problem` records."""

    message: str


@dataclass(frozen=True)
class Crashed:
    error: BaseException


Notice = Received | Deleted | Refused | Crashed
Tell = Callable[[Notice], None]


class FtpServer:
    """The server bound to its port (constructing it binds: OSError when the port is taken)."""

    def __init__(self, spec: Mapping[str, Any], homes: Path, tell: Tell) -> None:
        self.spec = spec
        self.homes = homes
        self.tell = tell
        self._stopping = threading.Event()
        handler = _handler_class(spec, homes, tell)
        self.server = FTPServer((spec["host"], spec["port"]), handler, ioloop=IOLoop.factory())
        self.address: tuple[str, int] = self.server.address
        self._thread = threading.Thread(target=self._serve, name="ondo-ftp", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Ask the thread to close every connection and the listening socket (quick)."""
        self._stopping.set()

    def join(self, timeout: float | None = None) -> None:
        self._thread.join(timeout)

    def _serve(self) -> None:
        try:
            while not self._stopping.is_set():  # (serve_forever would log on every pass)
                self.server.ioloop.loop(POLL_S, blocking=False)
        except BaseException as exc:  # the loop itself failed: the source restarts
            self.tell(Crashed(exc))
        finally:
            self.server.close_all()


def _handler_class(spec: Mapping[str, Any], homes: Path, tell: Tell) -> type[Any]:
    authorizer = _Authorizer(spec["users"])
    for user in spec["users"]:
        home = homes / user
        home.mkdir(parents=True, exist_ok=True, mode=0o700)
        authorizer.add_user(user, "", str(home), perm=PERMISSIONS)
    passive = spec.get("passive_ports")
    attributes = {
        "authorizer": authorizer,
        "abstracted_fs": _Filesystem,
        "dtp_handler": _Transfer,
        "passive_ports": list(range(passive[0], passive[1] + 1)) if passive else None,
        "auth_failed_timeout": AUTH_FAILED_DELAY_S,
        "banner": "ondo ftp source ready.",
        "ondo_users": spec["users"],
        "ondo_tell": staticmethod(tell),
    }
    return type("OndoFtpHandler", (_Handler,), attributes)


class _Authorizer(DummyAuthorizer):  # type: ignore[misc]
    """Passwords as written in ondo.yaml (compared in constant time) or scrypt hashes."""

    def __init__(self, users: Mapping[str, Mapping[str, Any]]) -> None:
        super().__init__()
        self.accounts = users

    def validate_authentication(self, username: str, password: str, handler: Any) -> None:
        account = self.accounts.get(username)
        if account is None or not _password_ok(account, password):
            log.warning("ftp: failed login for %r from %s", username, handler.remote_ip)
            raise AuthenticationFailed("Authentication failed.")


def _password_ok(account: Mapping[str, Any], password: str) -> bool:
    if "password_hash" in account:
        try:
            return verify_password(password, account["password_hash"])
        except BadHash:  # validated at deploy; a store edited by hand is refused, not crashed
            return False
    return hmac.compare_digest(password.encode(), str(account.get("password", "")).encode())


class _Handler(FTPHandler):  # type: ignore[misc]
    ondo_users: Mapping[str, Mapping[str, Any]] = {}

    @staticmethod
    def ondo_tell(notice: Notice) -> None:  # replaced per server by _handler_class
        raise NotImplementedError

    def room_for(self, path: str) -> tuple[int | None, str]:
        """Bytes `path` may hold, and why that many (None: no limit)."""
        quota = self.ondo_users[self.username].get("quota") or {}
        limits: list[tuple[int, str]] = []
        if quota.get("file"):
            limits.append((quota["file"], f"uploads are limited to {size_text(quota['file'])}"))
        if quota.get("total"):
            home = self.authorizer.get_home_dir(self.username)
            others = _used(home) - _size_of(path)
            room = max(quota["total"] - others, 0)
            limits.append((room, f"{self.username}'s {size_text(quota['total'])} quota is full"))
        if not limits:
            return None, ""
        return min(limits)

    ondo_last_file: Any = None  # the upload that just ended (set by _Transfer.close)

    def on_file_received(self, file: str) -> None:
        self._arrived(file, self.ondo_last_file)

    def _arrived(self, file: str, upload: Any) -> None:
        try:
            stat = os.stat(file)
            if isinstance(upload, _QuotaFile) and upload.fresh and not upload.start:
                etag = upload.md5.hexdigest()  # hashed as the bytes arrived
            else:  # appended, resumed or renamed: read it
                etag = _md5_of(file)
        except OSError as exc:
            self.ondo_tell(Refused(f"{self.fs.fs2ftp(file)} by {self.username}: {exc}"))
            return
        self.ondo_tell(Received(self.username, file, stat.st_size, etag, stat.st_mtime_ns))

    def on_incomplete_file_received(self, file: str) -> None:
        quota = self.ondo_last_file
        fresh = isinstance(quota, _QuotaFile) and quota.fresh
        if fresh:  # a new file that did not arrive whole is not kept (nor counted)
            _remove(file)
        shown = self.fs.fs2ftp(file)
        if isinstance(quota, _QuotaFile) and quota.over:
            message = f"upload of {shown} by {self.username} refused: {quota.reason}"
        else:
            kept = "removed" if fresh else "kept as it was written"
            message = f"upload of {shown} by {self.username} was aborted; the part is {kept}"
        self.ondo_tell(Refused(message))

    def ftp_DELE(self, path: str) -> str | None:
        removed: str | None = super().ftp_DELE(path)
        if removed:
            self.ondo_tell(Deleted(self.username, removed))
        return removed

    def ftp_RNTO(self, path: str) -> tuple[str, str] | None:
        moved: tuple[str, str] | None = super().ftp_RNTO(path)
        if moved and os.path.isfile(moved[1]):  # `x.tmp` renamed to `x.csv`: x.csv arrived
            self.ondo_tell(Deleted(self.username, moved[0]))
            self._arrived(moved[1], None)
        return moved


class _Filesystem(AbstractedFS):  # type: ignore[misc]
    """Files opened for writing count their bytes against the user's quota."""

    def open(self, filename: str, mode: str) -> Any:
        fresh = "w" in mode or not os.path.exists(filename)
        file = super().open(filename, mode)
        if "r" in mode and "+" not in mode:
            return file
        limit, reason = self.cmd_channel.room_for(filename)
        return _QuotaFile(file, limit, reason, fresh)

    def mkstemp(self, suffix: str = "", prefix: str = "", dir: Any = None, mode: str = "wb") -> Any:
        file = super().mkstemp(suffix, prefix, dir, mode)
        limit, reason = self.cmd_channel.room_for(file.name)
        return _QuotaFile(file, limit, reason, True)


class _QuotaFile:
    """A file being uploaded: past `limit` bytes, writes are dropped and the upload is over."""

    def __init__(self, file: Any, limit: int | None, reason: str, fresh: bool) -> None:
        self.file = file
        self.name: str = file.name
        self.limit = limit
        self.reason = reason
        self.fresh = fresh
        self.start: int | None = None  # where the upload began (after a REST's seek)
        self.over = False
        self.dropped = 0
        self.md5 = hashlib.md5(usedforsecurity=False)

    def write(self, chunk: bytes) -> int:
        if self.start is None:
            self.start = self.file.tell()
        if not self.over and self.limit is not None and self.file.tell() + len(chunk) > self.limit:
            self.over = True
            self.file.truncate(self.start)  # what was there before the upload stays
        if self.over:
            self.dropped += len(chunk)
            if self.dropped > DRAIN_BYTES:  # enough listening: cut the connection (426)
                raise OSError(errno.EDQUOT, os.strerror(errno.EDQUOT))
            return len(chunk)
        written: int = self.file.write(chunk)
        self.md5.update(chunk)
        return written

    def __getattr__(self, name: str) -> Any:
        return getattr(self.file, name)


class _Transfer(DTPHandler):  # type: ignore[misc]
    """An upload over quota ends with `552` (exceeded storage allocation), not `226`."""

    def close(self) -> None:
        file = self.file_obj
        self.cmd_channel.ondo_last_file = file
        if not self._closed and isinstance(file, _QuotaFile) and file.over:
            self.transfer_finished = False
            self._resp = (f"552 Exceeded storage allocation: {file.reason}.", log.warning)
        super().close()


def _md5_of(path: str) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as file:
        while chunk := file.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _used(home: str) -> int:
    total = 0
    for folder, _dirs, files in os.walk(home):
        for name in files:
            total += _size_of(os.path.join(folder, name))
    return total


def _size_of(path: str) -> int:
    try:
        return os.lstat(path).st_size
    except OSError:
        return 0


def _remove(path: str) -> None:
    try:
        os.remove(path)
    except OSError as exc:
        log.warning("ftp: could not remove the partial upload %s: %s", path, exc)
