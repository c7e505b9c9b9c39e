from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

from ondo.deploy.bundle import pack, unpack
from ondo.errors import PayloadTooLarge, ValidationError


def archive(*members: tuple[tarfile.TarInfo, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for info, data in members:
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if info.isfile() else None)
    return buf.getvalue()


def test_pack_then_unpack_round_trips_and_skips_caches(tmp_path: Path) -> None:
    app = tmp_path / "app"
    (app / "fn" / "__pycache__").mkdir(parents=True)
    (app / "ondo.yaml").write_text("functions: {}\n")
    (app / "fn" / "app.py").write_text("x = 1\n")
    (app / "fn" / "__pycache__" / "app.cpython-311.pyc").write_bytes(b"\0")
    out = tmp_path / "out"
    out.mkdir()
    unpack(pack(app), out)
    assert (out / "fn" / "app.py").read_text() == "x = 1\n"
    assert not (out / "fn" / "__pycache__").exists()


def test_member_outside_the_app_is_refused(tmp_path: Path) -> None:
    data = archive((tarfile.TarInfo("../evil.py"), b"boom"))
    with pytest.raises(ValidationError, match="outside the app"):
        unpack(data, tmp_path)
    assert not (tmp_path.parent / "evil.py").exists()


def test_links_are_refused(tmp_path: Path) -> None:
    link = tarfile.TarInfo("passwd")
    link.type = tarfile.SYMTYPE
    link.linkname = "/etc/passwd"
    with pytest.raises(ValidationError, match="not a regular file"):
        unpack(archive((link, b"")), tmp_path)


def test_size_limit_and_garbage(tmp_path: Path) -> None:
    with pytest.raises(PayloadTooLarge):
        unpack(archive((tarfile.TarInfo("big.bin"), b"x" * 2048)), tmp_path, limit=1024)
    with pytest.raises(ValidationError, match="not a tar archive"):
        unpack(b"garbage", tmp_path)
