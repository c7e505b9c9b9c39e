"""Dependency builds run inside a sandbox and see only the app; requirements cannot reach out."""

from __future__ import annotations

import ast
import socket
import textwrap
from pathlib import Path

import pytest

from ondo.errors import UnsafeRequirements
from ondo.runtime import build_layer
from ondo.runtime.builds import BuildSettings
from tests.functional.apps import write_app
from tests.functional.platform import RunningPlatform
from tests.unit.runtime.test_layers import make_wheel

# An in-tree PEP 517 backend: pip runs it to build the package, as it would run a setup.py.
EVIL_BACKEND = """
import os, socket, subprocess, zipfile

def _attack():
    seen = {}
    try:
        with open(HOST_FILE, "w") as handle:
            handle.write(subprocess.run(["id"], capture_output=True, text=True).stdout)
        seen["host_file"] = "written"
    except OSError as exc:
        seen["host_file"] = type(exc).__name__
    try:
        seen["data_dir"] = os.listdir(DATA_DIR)
    except OSError as exc:
        seen["data_dir"] = type(exc).__name__
    try:
        socket.create_connection(("127.0.0.1", PORT), timeout=5).close()
        seen["connect"] = "connected"
    except OSError as exc:
        seen["connect"] = type(exc).__name__
    seen["uid"] = os.getuid()
    return seen

def get_requires_for_build_wheel(config_settings=None):
    return []

def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    name = "evilpkg-0.1-py3-none-any.whl"
    info = "evilpkg-0.1.dist-info"
    files = {
        "evilpkg/__init__.py": f"SEEN = {_attack()!r}\\n",
        f"{info}/METADATA": "Metadata-Version: 2.1\\nName: evilpkg\\nVersion: 0.1\\n",
        f"{info}/WHEEL": "Wheel-Version: 1.0\\nRoot-Is-Purelib: true\\nTag: py3-none-any\\n",
    }
    with zipfile.ZipFile(os.path.join(wheel_directory, name), "w") as archive:
        for path, text in files.items():
            archive.writestr(path, text)
        record = "".join(f"{p},,\\n" for p in [*files, f"{info}/RECORD"])
        archive.writestr(f"{info}/RECORD", record)
    return name
"""


def test_build_code_runs_sandboxed_and_cannot_touch_the_host(tmp_path: Path) -> None:
    app, data, host_file = tmp_path / "app", tmp_path / "data", tmp_path / "pwned"
    (data / "secret").mkdir(parents=True)
    package = app / "evilpkg"
    package.mkdir(parents=True)
    (package / "pyproject.toml").write_text(
        '[build-system]\nrequires = []\nbuild-backend = "evil_backend"\nbackend-path = ["."]\n'
        '[project]\nname = "evilpkg"\nversion = "0.1"\n'
    )
    requirements = app / "requirements.txt"
    requirements.write_text("--no-index\n./evilpkg\n")
    with socket.socket() as server:  # a service on the host's loopback
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        (package / "evil_backend.py").write_text(
            f"HOST_FILE = {str(host_file)!r}\nDATA_DIR = {str(data)!r}\n"
            f"PORT = {server.getsockname()[1]}\n" + EVIL_BACKEND
        )
        layer = build_layer(requirements, data / "layers", app_root=app)

    assert not host_file.exists()
    seen = ast.literal_eval((layer / "evilpkg" / "__init__.py").read_text().split("=", 1)[1])
    assert seen["host_file"] in ("FileNotFoundError", "PermissionError", "OSError")
    assert seen["data_dir"] == "FileNotFoundError"
    assert seen["connect"] == "PermissionError"  # only the package index is reachable
    assert seen["uid"] != 0
    assert all(path.stat().st_uid == 0 for path in layer.rglob("*"))  # the platform's now


def _secret_file(tmp_path: Path) -> Path:
    secret = tmp_path / "host-secret.txt"
    secret.write_text("root:$6$TOPSECRETHASH:19000::::::\n")
    return secret


@pytest.mark.parametrize("form", ["absolute", "relative", "symlink", "constraint", "package"])
def test_includes_and_paths_outside_the_app_are_refused_unread(tmp_path: Path, form: str) -> None:
    secret = _secret_file(tmp_path)
    app = tmp_path / "app"
    app.mkdir()
    (app / "inc.txt").symlink_to(secret)
    line = {
        "absolute": f"-r {secret}",
        "relative": "--requirement=../host-secret.txt",
        "symlink": "-r inc.txt",
        "constraint": f"-c{secret}",
        "package": "../host-secret.txt",
    }[form]
    requirements = app / "requirements.txt"
    requirements.write_text(f"six\n{line}\n")
    with pytest.raises(UnsafeRequirements) as caught:
        build_layer(requirements, tmp_path / "layers", app_root=app)
    message = str(caught.value)
    assert message.startswith("requirements.txt:2: ") and "outside the app directory" in message
    assert "TOPSECRET" not in message and "root:" not in message
    assert not (tmp_path / "layers").exists()  # refused before anything ran


@pytest.mark.parametrize(
    "line",
    [
        "--index-url https://evil.example/simple",
        "-i https://evil.example/simple",
        "--extra-index-url=https://evil.example/simple",
        "--trusted-host evil.example",
        "--find-links https://evil.example/links",
        "tinypkg @ https://evil.example/tinypkg-0.1-py3-none-any.whl",
    ],
)
def test_index_options_are_refused_unless_the_operator_allows_them(
    tmp_path: Path, line: str
) -> None:
    wheel = make_wheel(tmp_path)
    requirements = tmp_path / "requirements.txt"
    requirements.write_text(f"--no-index\n{line}\n./{wheel.name}\n")
    with pytest.raises(UnsafeRequirements, match=r"^requirements.txt:2: .*ALLOW_INDEX_OPTIONS"):
        build_layer(requirements, tmp_path / "layers")
    if "@" not in line:  # allowed: the file is accepted (and --no-index keeps pip offline)
        allowed = BuildSettings(allow_index_options=True)
        layer = build_layer(requirements, tmp_path / "layers", settings=allowed)
        assert (layer / "tinypkg" / "__init__.py").is_file()


def test_local_wheels_and_includes_inside_the_app_stay_allowed(tmp_path: Path) -> None:
    (tmp_path / "wheels").mkdir()
    make_wheel(tmp_path / "wheels")
    (tmp_path / "more.txt").write_text("tinypkg==0.1\n")
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("--no-index\n--find-links ./wheels\n-r more.txt\n")
    layer = build_layer(requirements, tmp_path / "layers")
    assert (layer / "tinypkg" / "__init__.py").is_file()


def test_deploying_an_include_of_a_host_file_is_a_clear_400(tmp_path: Path) -> None:
    secret = _secret_file(tmp_path)
    app = write_app(
        tmp_path / "shop",
        {"fn": {"code": "./fn", "requirements": "requirements.txt"}},
        {"fn/app.py": "def handler(e, c):\n    return 1\n"},
    )
    (app / "requirements.txt").write_text(textwrap.dedent(f"six\n-r {secret}\n"))
    with RunningPlatform(tmp_path / "data") as platform:
        out = platform.cli("deploy", str(app))
        assert out.returncode != 0
        text = out.stdout + out.stderr
        assert "requirements.txt:2: an include" in text and "outside the app directory" in text
        assert "TOPSECRET" not in text and "Traceback" not in text
        assert "TOPSECRET" not in platform.log()
