"""The `bucket` source kind: a watched directory whose files become `object.created` and
`object.deleted` events, with the same data as the ftp kind's (objects.py).

```yaml
sources:
  drop:
    kind: bucket
    path: ./inbox          # relative to the app directory; must exist unless `create: true`
    recursive: true        # subdirectories too (the default)
    patterns: ["*.csv"]    # only these keys (glob; none: every file)
    settle: 1s             # a file is complete once its size and mtime stay the same this long
```

`key` is the file's path relative to the watched directory (`/` separators). A file is
announced once it has settled, so a file still being copied in is not announced half-written;
each new version (a different size, mtime or content) is announced again. Hidden files (any
part of the path starting with `.`) are never announced: writers use them for temporary names.
The watch starts when the source does: files changed while ondo was not running are not
announced (the directory is not rescanned).
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ondo.durations import parse_duration
from ondo.errors import DurationError
from ondo.sources.base import Settings, SourceContext, Where, no_unknown_keys
from ondo.sources.objects import (
    ObjectInfo,
    created_event,
    deleted_event,
    key_matches,
    parse_patterns,
)

if TYPE_CHECKING:
    from ondo.backends.store.repositories.sources import StoredSource

KEYS = ("path", "create", "recursive", "patterns", "settle")
DEFAULT_SETTLE_S = 1.0
MAX_SETTLE_S = 3600.0


class BucketKind:
    name = "bucket"

    def validate(self, settings: Mapping[str, Any], at: Where) -> Settings:
        no_unknown_keys(settings, KEYS, at)
        create = _flag(settings, "create", False, at)
        return {
            "path": str(_directory(settings.get("path"), create, at)),
            "create": create,
            "recursive": _flag(settings, "recursive", True, at),
            "patterns": parse_patterns(settings.get("patterns"), at, ("patterns",)),
            "settle": _settle(settings.get("settle", DEFAULT_SETTLE_S), at),
        }

    async def run(self, source: StoredSource, ctx: SourceContext) -> None:
        import watchfiles  # only where bucket sources run

        spec = source.spec
        root = Path(spec["path"])
        if spec["create"]:
            root.mkdir(parents=True, exist_ok=True)
        if not root.is_dir():
            raise FileNotFoundError(f"the watched directory {root} does not exist")
        watch = _Watch(root, spec, ctx)
        await asyncio.to_thread(watch.scan)
        settle_ms = int(spec["settle"] * 1000)
        changes = watchfiles.awatch(
            root,
            watch_filter=None,
            recursive=spec["recursive"],
            debounce=min(settle_ms, 200) or 1,
            rust_timeout=max(settle_ms // 2, 50),
            yield_on_timeout=True,  # wake up to see whether pending files have settled
        )
        ctx.connected(f"watching {root}")
        async for batch in changes:
            await watch.heard(batch, watchfiles.Change.deleted)
            await watch.settle()
            if not root.is_dir():  # inotify says nothing when the watched directory goes
                break
        raise FileNotFoundError(f"watching {root} stopped: was the directory removed?")


@dataclass
class _Pending:
    size: int
    mtime_ns: int
    since: float  # monotonic time the file was last seen to change


class _Watch:
    """What one running bucket source knows: the files present, the ones not yet settled."""

    def __init__(self, root: Path, spec: Mapping[str, Any], ctx: SourceContext) -> None:
        self.root = root
        self.spec = spec
        self.ctx = ctx
        self.known: set[str] = set()  # keys of files present (announced or there at start)
        self.pending: dict[str, _Pending] = {}

    def scan(self) -> None:
        """The files already there: their deletion is announced, they are not."""
        for folder, dirs, files in os.walk(self.root):
            if not self.spec["recursive"]:
                dirs.clear()
            for name in files:
                key = self.key(os.path.join(folder, name))
                if key is not None:
                    self.known.add(key)

    def key(self, path: str) -> str | None:
        """The key of `path` if it is one this source announces."""
        try:
            key = Path(path).relative_to(self.root).as_posix()
        except ValueError:
            return None
        if any(part.startswith(".") for part in key.split("/")):
            return None
        if not self.spec["recursive"] and "/" in key:
            return None
        return key if key_matches(key, self.spec["patterns"]) else None

    async def heard(self, batch: set[tuple[Any, str]], deleted: Any) -> None:
        for change, path in sorted(batch, key=lambda c: c[1]):
            if change != deleted and os.path.isdir(path):
                # Files written into a new directory before the watcher watched it are only
                # seen by looking (`mkdir -p a/b && cp f a/b/`).
                if self.spec["recursive"]:
                    for folder, _dirs, files in os.walk(path):
                        for name in files:
                            self.changed(os.path.join(folder, name))
                continue
            key = self.key(path)
            if key is None:
                continue
            if change == deleted and not os.path.lexists(path):
                self.pending.pop(key, None)
                if key in self.known:
                    self.known.discard(key)
                    now = self.ctx.clock.now()
                    await self.ctx.emit(
                        deleted_event(self.ctx.namespace, self.ctx.name, key, now, {})
                    )
            else:
                self.changed(path)

    def changed(self, path: str) -> None:
        """`path` was written: announce it once it settles."""
        key = self.key(path)
        try:
            stat = os.stat(path)
        except OSError:  # gone already: its deletion comes as a change
            return
        if key is not None and os.path.isfile(path):
            self.pending[key] = _Pending(stat.st_size, stat.st_mtime_ns, time.monotonic())

    async def settle(self) -> None:
        """Announce the pending files whose size and mtime stayed the same for `settle`."""
        now = time.monotonic()
        for key, seen in list(self.pending.items()):
            path = self.root / key
            try:
                stat = path.stat()
            except OSError:  # gone again before it settled: its deletion comes as a change
                del self.pending[key]
                continue
            if (stat.st_size, stat.st_mtime_ns) != (seen.size, seen.mtime_ns):
                self.pending[key] = _Pending(stat.st_size, stat.st_mtime_ns, now)
            elif now - seen.since >= self.spec["settle"]:
                del self.pending[key]
                await self.announce(key, path)

    async def announce(self, key: str, path: Path) -> None:
        try:
            info = await asyncio.to_thread(ObjectInfo.of, path, key)
        except OSError as exc:
            self.ctx.problem(f"{key} could not be read: {exc}")
            return
        self.known.add(key)
        event = created_event(self.ctx.namespace, self.ctx.name, info, self.ctx.clock.now(), {})
        await self.ctx.emit(event)


def _directory(value: Any, create: bool, at: Where) -> Path:
    if not isinstance(value, str) or not value:
        raise at.error(("path",), f"must be the directory to watch, got {value!r}")
    path = (at.root / value).resolve()
    if path.exists() and not path.is_dir():
        raise at.error(("path",), f"{path} is not a directory")
    if not path.exists() and not create:
        raise at.error(
            ("path",), f"directory {path} does not exist; create it, or add `create: true`"
        )
    return path


def _flag(settings: Mapping[str, Any], name: str, default: bool, at: Where) -> bool:
    value = settings.get(name, default)
    if not isinstance(value, bool):
        raise at.error((name,), f"must be true or false, got {value!r}")
    return value


def _settle(value: Any, at: Where) -> float:
    try:
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise DurationError(f"duration {value!r} is not understood; write 1s or 500ms")
        seconds = parse_duration(str(value), bare_seconds=True)
    except DurationError as exc:
        raise at.error(("settle",), str(exc)) from None
    if seconds > MAX_SETTLE_S:
        raise at.error(("settle",), f"must be at most 1h, got {value!r}")
    return seconds


KIND = BucketKind()
