"""The standalone sandbox modules (loaded by path, as the zygote loads them) in real processes."""

from __future__ import annotations

import ctypes
import faulthandler
import importlib.util
import os
import signal
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

RUNTIME_DIR = Path(__file__).resolve().parents[3] / "src" / "ondo" / "runtime"


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"sandboxed_{name}", RUNTIME_DIR / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _in_child(action: Any) -> int:
    """Run action() in a forked child; return its wait status (exit code = action's result)."""
    pid = os.fork()
    if pid == 0:
        faulthandler.disable()
        try:
            os._exit(int(action()))
        except BaseException:
            os._exit(98)
    _, status = os.waitpid(pid, 0)
    return status


@pytest.mark.skipif(os.uname().machine != "x86_64", reason="the filter is written for x86_64")
def test_seccomp_kills_ptrace_refuses_unshare_and_allows_the_rest() -> None:
    jail = _load("jail")

    def ptrace_after_filter() -> int:
        jail.install_seccomp()
        ctypes.CDLL(None).syscall(101, 0, 0, 0, 0)
        return 0

    def unshare_after_filter() -> int:
        jail.install_seccomp()
        libc = ctypes.CDLL(None, use_errno=True)
        failed = libc.unshare(0x10000000) == -1 and ctypes.get_errno() == 1  # EPERM
        forked = os.fork()  # plain clone still works
        if forked == 0:
            os._exit(0)
        os.waitpid(forked, 0)
        return 7 if failed and os.getpid() > 0 else 1

    status = _in_child(ptrace_after_filter)
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGSYS
    assert os.waitstatus_to_exitcode(_in_child(unshare_after_filter)) == 7


@pytest.mark.skipif(os.uname().machine != "x86_64", reason="the filter is written for x86_64")
def test_the_zygotes_filter_lets_through_only_what_a_worker_needs_to_isolate_itself() -> None:
    jail = _load("jail")
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mount.argtypes = [ctypes.c_char_p] * 3 + [ctypes.c_ulong, ctypes.c_char_p]

    def other_unshare_after_filter() -> int:
        jail.install_seccomp(jail.seccomp_program(worker_setup=True))
        for flags in (jail.CLONE_NEWUSER, jail.CLONE_NEWNET, jail.WORKER_NAMESPACES | (1 << 32)):
            if libc.unshare(ctypes.c_ulong(flags)) != -1 or ctypes.get_errno() != 1:
                return 1
        return 7

    def bind_mount_after_filter() -> int:
        jail.install_seccomp(jail.seccomp_program(worker_setup=True))
        libc.mount(b"/", b"/tmp", None, jail.MS_BIND | jail.TMP_MOUNT_FLAGS, None)
        return 0

    def setup_unshare_once_closed() -> int:
        jail.install_seccomp(jail.seccomp_program(worker_setup=True))
        jail.install_seccomp(jail.worker_setup_closed())
        refused = libc.unshare(jail.WORKER_NAMESPACES) == -1 and ctypes.get_errno() == 1
        return 7 if refused else 1

    def setup_mount_once_closed() -> int:
        jail.install_seccomp(jail.seccomp_program(worker_setup=True))
        jail.install_seccomp(jail.worker_setup_closed())
        libc.mount(b"tmp", b"/tmp", b"tmpfs", jail.TMP_MOUNT_FLAGS, None)
        return 0

    assert os.waitstatus_to_exitcode(_in_child(other_unshare_after_filter)) == 7
    assert os.waitstatus_to_exitcode(_in_child(setup_unshare_once_closed)) == 7
    for killed in (bind_mount_after_filter, setup_mount_once_closed):
        status = _in_child(killed)
        assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGSYS


def test_log_sink_keeps_the_first_bytes_and_counts_the_rest() -> None:
    bootstrap = _load("bootstrap")
    sink = bootstrap.LogSink()
    header = bootstrap.LOG_HEADER
    area = bytearray(header.size + 10)
    sink.attach(area, 10)
    sink.write(b"hello ")
    sink.write(b"world, and more")
    total, stored = header.unpack_from(area, 0)
    assert (total, stored) == (21, 10)
    assert sink.text() == "hello worl"
    sink.reset()
    assert header.unpack_from(area, 0) == (0, 0)


def test_probe_reports_every_layer() -> None:
    jail = _load("jail")
    import tempfile

    with tempfile.TemporaryDirectory() as root:
        layers = jail.probe(root)
    names = ("user", "mount", "pid", "ipc", "uts", "net", "rootfs", "seccomp", "rlimits")
    for name in (*names, "worker_tmp", "landlock"):
        assert layers[name]["active"] or layers[name]["reason"]
