"""Attacks through the kernel: ptrace, mount, new namespaces and other syscalls a function has
no business with. Each is killed (SIGSYS, reason "seccomp") or refused with EPERM."""

from __future__ import annotations

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

SYSCALLS = """
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
libc.mount.argtypes = [ctypes.c_char_p] * 3 + [ctypes.c_ulong, ctypes.c_char_p]
ATTACKS = {
    "ptrace": lambda: libc.syscall(101, 16, 1, 0, 0),  # PTRACE_ATTACH to the zygote
    "mount": lambda: libc.mount(b"none", b"/tmp", b"tmpfs", 6, None),
    "bind_mount": lambda: libc.mount(b"/", b"/tmp", None, 4096 | 6, None),
    "process_vm_readv": lambda: libc.syscall(310, 1, 0, 0, 0, 0, 0),
    "bpf": lambda: libc.syscall(321, 0, 0, 0),
    "keyctl": lambda: libc.syscall(250, 0, 0, 0, 0),
    "unshare_user": lambda: libc.unshare(0x10000000),
    "unshare_worker_namespaces": lambda: libc.unshare(0x10000000 | 0x00020000 | 0x08000000),
    "setns": lambda: libc.setns(os.open("/proc/1/ns/mnt", os.O_RDONLY), 0),
    "clone_newpid": lambda: libc.syscall(56, 0x20000000 | 17, 0, 0, 0, 0),
    "io_uring_setup": lambda: libc.syscall(425, 8, 0),
}

def handler(event, context):
    try:
        result = ATTACKS[event["attack"]]()
    except OSError as exc:  # opening what setns would enter is refused already
        return {"result": -1, "errno": exc.errno}
    return {"result": result, "errno": ctypes.get_errno()}
"""

KILLED = ["ptrace", "mount", "bind_mount", "process_vm_readv", "bpf", "keyctl"]
REFUSED = ["unshare_user", "unshare_worker_namespaces", "clone_newpid", "io_uring_setup"]


@pytest.mark.parametrize("attack", KILLED)
def test_a_forbidden_syscall_kills_the_worker_and_says_seccomp(tmp_path: Path, attack: str) -> None:
    spec = make_spec(write_function(tmp_path, "syscalls", SYSCALLS))
    healthy = healthy_spec(tmp_path)

    async def scenario() -> None:
        async with started() as runtime:
            attacking = invoke(runtime, spec, {"attack": attack})
            outcome = await while_healthy_answers(runtime, healthy, attacking)
            assert outcome.status == "killed", outcome
            assert outcome.error is not None
            assert (outcome.error["signal"], outcome.error["reason"]) == ("SIGSYS", "seccomp")
            after = await invoke(runtime, spec, {"attack": "unshare_user"})  # a fresh worker
            assert after.cold is True and after.status == "succeeded"

    run(scenario)


def test_new_namespaces_are_refused_with_eperm(tmp_path: Path) -> None:
    spec = make_spec(write_function(tmp_path, "syscalls", SYSCALLS))
    healthy = healthy_spec(tmp_path)

    async def scenario() -> None:
        async with started() as runtime:
            for attack in REFUSED:
                attacking = invoke(runtime, spec, {"attack": attack})
                seen = result_of(await while_healthy_answers(runtime, healthy, attacking))
                assert seen == {"result": -1, "errno": 1}, (attack, seen)  # EPERM
            setns = result_of(await invoke(runtime, spec, {"attack": "setns"}))
            assert setns["result"] == -1 and setns["errno"] in (1, 13), setns  # EPERM / EACCES
            status = runtime.status()["functions"][spec.key]
            assert status["kills"] == 0 and status["cold_starts"] == 1  # one worker took them all

    run(scenario)
