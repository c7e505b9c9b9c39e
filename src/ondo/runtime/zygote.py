"""The platform's handle on one zygote process: start it, ask it to fork workers, hear of exits."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ondo.errors import HandlerImportError, RuntimeUnavailable

log = logging.getLogger("ondo.runtime")

BOOTSTRAP = Path(__file__).with_name("bootstrap.py")
JAIL = Path(__file__).with_name("jail.py")
SANDBOX_PYTHON = os.path.realpath(sys.executable)  # the base interpreter, outside any venv
START_TIMEOUT_S = 60.0
CONFIG_MAX_BYTES = 4 * 1024 * 1024

ExitListener = Callable[[int, int], None]  # slot, wait status
ZYGOTE_GONE = -2  # slot and status reported when the zygote itself is gone


class ZygoteProcess:
    """One function version's zygote; `fork(slot)` returns the platform's end of a new worker."""

    def __init__(self, key: str, config: dict[str, Any], on_exit: ExitListener) -> None:
        self.key = key
        self.config = config
        self.on_exit = on_exit
        self.ctl: socket.socket | None = None
        self.launcher: subprocess.Popen[bytes] | None = None
        self.pid: int | None = None  # the zygote's pid as seen from the platform
        self.layers: dict[str, Any] = {}
        self.alive = False
        self.dead = asyncio.Event()
        self._ready: asyncio.Future[dict[str, Any]] | None = None
        self._pidfd: int | None = None
        self.fork_failures: dict[int, str] = {}

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        ours.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        ours.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, CONFIG_MAX_BYTES)
        ours.send(json.dumps({**self.config, "jail_path": str(JAIL)}).encode())
        args = [SANDBOX_PYTHON, "-I", "-S", str(BOOTSTRAP), str(theirs.fileno())]
        try:
            self.launcher = subprocess.Popen(
                args,
                pass_fds=(theirs.fileno(),),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                start_new_session=True,
            )
        finally:
            theirs.close()
        ours.setblocking(False)
        self.ctl = ours
        self._ready = loop.create_future()
        loop.add_reader(ours.fileno(), self._on_control)
        self._watch_launcher()
        try:
            message = await asyncio.wait_for(asyncio.shield(self._ready), START_TIMEOUT_S)
        except TimeoutError:
            self.kill()
            raise RuntimeUnavailable(
                f"{self.key}: the zygote did not become ready in {START_TIMEOUT_S:.0f} s"
            ) from None
        self._handle_start(message)

    def _handle_start(self, message: dict[str, Any]) -> None:
        if message.get("op") == "import_failed":
            self.kill()
            raise HandlerImportError(
                f"{self.key}: handler {self.config['handler']!r} failed to import:\n"
                f"{message.get('error', '')}"
            )
        if message.get("op") != "ready":
            self.kill()
            raise RuntimeUnavailable(
                f"{self.key}: the zygote stopped before it was ready ({message.get('error', '')}); "
                "see the platform log for the sandbox error"
            )
        self.layers = dict(message.get("layers", {}))
        self.alive = True

    def _watch_launcher(self) -> None:
        assert self.launcher is not None
        with contextlib.suppress(OSError):
            self._pidfd = os.pidfd_open(self.launcher.pid)
            asyncio.get_running_loop().add_reader(self._pidfd, self._on_launcher_exit)

    def _on_launcher_exit(self) -> None:
        loop = asyncio.get_running_loop()
        if self._pidfd is not None:
            loop.remove_reader(self._pidfd)
            os.close(self._pidfd)
            self._pidfd = None
        if self.launcher is not None:
            self.launcher.poll()
        self._mark_dead("the zygote exited")

    def _on_control(self) -> None:
        assert self.ctl is not None
        while True:
            try:
                data, ancdata, _, _ = self.ctl.recvmsg(65536, socket.CMSG_SPACE(12))
            except BlockingIOError:
                return
            except OSError:
                data, ancdata = b"", []
            if not data:
                self._mark_dead("the zygote closed its control socket")
                return
            self._on_message(json.loads(data), ancdata)

    def _on_message(self, message: dict[str, Any], ancdata: list[Any]) -> None:
        op = message.get("op")
        if op in ("ready", "import_failed"):
            self.pid = _sender_pid(ancdata)
            if self.ctl is not None:
                self.ctl.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 0)
            if self._ready is not None and not self._ready.done():
                self._ready.set_result(message)
        elif op == "exit":
            self.on_exit(int(message["slot"]), int(message["status"]))
        elif op == "fork_failed":
            self.fork_failures[int(message["slot"])] = str(message.get("error", ""))
            self.on_exit(int(message["slot"]), -1)

    def _mark_dead(self, why: str) -> None:
        if self.dead.is_set():
            return
        self.alive = False
        self.dead.set()
        self.on_exit(ZYGOTE_GONE, ZYGOTE_GONE)  # every worker died with it (pid namespace)
        if self.ctl is not None:
            with contextlib.suppress(ValueError, OSError):
                asyncio.get_running_loop().remove_reader(self.ctl.fileno())
            self.ctl.close()
        if self._ready is not None and not self._ready.done():
            self._ready.set_result({"op": "died", "error": why})

    def fork(self, slot: int) -> tuple[socket.socket, int]:
        """Ask for a worker; returns (our socket end, log memfd). The worker says hello on it."""
        if not self.alive or self.ctl is None:
            raise RuntimeUnavailable(f"{self.key}: the zygote is not running")
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        ours.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        ours.setblocking(False)
        log_fd = os.memfd_create(f"ondo-log-{slot}", os.MFD_CLOEXEC)
        try:
            os.ftruncate(log_fd, int(self.config["log_area_bytes"]))
            message = json.dumps({"op": "fork", "slot": slot}).encode()
            fds = bytes(memoryview(_int_array(theirs.fileno(), log_fd)))
            self.ctl.sendmsg([message], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, fds)])
        except OSError:
            ours.close()
            os.close(log_fd)
            raise
        finally:
            theirs.close()
        return ours, log_fd

    def kill(self) -> None:
        """SIGKILL the zygote; as pid 1 of its namespace, its workers die with it."""
        for pid in (self.pid, self.launcher.pid if self.launcher else None):
            if pid is not None:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
        if self.ctl is not None:
            with contextlib.suppress(OSError):
                self.ctl.shutdown(socket.SHUT_RDWR)

    async def wait_dead(self, timeout: float) -> bool:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.dead.wait(), timeout)
        if self.launcher is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.launcher.wait(timeout=max(0.0, timeout))
        return self.dead.is_set()


def _int_array(*values: int) -> bytes:
    import array

    return array.array("i", values).tobytes()


def _sender_pid(ancdata: list[Any]) -> int | None:
    import struct

    for level, kind, payload in ancdata:
        if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
            return int(struct.unpack("3i", payload[:12])[0])
    return None
