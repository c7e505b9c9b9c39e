"""The `ftp` source kind: a built-in FTP server whose completed uploads become `object.created`.

```yaml
sources:
  uploads:
    kind: ftp
    port: 2121                      # host: 127.0.0.1 by default
    passive_ports: 60000-60100      # optional; the OS picks otherwise
    quota: {file: 100MB, total: 1GB}
    users:
      alice: {password: "s3cret"}
      bob: {password_hash: "scrypt$16384$8$1$…", quota: {total: 10GB}}
```

Each user has a home `<data dir>/sources/<namespace>/<source>/homes/<user>` and cannot leave it.
An upload that completes emits `object.created` (objects.py) with `bucket` = the source's name
and `key` = `<user>/<path in the home>`, so keys stay unique across users; deleting a file
(DELE) emits `object.deleted`; renaming one (RNFR/RNTO, as clients do after uploading to a
temporary name) emits `object.deleted` for the old key and `object.created` for the new one.
An upload over quota is refused to the client with `552` and recorded with `ctx.problem`.

`python -m ondo.sources.ftp hash` prints a `password_hash` for a password (passwords.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import ipaddress
import re
import sys
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ondo.sources.base import FieldPath, Settings, SourceContext, Where, no_unknown_keys
from ondo.sources.objects import ObjectInfo, created_event, deleted_event, parse_size
from ondo.sources.passwords import BadHash, check_hash, hash_password

if TYPE_CHECKING:
    from ondo.backends.store.repositories.sources import StoredSource
    from ondo.sources.ftp_server import Notice

KEYS = ("host", "port", "passive_ports", "users", "quota")
USER_KEYS = ("password", "password_hash", "quota")
QUOTA_KEYS = ("file", "total")
DEFAULT_PORT = 2121
USER_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,62}$")
_RANGE_RE = re.compile(r"^\s*(\d+)\s*-\s*(\d+)\s*$")


class FtpKind:
    name = "ftp"

    def validate(self, settings: Mapping[str, Any], at: Where) -> Settings:
        no_unknown_keys(settings, KEYS, at)
        host = settings.get("host", "127.0.0.1")
        try:
            ipaddress.ip_address(host)
        except (TypeError, ValueError):
            raise at.error(("host",), f"must be an IP address to listen on, got {host!r}") from None
        default_quota = _quota(settings.get("quota"), at, ("quota",))
        return {
            "host": host,
            "port": _port(settings.get("port", DEFAULT_PORT), at, ("port",)),
            "passive_ports": _passive(settings.get("passive_ports"), at),
            "users": _users(settings.get("users"), default_quota, at),
            "quota": default_quota,
        }

    async def run(self, source: StoredSource, ctx: SourceContext) -> None:
        with warnings.catch_warnings():  # pyftpdlib imports asyncore/asynchat on Python 3.11
            warnings.filterwarnings("ignore", "The async(ore|hat) module", DeprecationWarning)
            from ondo.sources.ftp_server import FtpServer  # pyftpdlib: only where ftp sources run

        loop = asyncio.get_running_loop()
        notices: asyncio.Queue[Notice] = asyncio.Queue()
        homes = ctx.data_dir / "homes"
        homes.mkdir(exist_ok=True, mode=0o700)

        def tell(notice: Notice) -> None:  # called on the server's thread
            loop.call_soon_threadsafe(notices.put_nowait, notice)

        server = FtpServer(source.spec, homes, tell)
        server.start()
        try:
            host, port = server.address
            ctx.connected(f"listening on ftp://{host}:{port}")
            while True:
                await _handle(await notices.get(), homes, ctx)
        finally:
            server.stop()
            with contextlib.suppress(asyncio.CancelledError):  # the port is free when it ends
                await asyncio.shield(asyncio.to_thread(server.join))


async def _handle(notice: Notice, homes: Path, ctx: SourceContext) -> None:
    from ondo.sources.ftp_server import Crashed, Deleted, Received, Refused

    if isinstance(notice, Crashed):
        raise notice.error
    if isinstance(notice, Refused):
        ctx.problem(notice.message)
        return
    key = _key(homes, notice.path)
    if key is None:
        ctx.problem(f"{notice.path} is outside the FTP homes {homes}; no event")
        return
    extra = {"uploader": notice.user}
    if isinstance(notice, Deleted):
        await ctx.emit(deleted_event(ctx.namespace, ctx.name, key, ctx.clock.now(), extra))
        return
    assert isinstance(notice, Received)
    info = ObjectInfo(key, notice.size, notice.etag, notice.mtime_ns, Path(notice.path))
    await ctx.emit(created_event(ctx.namespace, ctx.name, info, ctx.clock.now(), extra))


def _key(homes: Path, path: str) -> str | None:
    try:
        return Path(path).relative_to(homes).as_posix()
    except ValueError:
        return None


# --- settings ------------------------------------------------------------------------------


def _port(value: Any, at: Where, path: tuple[str, ...]) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 65535:
        raise at.error(path, f"must be a TCP port from 1 to 65535, got {value!r}")
    return value


def _passive(value: Any, at: Where) -> list[int] | None:
    """`60000-60100` or `[60000, 60100]`: the ports offered for data connections (PASV)."""
    if value is None:
        return None
    if isinstance(value, str) and (match := _RANGE_RE.match(value)):
        value = [int(match[1]), int(match[2])]
    if not isinstance(value, list) or len(value) != 2:
        raise at.error(("passive_ports",), f"must be a range such as 60000-60100, got {value!r}")
    low = _port(value[0], at, ("passive_ports",))
    high = _port(value[1], at, ("passive_ports",))
    if low > high:
        raise at.error(("passive_ports",), f"the range {low}-{high} is empty: write LOW-HIGH")
    return [low, high]


def _quota(value: Any, at: Where, path: tuple[str, ...]) -> dict[str, int | None]:
    """`{file: 100MB, total: 1GB}`: the largest upload, and all of a user's files together."""
    if value is None:
        return {"file": None, "total": None}
    if not isinstance(value, dict):
        raise at.error(path, "must be a mapping such as {file: 100MB, total: 1GB}")
    _only(value, QUOTA_KEYS, at, path)
    return {
        name: None if value.get(name) is None else parse_size(value[name], at, (*path, name))
        for name in QUOTA_KEYS
    }


