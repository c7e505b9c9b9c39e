"""A real `ondo up` process for functional tests: start, talk to it, kill it, restart it."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import httpx

from tests.functional import backends

REPO = Path(__file__).resolve().parents[2]


def wait_for(what: Callable[[], Any], timeout: float = 60.0) -> Any:
    """Poll until `what()` is truthy (a bound on waiting, not a timing assertion)."""
    deadline = time.monotonic() + timeout
    while True:
        found = what()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"not reached in {timeout} s; last value {found!r}")
        time.sleep(0.05)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RunningPlatform:
    """`python -m ondo up` on a free port with its own data dir, on the run's backend
    (tests/functional/backends.py: embedded SQLite, or PostgreSQL + NATS under its own cluster)."""

    def __init__(
        self,
        data_dir: Path,
        apps: Sequence[Path] = (),
        env: dict[str, str] | None = None,
        port: int | None = None,
        tls: tuple[Path, Path] | None = None,
    ) -> None:
        self.data_dir = data_dir
        self.apps = list(apps)
        self.extra_env = env or {}
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        # https with (certificate, key), the certificate trusted by this harness's requests
        self.verify: ssl.SSLContext | bool = True
        if tls is not None:
            self.url = f"https://127.0.0.1:{self.port}"
            self.extra_env |= {"ONDO_TLS_CERT": str(tls[0]), "ONDO_TLS_KEY": str(tls[1])}
            self.verify = ssl.create_default_context(cafile=str(tls[0]))
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = data_dir.parent / f"{data_dir.name}-platform.log"
        self.backend = backends.configured()

    @property
    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update({"ONDO_URL": self.url, "ONDO_DATA_DIR": str(self.data_dir)})
        for name in ("ONDO_TOKEN", "ONDO_STORE", "ONDO_BUS", "ONDO_BUS_URL", "ONDO_CLUSTER"):
            env.pop(name, None)
        env.update(backends.environment(self.data_dir))
        env.update(self.extra_env)
        backends.used(env.get("ONDO_CLUSTER"), self)
        return env

    @property
    def cluster(self) -> str | None:
        """The cluster name on the distributed backend (None when embedded)."""
        return self.env.get("ONDO_CLUSTER")

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self, timeout: float = 30.0) -> RunningPlatform:
        args = [
            sys.executable,
            "-m",
            "ondo",
            "--data-dir",
            str(self.data_dir),
            "up",
            "--port",
            str(self.port),
        ]
        for app in self.apps:
            args += ["--app", str(app)]
        with self.log_path.open("ab") as log:  # the child keeps its own copy of the fd
            self.proc = subprocess.Popen(args, env=self.env, stdout=log, stderr=log, cwd=REPO)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"ondo up exited with {self.proc.returncode}:\n{self.log()}")
            try:
                health = httpx.get(f"{self.url}/healthz", timeout=1, verify=self.verify)
                if health.status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        self.kill()
        raise RuntimeError(f"ondo up did not become healthy in {timeout}s:\n{self.log()}")

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-5000:]
        except OSError:
            return ""

    @property
    def token(self) -> str:
        return (self.data_dir / "admin.token").read_text().strip()

    def client(self, timeout: float = 60.0) -> httpx.Client:
        return httpx.Client(
            base_url=self.url,
            headers={"Authorization": f"Bearer {self.token}"},
            timeout=timeout,
            verify=self.verify,
        )

    def cli(
        self, *args: str, input: str | None = None, timeout: float = 120.0
    ) -> subprocess.CompletedProcess[str]:
        """Run the `ondo` CLI against this platform (URL and token from the environment)."""
        return subprocess.run(
            [sys.executable, "-m", "ondo", *args],
            env={**self.env, "ONDO_TOKEN": self.token},
            capture_output=True,
            text=True,
            input=input,
            timeout=timeout,
            cwd=REPO,
        )

    def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM and wait: the clean shutdown path."""
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else 0
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise

    def kill(self) -> None:
        """SIGKILL the platform and its whole process tree."""
        if self.proc is None or self.proc.poll() is not None:
            return
        _kill_tree(self.proc.pid)
        self.proc.wait(10)

    def __enter__(self) -> RunningPlatform:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        try:
            self.stop()
        finally:
            self.kill()


def _children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue
    return found


def _kill_tree(pid: int) -> None:
    stack, seen = [pid], []
    while stack:
        current = stack.pop()
        seen.append(current)
        stack.extend(_children(current))
    for victim in seen:
        with contextlib.suppress(ProcessLookupError):
            os.kill(victim, signal.SIGKILL)
