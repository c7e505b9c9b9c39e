"""Invocations of one version cannot reach each other or the zygote they are forked from."""

from __future__ import annotations

import asyncio
from pathlib import Path

from tests.functional.hostile.harness import healthy_spec, until_busy, while_healthy_answers
from tests.functional.runtime.helpers import (
    invoke,
    make_spec,
    result_of,
    run,
    started,
    write_function,
)

PEERS = """
import os, signal, time
with open("/tmp/from-import", "w") as handle:
    handle.write("written at import")
SECRET = "victim-secret-" + "x" * 32

def victim(event):
    with open("/tmp/victim-file", "w") as handle:
        handle.write(SECRET)
    time.sleep(event["sleep"])
    return {"survived": True, "tmp": sorted(os.listdir("/tmp"))}

def attempt(action):
    try:
        return action() or "done"
    except OSError as exc:
        return type(exc).__name__

def read_mem(pid):
    with open(f"/proc/{pid}/mem", "rb") as handle:
        handle.read(1)

def open_rw(path):
    os.close(os.open(path, os.O_RDWR))

def attacker(event):
    me = os.getpid()
    peers = [int(p) for p in os.listdir("/proc") if p.isdigit() and int(p) not in (me, 1)]
    seen = {"peers": len(peers), "tmp": sorted(os.listdir("/tmp")), "by_peer": []}
    for pid in peers:
        seen["by_peer"].append({
            "mem": attempt(lambda: read_mem(pid)),
            "environ": attempt(lambda: open(f"/proc/{pid}/environ").read()),
            "peer_tmp": attempt(lambda: os.listdir(f"/proc/{pid}/root/tmp")),
            "kill": attempt(lambda: os.kill(pid, signal.SIGKILL if event["signal"] else 0)),
        })
    seen["zygote_mem_rw"] = attempt(lambda: open_rw("/proc/1/mem"))
    seen["zygote_signal"] = attempt(lambda: os.kill(1, signal.SIGSTOP if event["signal"] else 0))
    seen["own_environ"] = attempt(lambda: len(open("/proc/self/environ").read()) and None)
    return seen

def handler(event, context):
    return victim(event) if event["role"] == "victim" else attacker(event)
"""


def test_an_invocation_cannot_read_signal_or_write_its_peers_or_the_zygote(
    tmp_path: Path,
) -> None:
    spec = make_spec(write_function(tmp_path, "peers", PEERS), concurrency=2)
    healthy = healthy_spec(tmp_path)

    async def scenario() -> None:
        async with started() as runtime:
            victim = asyncio.ensure_future(invoke(runtime, spec, {"role": "victim", "sleep": 3}))
            await until_busy(runtime, spec)
            attack = invoke(runtime, spec, {"role": "attacker", "signal": True})
            seen = result_of(await while_healthy_answers(runtime, healthy, attack))
            survived = result_of(await victim)
        assert seen["peers"] >= 1, seen  # it saw the victim's pid: the attempts were real
        for attempts in seen["by_peer"]:
            assert attempts == {
                "mem": "PermissionError",
                "environ": "PermissionError",
                "peer_tmp": "PermissionError",
                "kill": "PermissionError",
            }, seen
        assert seen["zygote_mem_rw"] == "PermissionError"
        assert seen["zygote_signal"] == "PermissionError"
        assert seen["own_environ"] == "done"  # its own /proc entries stay readable
        assert survived == {"survived": True, "tmp": ["from-import", "victim-file"]}
        assert seen["tmp"] == ["from-import"]  # its own /tmp: the import's files, not the peer's

    run(scenario)


def test_without_landlock_peers_and_the_zygote_are_still_unreadable(tmp_path: Path) -> None:
    spec = make_spec(write_function(tmp_path, "peers", PEERS), concurrency=2)
    healthy = healthy_spec(tmp_path)

    async def scenario() -> None:
        async with started(disabled_layers=("landlock",)) as runtime:
            victim = asyncio.ensure_future(invoke(runtime, spec, {"role": "victim", "sleep": 2}))
            await until_busy(runtime, spec)
            attack = invoke(runtime, spec, {"role": "attacker", "signal": False})
            seen = result_of(await while_healthy_answers(runtime, healthy, attack))
            assert result_of(await victim)["survived"] is True
            assert runtime.status()["sandbox"]["landlock"]["active"] is False
        assert seen["peers"] >= 1, seen
        for attempts in seen["by_peer"]:  # signals are not stopped without Landlock (docs)
            assert (attempts["mem"], attempts["environ"]) == ("PermissionError",) * 2, seen
        assert seen["zygote_mem_rw"] == "PermissionError"

    run(scenario)
