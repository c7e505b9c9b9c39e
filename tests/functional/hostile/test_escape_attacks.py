"""Attacks on what lies outside the function: files that are not its own, other functions'
/tmp, the host's sockets with `network: false`, the platform's environment."""

from __future__ import annotations

import asyncio
import socket
import tempfile
import textwrap
from pathlib import Path

import pytest

from tests.functional.hostile.harness import healthy_spec, while_healthy_answers
from tests.functional.runtime.helpers import (
    invoke,
    make_spec,
    result_of,
    run,
    started,
    write_function,
)

PROBE = """
import os, socket
def handler(event, context):
    seen = {}
    for path in event["paths"]:
        try:
            with open(path) as handle:
                seen[path] = handle.read()
        except OSError as exc:
            seen[path] = type(exc).__name__
    try:
        with socket.create_connection(("127.0.0.1", event["port"]), timeout=2) as conn:
            seen["connect"] = conn.recv(16).decode()
    except OSError as exc:
        seen["connect"] = type(exc).__name__
    try:
        with open("/var/task/written", "w") as handle:
            handle.write("x")
        seen["write_code"] = "written"
    except OSError as exc:
        seen["write_code"] = type(exc).__name__
    with open("/tmp/scratch", "w") as handle:
        handle.write("tmp is writable")
    seen["tmp"] = open("/tmp/scratch").read()
    seen["uid"] = os.getuid()
    seen["root_entries"] = sorted(os.listdir("/"))
    return seen
"""


def _listener() -> socket.socket:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    server.settimeout(5)
    return server


def test_files_outside_its_own_and_the_hosts_sockets_are_out_of_reach(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    secret = data_dir / "admin.token"
    data_dir.mkdir()
    secret.write_text("s3cret")
    code = write_function(data_dir, "prober", PROBE)
    other = write_function(data_dir, "other", "def handler(e, c):\n    return 'other code'\n")

    async def scenario() -> None:
        with _listener() as server:
            port = server.getsockname()[1]
            async with started(hidden_paths=(str(data_dir),)) as runtime:
                paths = [str(secret), str(other / "app.py"), "/etc/shadow"]
                attack = invoke(runtime, make_spec(code), {"paths": paths, "port": port})
                healthy = healthy_spec(tmp_path)
                seen = result_of(await while_healthy_answers(runtime, healthy, attack))
        assert seen[str(secret)] == "FileNotFoundError"
        assert seen[str(other / "app.py")] == "FileNotFoundError"
        assert seen["/etc/shadow"] == "FileNotFoundError"
        assert seen["connect"] == "ConnectionRefusedError"  # its own loopback, nobody listening
        assert seen["write_code"] == "OSError"  # read-only file system
        assert seen["tmp"] == "tmp is writable"
        assert seen["uid"] != 0
        for host_only in ("work", "sys", "home", "boot", "mnt", "run", "srv"):
            assert host_only not in seen["root_entries"]

    run(scenario)


def test_network_true_reaches_a_host_port_it_is_allowed(tmp_path: Path) -> None:
    code = write_function(tmp_path, "net", PROBE)

    async def scenario() -> None:
        with _listener() as server:
            port = server.getsockname()[1]
            async with started() as runtime:
                event = {"paths": [], "port": port}
                allow = (f"127.0.0.1:{port}",)
                pending = asyncio.ensure_future(
                    invoke(runtime, make_spec(code, network=True, network_allow=allow), event)
                )
                conn, _ = await asyncio.to_thread(server.accept)
                with conn:
                    conn.sendall(b"hello")
                seen = result_of(await pending)
        assert seen["connect"] == "hello"

    run(scenario)


def test_another_functions_tmp_is_out_of_reach(tmp_path: Path) -> None:
    writer = write_function(
        tmp_path,
        "writer",
        """
        import os
        def handler(event, context):
            with open("/tmp/" + event["value"], "w") as handle:
                handle.write("x")
            return sorted(os.listdir("/tmp"))
        """,
    )

    async def scenario() -> None:
        async with started() as runtime:
            first = make_spec(writer, name="first")
            second = make_spec(writer, name="second")
            assert result_of(await invoke(runtime, first, {"value": "a"})) == ["a"]
            attack = invoke(runtime, second, {"value": "b"})
            healthy = healthy_spec(tmp_path)
            assert result_of(await while_healthy_answers(runtime, healthy, attack)) == ["b"]

    run(scenario)


READER = """
import os
def handler(event, context):
    seen = {"root_entries": sorted(os.listdir("/"))}
    for path in event["paths"]:
        try:
            with open(path) as handle:
                seen[path] = handle.read()
        except OSError as exc:
            seen[path] = type(exc).__name__
    return seen
"""


def test_without_a_root_switch_the_data_dir_is_still_hidden() -> None:
    # Without the root switch the function sees the host's files as an unprivileged uid, so
    # the test's files must be world-readable (pytest's tmp dirs are not); the python install
    # must be too for imports made after the zygote started.
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        root.chmod(0o755)
        data_dir = root / "data"
        data_dir.mkdir()
        secret = data_dir / "admin.token"
        secret.write_text("s3cret")
        code = write_function(data_dir, "reader", READER)  # inside the hidden dir, re-exposed

        async def scenario() -> None:
            hidden = (str(data_dir),)
            async with started(hidden_paths=hidden, disabled_layers=("rootfs",)) as runtime:
                assert runtime.status()["sandbox"]["rootfs"]["active"] is False
                event = {"paths": [str(secret), str(code / "app.py")]}
                attack = invoke(runtime, make_spec(code), event)
                seen = result_of(await while_healthy_answers(runtime, healthy_spec(root), attack))
            assert seen[str(secret)] == "FileNotFoundError"
            assert seen[str(code / "app.py")] == textwrap.dedent(READER)
            assert "work" in seen["root_entries"]  # the host's root: only the data dir is covered

        run(scenario)


def test_the_platforms_environment_does_not_reach_the_function(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ONDO_TEST_PLATFORM_SECRET", "do-not-leak")
    code = write_function(
        tmp_path,
        "environ",
        """
        import os
        def handler(event, context):
            with open("/proc/self/environ", "rb") as handle:
                initial = handle.read().decode()
            return {"initial": initial, "environ": dict(os.environ)}
        """,
    )

    async def scenario() -> None:
        async with started() as runtime:
            spec = make_spec(code, environment={"FUNCTION_SETTING": "mine"})
            healthy = healthy_spec(tmp_path)
            seen = result_of(await while_healthy_answers(runtime, healthy, invoke(runtime, spec)))
        assert "do-not-leak" not in seen["initial"]
        assert "ONDO_TEST_PLATFORM_SECRET" not in seen["environ"]
        assert "FUNCTION_SETTING=mine" in seen["initial"]
        assert seen["environ"]["FUNCTION_SETTING"] == "mine"

    run(scenario)
