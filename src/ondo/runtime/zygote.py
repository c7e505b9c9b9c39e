"""The platform's handle on one zygote process: start it, ask it to fork workers, hear of exits.

Everything the zygote says is untrusted (the handler's import-time code ran inside it): each
control message must come from the zygote's own pid, be well-formed JSON and name a slot; a
zygote that breaks these rules is killed. Signals go through pidfds, never a reusable pid.
"""

from __future__ import annotations

import array
import asyncio
import contextlib
import errno
import fcntl
import json
import logging
import os
import select
import signal
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ondo.errors import HandlerImportError, RuntimeUnavailable
from ondo.runtime.channel import credentials_pid, encodable

log = logging.getLogger("ondo.runtime")

BOOTSTRAP = Path(__file__).with_name("bootstrap.py")
JAIL = Path(__file__).with_name("jail.py")
SANDBOX_PYTHON = os.path.realpath(sys.executable)  # the base interpreter, outside any venv
CONFIG_MAX_BYTES = 4 * 1024 * 1024
MESSAGES_PER_WAKEUP = 64  # a flooding zygote cannot monopolise the event loop
STDERR_KEPT = 16 * 1024
LOG_AREA_SEALS = fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW | fcntl.F_SEAL_SEAL

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
        self.pidfd: int | None = None
        self.layers: dict[str, Any] = {}
        self.alive = False
        self.dead = asyncio.Event()
        self.fork_failures: dict[int, str] = {}
        self._ready: asyncio.Future[dict[str, Any]] | None = None
        self._launcher_fd: int | None = None

    async def start(self, import_timeout_s: float) -> None:
        loop = asyncio.get_running_loop()
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        ours.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        ours.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, CONFIG_MAX_BYTES)
        try:
            ours.send(json.dumps({**self.config, "jail_path": str(JAIL)}).encode())
        except OSError as exc:
            ours.close()
            theirs.close()
            raise RuntimeUnavailable(
                f"{self.key}: the function's settings are too large to hand to its sandbox "
                f"({exc.strerror}); keep `environment` small (Lambda allows 4 KB)"
            ) from exc
        args = [SANDBOX_PYTHON, "-I", "-S", str(BOOTSTRAP), str(theirs.fileno())]
        try:
            self.launcher = subprocess.Popen(
                args,
                pass_fds=(theirs.fileno(),),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,  # sandbox setup errors; fd 2 is /dev/null before user code
                start_new_session=True,
                # Never the platform's environment: /proc/self/environ shows what exec got.
                env=dict(self.config.get("environment", {})),
            )
        except OSError as exc:
            ours.close()
            raise RuntimeUnavailable(
                f"{self.key}: cannot start the function's sandbox: {exc.strerror}"
                + (" (its environment is too large)" if exc.errno == errno.E2BIG else "")
            ) from exc
        finally:
            theirs.close()
        ours.setblocking(False)
        self.ctl = ours
        self._ready = loop.create_future()
        loop.add_reader(ours.fileno(), self._on_control)
        self._watch_launcher()
        try:
            async with asyncio.timeout(import_timeout_s):
                message = await asyncio.shield(self._ready)
            self._handle_start(message)
        except TimeoutError:
            self.kill()
            raise HandlerImportError(
                f"{self.key}: handler {self.config['handler']!r} did not finish importing in "
                f"{import_timeout_s:.0f} s; move slow work (downloads, loops) out of import time"
            ) from None
        finally:
            self._close_stderr()

    def _handle_start(self, message: dict[str, Any]) -> None:
        error = encodable(str(message.get("error", "no reason")))
        if message.get("op") == "import_failed":
            self.kill()
            raise HandlerImportError(
                f"{self.key}: handler {self.config['handler']!r} failed to import:\n{error}"
            )
        if message.get("op") != "ready":
            self.kill()
            raise RuntimeUnavailable(
                f"{self.key}: the sandbox did not start ({error}){self._stderr_tail()}"
            )
        layers = message.get("layers")
        self.layers = layers if isinstance(layers, dict) else {}
        self.alive = True

    def _stderr_tail(self) -> str:
        stream = self.launcher.stderr if self.launcher else None
        if stream is None:
            return ""
        with contextlib.suppress(OSError):
            os.set_blocking(stream.fileno(), False)
            text = (stream.read(STDERR_KEPT) or b"").decode(errors="replace").strip()
            return f":\n{text}" if text else ""
        return ""

    def _close_stderr(self) -> None:
        if self.launcher is not None and self.launcher.stderr is not None:
            self.launcher.stderr.close()

    # --- messages ------------------------------------------------------------------------

    def _on_control(self) -> None:
        assert self.ctl is not None
        for _ in range(MESSAGES_PER_WAKEUP):
            try:
                data, ancdata, _, _ = self.ctl.recvmsg(65536, socket.CMSG_SPACE(12))
            except BlockingIOError:
                return
            except OSError:
                data, ancdata = b"", []
            if not data:
                self._mark_dead("the zygote closed its control socket")
                return
            try:
                self._on_message(json.loads(data), credentials_pid(ancdata))
            except (ValueError, KeyError, TypeError, AttributeError, RecursionError) as exc:
                self._violation(f"a malformed control message ({exc})")
                return

    def _on_message(self, message: dict[str, Any], sender: int | None) -> None:
        op = message.get("op")
        if self.pid is None and op in ("ready", "import_failed"):
            self.pid = sender
            with contextlib.suppress(OSError, TypeError):
                self.pidfd = os.pidfd_open(sender)  # type: ignore[arg-type]
            if self._ready is not None and not self._ready.done():
                self._ready.set_result(message)
        elif sender is None or sender != self.pid:
            self._violation(f"a control message from pid {sender}, not the zygote")
        elif op == "exit":
            status = int(message["status"])
            if not 0 <= status <= 0xFFFF:  # a wait status; os.WIFSIGNALED takes no more
                raise ValueError(f"exit status {status} is not a wait status")
            self.on_exit(int(message["slot"]), status)
        elif op == "fork_failed":
            self.fork_failures[int(message["slot"])] = encodable(
                str(message.get("error", ""))[:2000]
            )
            self.on_exit(int(message["slot"]), -1)
        else:
            self._violation(f"an unknown control message {str(op)[:50]!r}")

    def _violation(self, what: str) -> None:
        log.warning("%s: killing the zygote: it sent %s", self.key, what)
        self.kill()
        self._mark_dead(f"protocol violation: {what}")

    # --- life and death ------------------------------------------------------------------

    def _watch_launcher(self) -> None:
        assert self.launcher is not None
        with contextlib.suppress(OSError):
            self._launcher_fd = os.pidfd_open(self.launcher.pid)
            asyncio.get_running_loop().add_reader(self._launcher_fd, self._on_launcher_exit)

    def _on_launcher_exit(self) -> None:
        if self._launcher_fd is not None:
            asyncio.get_running_loop().remove_reader(self._launcher_fd)
            os.close(self._launcher_fd)
            self._launcher_fd = None
        if self.launcher is not None:
            self.launcher.poll()
        self._mark_dead("the zygote exited")

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
        log_fd = os.memfd_create(f"ondo-log-{slot}", os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
        try:
            os.ftruncate(log_fd, int(self.config["log_area_bytes"]))
            # We read it through a mapping: a worker that could shrink it would kill us with
            # SIGBUS. Sealed before the worker gets it; the worker may still write into it.
            fcntl.fcntl(log_fd, fcntl.F_ADD_SEALS, LOG_AREA_SEALS)
            message = json.dumps({"op": "fork", "slot": slot}).encode()
            fds = array.array("i", (theirs.fileno(), log_fd)).tobytes()
            self.ctl.sendmsg([message], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, fds)])
        except OSError as exc:
            ours.close()
            os.close(log_fd)
            raise RuntimeUnavailable(f"{self.key}: cannot reach the zygote: {exc}") from exc
        finally:
            theirs.close()
        return ours, log_fd

    def kill(self) -> None:
        """SIGKILL the zygote; as pid 1 of its namespace, its workers die with it."""
        if self.pidfd is not None:
            with contextlib.suppress(OSError):
                signal.pidfd_send_signal(self.pidfd, signal.SIGKILL)
        elif self.launcher is not None and self.launcher.returncode is None:
            with contextlib.suppress(OSError):
                self.launcher.kill()  # no zygote pid yet: it dies of PDEATHSIG=SIGKILL
        if self.ctl is not None:
            with contextlib.suppress(OSError):
                self.ctl.shutdown(socket.SHUT_RDWR)

    async def wait_dead(self, timeout: float) -> bool:
        """Wait until the launcher has exited (the zygote and all its workers are gone)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while (self.launcher is not None and self.launcher.poll() is None) or _running(self.pidfd):
            if loop.time() > deadline:
                return False
            await asyncio.sleep(0.005)
        self._mark_dead("stopped")
        if self.pidfd is not None:
            os.close(self.pidfd)
            self.pidfd = None
        self._close_stderr()
        return True


def _running(pidfd: int | None) -> bool:
    """A pidfd becomes readable when its process has exited."""
    if pidfd is None:
        return False
    readable, _, _ = select.select([pidfd], [], [], 0)
    return not readable
