"""Code bundles and dependency layers shared through the store, for processes that share it.

A version names its code and layer by hash; the directories live in the data dir of the
process that deployed it (`<data_dir>/code/<hash>/`, `<data_dir>/layers/<hash>/`). When the
store is shared (Store.shared: several `ondo up` processes, each with its own data dir), the
publishing process puts both in the store, packed, before the version row becomes visible; any
process then fetches what it lacks before it runs the version (`ensure`), and on hearing of a
new current version through the change feed (so the first invocation does not pay).

On a store that is not shared (embedded SQLite) both calls return at once: the data dir is
the truth.
"""

from __future__ import annotations

import asyncio
import functools
import io
import logging
import os
import shutil
import tarfile
import tempfile
from pathlib import Path

from ondo.backends.store.repositories.blobs import BlobKind
from ondo.backends.store.store import Store
from ondo.errors import CodeUnavailable
from ondo.functions.bundle import make_read_only
from ondo.functions.model import FunctionVersion

log = logging.getLogger("ondo.functions")


class SharedBundles:
    """Puts a version's directories in a shared store, and fetches them from it."""

    def __init__(self, store: Store, code_root: Path, layers_root: Path) -> None:
        self.store = store
        self.enabled = store.shared
        self._roots: dict[BlobKind, Path] = {"code": code_root, "layer": layers_root}
        self._present: set[tuple[BlobKind, str]] = set()  # known to be here (both ways)
        self._fetches: dict[tuple[BlobKind, str], asyncio.Task[None]] = {}

    def _wanted(self, fv: FunctionVersion) -> list[tuple[BlobKind, str]]:
        wanted: list[tuple[BlobKind, str]] = [("code", fv.code_hash)]
        if fv.layer_hash:
            wanted.append(("layer", fv.layer_hash))
        return wanted

    async def upload(self, fv: FunctionVersion) -> None:
        """Put the version's code (and layer) in the store unless they are there already.
        Called before the version is published, so no process ever sees a version whose
        code it cannot fetch."""
        if not self.enabled:
            return
        for kind, digest in self._wanted(fv):
            if await self.store.repos.blobs.exists(kind, digest):
                continue
            source = self._roots[kind] / digest
            if not source.is_dir():
                raise CodeUnavailable(
                    f"cannot publish {_name(fv)}: its {_what(kind)} {digest[:12]} is not at"
                    f" {source}; deploy it again"
                )
            data = await asyncio.to_thread(pack, source)
            async with self.store.transaction() as uow:
                await uow.blobs.put(kind, digest, data)
            log.info("stored %s %s in the store (%d bytes)", kind, digest[:12], len(data))

    async def ensure(self, fv: FunctionVersion) -> None:
        """Make sure the version's code (and layer) are in this data dir, fetching them from
        the store if not; CodeUnavailable names what is missing."""
        if not self.enabled:
            return
        for key in self._wanted(fv):
            if key in self._present:
                continue
            fetch = self._fetches.get(key)
            if fetch is None:  # one fetch per blob at a time; its callers all wait for it
                fetch = self._fetches[key] = asyncio.ensure_future(self._fetch(fv, *key))
                fetch.add_done_callback(functools.partial(self._fetched, key))
            await asyncio.shield(fetch)

    def _fetched(self, key: tuple[BlobKind, str], _task: asyncio.Task[None]) -> None:
        self._fetches.pop(key, None)

    async def _fetch(self, fv: FunctionVersion, kind: BlobKind, digest: str) -> None:
        target = self._roots[kind] / digest
        if not target.is_dir():
            data = await self.store.repos.blobs.get(kind, digest)
            if data is None:
                raise CodeUnavailable(
                    f"{_name(fv)} cannot run here: its {_what(kind)} {digest[:12]} is neither"
                    f" in this process's data dir ({target}) nor in the store"
                    f" ({self.store.database.description}); deploy the function again"
                )
            await asyncio.to_thread(unpack, data, target, read_only=kind == "code")
            log.info("fetched %s %s of %s from the store", kind, digest[:12], _name(fv))
        self._present.add((kind, digest))


def _name(fv: FunctionVersion) -> str:
    return f"function {fv.namespace}/{fv.name} version {fv.version}"


def _what(kind: BlobKind) -> str:
    return "code bundle" if kind == "code" else "dependency layer"


def pack(root: Path) -> bytes:
    """An uncompressed tar of `root`'s files, directories and symlinks, in sorted order, with
    owners and times left out (the same directory packs to the same bytes)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames.sort()
            here = Path(dirpath)
            for name in sorted([*dirnames, *filenames]):
                path = here / name
                info = tar.gettarinfo(str(path), arcname=str(path.relative_to(root)))
                info.uid = info.gid = 0
                info.uname = info.gname = ""
                info.mtime = 0
                if info.isfile():
                    with path.open("rb") as content:
                        tar.addfile(info, content)
                else:
                    tar.addfile(info)
    return buffer.getvalue()


def unpack(data: bytes, target: Path, *, read_only: bool) -> None:
    """Unpack `data` into a temporary directory beside `target`, then rename it into place.
    When another fetch got there first, its directory stays and this one is dropped."""
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".fetch-{target.name[:12]}-", dir=target.parent))
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r") as tar:
            tar.extractall(staging, filter="data")  # nothing outside staging, no devices
        if read_only:
            make_read_only(staging)
        else:
            os.chmod(staging, 0o755)
        try:
            staging.rename(target)
        except OSError:
            if not target.is_dir():
                raise
    finally:
        if staging.exists():
            _remove(staging)


def _remove(path: Path) -> None:
    """Remove a staging directory, read-only parts included."""
    for dirpath, _dirs, _files in os.walk(path):
        os.chmod(dirpath, 0o755)
    shutil.rmtree(path, ignore_errors=True)
