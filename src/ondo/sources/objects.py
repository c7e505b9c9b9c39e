"""Object events shared by the `ftp` and `bucket` source kinds: S3-style `object.created` and
`object.deleted` CloudEvents, and the settings both kinds read (sizes, glob patterns).

`data` of an event (see docs/sources/ftp.md):

    {"bucket": "uploads", "key": "alice/reports/q1.csv", "size": 1234,
     "etag": "<md5 hex>", "content_type": "text/csv", "sequencer": "<16 hex digits>",
     "uploader": "alice", "path": "/…/homes/alice/reports/q1.csv"}

`bucket` is the source's name, `key` the object's path under the source's root with `/`
separators, `etag` the MD5 of the content in hex as S3 reports it for single-part uploads,
`sequencer` orders the events of one key (the file's modification time in nanoseconds, in hex).
The event id is derived from (namespace, source, key, etag, mtime), so an upload announced twice
(a restart, a second watcher notice) is one event on the bus.
"""

from __future__ import annotations

import functools
import hashlib
import mimetypes
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ondo.events import CloudEvent
from ondo.sources.base import FieldPath, Where

CREATED = "object.created"
DELETED = "object.deleted"
_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(i?)b?\s*$", re.IGNORECASE)
_POWERS = {"": 0, "k": 1, "m": 2, "g": 3, "t": 4}
_CHUNK = 1 << 20


@dataclass(frozen=True)
class ObjectInfo:
    """One object as its event tells it."""

    key: str
    size: int
    etag: str
    mtime_ns: int
    path: Path

    @staticmethod
    def of(path: Path, key: str) -> ObjectInfo:
        """Stat and hash the file (blocking: call it in a thread). OSError when it is gone."""
        digest = hashlib.md5(usedforsecurity=False)
        with path.open("rb") as file:
            stat = Path(file.name).stat()
            while chunk := file.read(_CHUNK):
                digest.update(chunk)
        return ObjectInfo(key, stat.st_size, digest.hexdigest(), stat.st_mtime_ns, path)


def event_id(namespace: str, source: str, *parts: object) -> str:
    """A deterministic event id: the same object (or deletion) gives the same id."""
    text = "\x1f".join([namespace, source, *(str(p) for p in parts)])
    return "obj-" + hashlib.sha256(text.encode()).hexdigest()[:32]


def content_type(key: str) -> str:
    guessed, _ = mimetypes.guess_type(key, strict=False)
    return guessed or "application/octet-stream"


def created_event(
    namespace: str, bucket: str, info: ObjectInfo, now: float, extra: Mapping[str, Any]
) -> CloudEvent:
    data: dict[str, Any] = {
        "bucket": bucket,
        "key": info.key,
        "size": info.size,
        "etag": info.etag,
        "content_type": content_type(info.key),
        "sequencer": f"{info.mtime_ns:016X}",
        **extra,
        "path": str(info.path),
    }
    return CloudEvent(
        id=event_id(namespace, bucket, info.key, info.etag, info.mtime_ns),
        source=bucket,
        type=CREATED,
        subject=info.key,
        time=datetime.fromtimestamp(now, UTC),
        data=data,
    )


def deleted_event(
    namespace: str, bucket: str, key: str, now: float, extra: Mapping[str, Any]
) -> CloudEvent:
    when_ns = int(now * 1e9)
    data: dict[str, Any] = {
        "bucket": bucket,
        "key": key,
        "sequencer": f"{when_ns:016X}",
        **extra,
    }
    return CloudEvent(
        id=event_id(namespace, bucket, key, "deleted", when_ns),
        source=bucket,
        type=DELETED,
        subject=key,
        time=datetime.fromtimestamp(now, UTC),
        data=data,
    )


# --- settings both kinds read -------------------------------------------------------------


def parse_size(value: Any, at: Where, path: FieldPath) -> int:
    """`10MB`, `1.5GiB`, `512k` or a number of bytes (k/M/G/T are powers of 1000, with an `i`
    of 1024); more than zero."""
    if isinstance(value, bool):
        value = None
    if isinstance(value, int):
        size = value
    elif isinstance(value, str) and (match := _SIZE_RE.match(value)):
        number, prefix, binary = match.groups()
        size = int(float(number) * (1024 if binary else 1000) ** _POWERS[prefix.lower()])
    else:
        raise at.error(
            path, f"must be a size such as 10MB, 1GiB or a number of bytes, got {value!r}"
        )
    if size <= 0:
        raise at.error(path, f"must be more than zero bytes, got {value!r}")
    return size


def parse_patterns(value: Any, at: Where, path: FieldPath) -> list[str]:
    """Glob patterns matched against keys (`*.csv`, `reports/**`); none: every key."""
    if value is None:
        return []
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(p, str) and p for p in value):
        raise at.error(path, f'must be a list of glob patterns such as ["*.csv"], got {value!r}')
    return list(value)


def key_matches(key: str, patterns: list[str]) -> bool:
    """Whether `key` matches one of the patterns (`*` and `?` within a directory, `**` across
    directories), on its whole path or on its file name, so `*.csv` takes `a/b.csv` too."""
    if not patterns:
        return True
    name = key.rsplit("/", 1)[-1]
    return any(_glob_re(p).fullmatch(key) or _glob_re(p).fullmatch(name) for p in patterns)


@functools.lru_cache(maxsize=256)
def _glob_re(pattern: str) -> re.Pattern[str]:
    out: list[str] = []
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return re.compile("".join(out))