def _users(value: Any, default_quota: dict[str, int | None], at: Where) -> dict[str, Any]:
    if not isinstance(value, dict) or not value:
        raise at.error(("users",), 'must name at least one user: {alice: {password: "…"}}')
    users: dict[str, Any] = {}
    for name, account in value.items():
        path: tuple[str, ...] = ("users", str(name))
        if not isinstance(name, str) or not USER_RE.match(name):
            raise at.error(path, f"user name {name!r} must match {USER_RE.pattern}")
        if not isinstance(account, dict):
            raise at.error(path, 'must be a mapping: {password: "…"} or {password_hash: "…"}')
        _only(account, USER_KEYS, at, path)
        users[name] = {**_secret(account, at, path), "quota": default_quota}
        if "quota" in account:
            users[name]["quota"] = {
                **default_quota,
                **{k: v for k, v in _quota(account["quota"], at, (*path, "quota")).items() if v},
            }
    return users


def _secret(account: Mapping[str, Any], at: Where, path: tuple[str, ...]) -> dict[str, str]:
    if ("password" in account) == ("password_hash" in account):
        raise at.error(path, "give exactly one of password and password_hash")
    if "password" in account:
        password = account["password"]
        if not isinstance(password, str) or not password:
            raise at.error((*path, "password"), "must be a non-empty string")
        return {"password": password}
    hashed = account["password_hash"]
    try:
        check_hash(hashed if isinstance(hashed, str) else "")
    except BadHash as exc:
        raise at.error(
            (*path, "password_hash"),
            f"{exc}; make one with: python -m ondo.sources.ftp hash",
        ) from None
    return {"password_hash": hashed}


def _only(value: Mapping[str, Any], allowed: tuple[str, ...], at: Where, path: FieldPath) -> None:
    for key in value:
        if key not in allowed:
            raise at.error((*path, key), f"unknown key {key!r}; allowed here: {', '.join(allowed)}")


KIND = FtpKind()


def main(argv: list[str]) -> int:
    """`python -m ondo.sources.ftp hash`: a password_hash for ondo.yaml."""
    if argv[:1] != ["hash"] or len(argv) > 1:
        print(
            "usage: python -m ondo.sources.ftp hash   (reads the password from the terminal,"
            " or one line from standard input)",
            file=sys.stderr,
        )
        return 2
    if sys.stdin.isatty():
        password = getpass.getpass("password: ")
        if getpass.getpass("again: ") != password:
            print("the two passwords differ", file=sys.stderr)
            return 1
    else:
        password = sys.stdin.readline().rstrip("\n")
    if not password:
        print("an empty password cannot be hashed", file=sys.stderr)
        return 1
    print(hash_password(password))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
