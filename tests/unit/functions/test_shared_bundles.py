"""Code and layers through a shared store (functions/shared.py): packed by the publisher,
fetched once by every other process, read-only like CodeStore's; nothing on embedded SQLite."""

from __future__ import annotations

import asyncio
import os
import stat
from pathlib import Path

import pytest

from ondo.backends.store import Store, open_store
from ondo.errors import CodeUnavailable
from ondo.functions.bundle import CodeStore
from ondo.functions.model import FunctionConfig, FunctionVersion
from ondo.functions.shared import SharedBundles, pack, unpack
from tests.services import drop_cluster, require_postgres, unique_cluster


def _app(root: Path) -> Path:
    (root / "pkg").mkdir(parents=True)
    (root / "handler.py").write_text("def handler(event, context):\n    return 42\n")
    (root / "pkg" / "__init__.py").write_text("X = 1\n")
    return root


def _version(code_hash: str, layer_hash: str | None = None) -> FunctionVersion:
    return FunctionVersion(
        "default", "f", 1, FunctionConfig(handler="handler.handler"), code_hash, layer_hash, 0.0
    )


def test_a_packed_directory_unpacks_read_only_and_packs_the_same(tmp_path: Path) -> None:
    code = CodeStore(tmp_path / "a")
    digest = code.add(_app(tmp_path / "src"))
    data = pack(code.path(digest))
    assert pack(code.path(digest)) == data  # deterministic
    target = tmp_path / "b" / digest
    unpack(data, target, read_only=True)
    assert (target / "pkg" / "__init__.py").read_text() == "X = 1\n"
    assert not os.stat(target / "handler.py").st_mode & stat.S_IWUSR
    assert pack(target) == data
    unpack(data, target, read_only=True)  # already there: the second copy is dropped
    assert [p.name for p in target.parent.iterdir()] == [digest]


def test_nothing_is_stored_on_the_embedded_store(tmp_path: Path) -> None:
    async def main() -> None:
        store = open_store(f"sqlite:///{tmp_path / 'ondo.db'}")
        await store.open()
        try:
            assert not store.shared
            bundles = SharedBundles(store, tmp_path / "code", tmp_path / "layers")
            await bundles.upload(_version("nowhere"))  # not even looked for
            await bundles.ensure(_version("nowhere"))
            assert not await store.repos.blobs.exists("code", "nowhere")
        finally:
            await store.close()

    asyncio.run(main())


@pytest.mark.postgres
def test_another_process_fetches_code_and_layer_once(tmp_path: Path) -> None:
    url, cluster = require_postgres(), unique_cluster()
    code = CodeStore(tmp_path / "a" / "code")
    digest = code.add(_app(tmp_path / "src"))
    layer = tmp_path / "a" / "layers" / "l1"
    (layer / "bin").mkdir(parents=True)
    (layer / "bin" / "tool").write_text("#!/bin/sh\n")
    os.chmod(layer / "bin" / "tool", 0o755)
    fv = _version(digest, "l1")

    async def main() -> None:
        one: Store = open_store(url, cluster=cluster)
        two: Store = open_store(url, cluster=cluster)
        await one.open()
        await two.open()
        try:
            assert one.shared
            await SharedBundles(one, code.root, tmp_path / "a" / "layers").upload(fv)
            here = SharedBundles(two, tmp_path / "b" / "code", tmp_path / "b" / "layers")
            await asyncio.gather(*(here.ensure(fv) for _ in range(5)))  # one fetch each
            assert (tmp_path / "b" / "code" / digest / "handler.py").is_file()
            assert os.access(tmp_path / "b" / "layers" / "l1" / "bin" / "tool", os.X_OK)
            wanted = r"default/f version 1 cannot run here: its dependency layer missing"
            with pytest.raises(CodeUnavailable, match=wanted):
                await here.ensure(_version(digest, "missing"))
        finally:
            await one.close()
            await two.close()

    try:
        asyncio.run(main())
    finally:
        drop_cluster(cluster)
