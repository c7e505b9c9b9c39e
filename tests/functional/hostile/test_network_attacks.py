"""`network: true` reaches outside addresses, never the host's own services or the platform."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from ondo.errors import NetworkUnavailable
from ondo.runtime.egress import host_addresses
from tests.functional.apps import write_app
from tests.functional.platform import RunningPlatform
from tests.functional.runtime.helpers import (
    invoke,
    make_spec,
    result_of,
    run,
    started,
    write_function,
)

ATTACKER = """
import socket
def handler(event, context):
    seen = {}
    for target in event["tcp"]:
        family = socket.AF_INET6 if ":" in target[0] else socket.AF_INET
        try:
            with socket.socket(family) as conn:
                conn.settimeout(5)
                conn.connect(tuple(target))
                seen[f"{target[0]}:{target[1]}"] = conn.recv(16).decode()
        except OSError as exc:
            seen[f"{target[0]}:{target[1]}"] = type(exc).__name__
    for target in event.get("udp", []):
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
                sock.sendto(b"x", tuple(target))
            seen[f"udp {target[0]}:{target[1]}"] = "sent"
        except OSError as exc:
            seen[f"udp {target[0]}:{target[1]}"] = type(exc).__name__
    for name in event.get("unix", []):
        try:
            with socket.socket(socket.AF_UNIX) as conn:
                conn.connect("\\0" + name)
            seen[f"unix {name}"] = "connected"
        except OSError as exc:
            seen[f"unix {name}"] = type(exc).__name__
    return seen
"""


@contextlib.contextmanager
def greeter(host: str = "127.0.0.1", family: int = socket.AF_INET) -> Iterator[socket.socket]:
    """A TCP server that says hello to whoever connects (served by the caller's accept)."""
    server = socket.socket(family)
    server.bind((host, 0))
    server.listen(8)
    server.settimeout(30)
    with server:
        yield server


def _serve_one(server: socket.socket) -> None:
    with contextlib.suppress(OSError):
        conn, _ = server.accept()
        with conn:
            conn.sendall(b"hello")


def test_network_function_cannot_reach_the_hosts_loopback_or_addresses(tmp_path: Path) -> None:
    code = write_function(tmp_path, "net", ATTACKER)
    outside = next((a for a in host_addresses() if a.version == 4 and not a.is_loopback), None)

    async def scenario() -> dict[str, str]:
        with greeter() as loopback, greeter("0.0.0.0") as everywhere:
            targets = [["127.0.0.1", loopback.getsockname()[1]]]
            targets.append(["127.0.0.2", everywhere.getsockname()[1]])
            targets.append(["::ffff:127.0.0.1", loopback.getsockname()[1]])
            targets.append(["0.0.0.0", everywhere.getsockname()[1]])
            if outside is not None:  # the host's own interface address, as the platform's is
                targets.append([str(outside), everywhere.getsockname()[1]])
            event = {"tcp": targets, "udp": [["127.0.0.1", 9]]}
            async with started() as runtime:
                return result_of(await invoke(runtime, make_spec(code, network=True), event))

    seen = run(scenario)
    assert seen.pop("udp 127.0.0.1:9") == "PermissionError"
    assert seen and set(seen.values()) == {"PermissionError"}, seen


def test_an_allowed_host_destination_is_reachable_and_only_that_one(tmp_path: Path) -> None:
    code = write_function(tmp_path, "net", ATTACKER)

    async def scenario() -> dict[str, str]:
        with greeter() as allowed, greeter() as other:
            port, other_port = allowed.getsockname()[1], other.getsockname()[1]
            spec = make_spec(code, network=True, network_allow=(f"127.0.0.1:{port}",))
            event = {"tcp": [["127.0.0.1", port], ["127.0.0.1", other_port]]}
            async with started() as runtime:
                serving = asyncio.create_task(asyncio.to_thread(_serve_one, allowed))
                outcome = await invoke(runtime, spec, event)
                await serving
                seen = result_of(outcome)
        return {"allowed": seen[f"127.0.0.1:{port}"], "other": seen[f"127.0.0.1:{other_port}"]}

    assert run(scenario) == {"allowed": "hello", "other": "PermissionError"}


def test_the_hosts_abstract_unix_sockets_are_out_of_reach(tmp_path: Path) -> None:
    code = write_function(tmp_path, "net", ATTACKER)
    name = f"ondo-test-{tmp_path.name}"

    async def scenario() -> dict[str, str]:
        with socket.socket(socket.AF_UNIX) as server:
            server.bind("\0" + name)
            server.listen(1)
            async with started() as runtime:
                spec = make_spec(code, network=True)
                return result_of(await invoke(runtime, spec, {"tcp": [], "unix": [name]}))

    assert run(scenario) == {f"unix {name}": "PermissionError"}


def test_a_function_without_network_keeps_its_own_loopback(tmp_path: Path) -> None:
    code = write_function(
        tmp_path,
        "own",
        """
        import socket
        def handler(event, context):
            with socket.socket() as server:
                server.bind(("127.0.0.1", 0))
                server.listen(1)
                with socket.create_connection(server.getsockname(), timeout=2):
                    return "own loopback works"
        """,
    )

    async def scenario() -> str:
        async with started() as runtime:
            return str(result_of(await invoke(runtime, make_spec(code))))

    assert run(scenario) == "own loopback works"


def test_network_is_refused_when_the_filter_is_unavailable(tmp_path: Path) -> None:
    code = write_function(tmp_path, "net", ATTACKER)

    async def scenario() -> tuple[dict[str, object], str]:
        async with started(disabled_layers=("egress",)) as runtime:
            with pytest.raises(NetworkUnavailable) as caught:
                await runtime.prepare(make_spec(code, network=True))
            return dict(runtime.status()["sandbox"]["egress"]), str(caught.value)

    layer, message = run(scenario)
    assert layer == {"active": False, "reason": "disabled by configuration"}
    assert "`network: true` is refused" in message and "disabled by configuration" in message


def test_a_deployed_function_cannot_call_the_platforms_api(tmp_path: Path) -> None:
    app = write_app(
        tmp_path / "app",
        {"probe": {"code": "./probe", "network": True}},
        {"probe/app.py": ATTACKER},
    )
    with RunningPlatform(tmp_path / "data") as platform:
        assert platform.cli("deploy", str(app)).returncode == 0
        event = {"tcp": [["127.0.0.1", platform.port]]}
        with platform.client() as api:
            answer = api.post("/v1/functions/probe/invoke", json=event)
        assert answer.status_code == 200, answer.text
        assert answer.json() == {f"127.0.0.1:{platform.port}": "PermissionError"}
