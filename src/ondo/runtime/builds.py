"""Platform side of sandboxed dependency builds: cgroups, the network allow-list, the launch.

pip (and every setup.py it runs) executes inside buildbox.py's sandbox, never on the host:
its own uid, a read-only root where only the staging layer is writable, no data dir, rlimits,
a memory cap, a timeout, seccomp, and network only towards the package index's addresses.
"""

from __future__ import annotations

import contextlib
import ipaddress
import itertools
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ondo.destinations import Destination
from ondo.runtime import egress
from ondo.runtime.zygote import JAIL, SANDBOX_PYTHON

BUILDBOX = Path(__file__).with_name("buildbox.py")
_serials = itertools.count(1)
ENVIRONMENT = {
    "PATH": "/usr/local/bin:/usr/bin:/bin",
    "HOME": "/tmp",
    "LANG": "C.UTF-8",
    "TMPDIR": "/tmp",
    "PIP_CONFIG_FILE": "/dev/null",  # the host's pip settings point at the host's directories
    "PIP_NO_INPUT": "1",
    "PYTHONDONTWRITEBYTECODE": "1",
}
CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"


@dataclass(frozen=True)
class BuildSettings:
    """What the operator decides about dependency builds (see config.py)."""

    index_url: str = "https://pypi.org/simple"
    index_hosts: tuple[str, ...] = ("pypi.org", "files.pythonhosted.org")
    allow_index_options: bool = False  # may requirements files name other indexes?
    timeout_s: float = 600.0
    memory_mb: int = 2048
    tmp_mb: int = 1024


def index_hosts(settings: BuildSettings, extra_urls: list[str]) -> list[str]:
    urls = [settings.index_url, *extra_urls]
    names = {urlsplit(url).hostname or "" for url in urls} | set(settings.index_hosts)
    return sorted(name for name in names if name)


def resolve(names: list[str]) -> tuple[str, list[Destination]]:
    """/etc/hosts text and the allowed ip:port for the index hosts, resolved on the host."""
    lines, allowed = ["127.0.0.1 localhost"], []
    for name in names:
        with contextlib.suppress(OSError):
            for *_, address in socket.getaddrinfo(name, 443, proto=socket.IPPROTO_TCP):
                ip = str(address[0])
                lines.append(f"{ip} {name}")
                allowed += [Destination(ipaddress.ip_address(ip), port) for port in (443, 80)]
    return "\n".join(dict.fromkeys(lines)) + "\n", allowed


class BuildCgroups:
    """A cgroup2 directory (egress allow-list, kill) and a memory cgroup for one build."""

    def __init__(self, memory_mb: int) -> None:
        from ondo.runtime.cgroups import CGROUP_ROOT, _own_cgroup  # cgroups -> pool -> base -> us

        name = f"ondo-build-{os.getpid()}-{next(_serials)}"
        self.unified = _make(CGROUP_ROOT / "unified", _own_cgroup(""), name)
        self.memory = _make(CGROUP_ROOT / "memory", _own_cgroup("memory"), name)
        if self.memory is not None:
            with contextlib.suppress(OSError):
                (self.memory / "memory.limit_in_bytes").write_text(str(memory_mb << 20))

    @property
    def procs(self) -> list[str]:
        return [str(p / "cgroup.procs") for p in (self.unified, self.memory) if p is not None]

    def close(self) -> None:
        if self.unified is not None:
            with contextlib.suppress(OSError):
                (self.unified / "cgroup.kill").write_text("1")
        for path in (self.unified, self.memory):
            for _ in range(100):
                if path is None or not path.exists():
                    break
                with contextlib.suppress(OSError):
                    path.rmdir()
                time.sleep(0.01)


def _make(mount: Path, own: str | None, name: str) -> Path | None:
    if own is None or not mount.is_dir():
        return None
    path = mount / own.lstrip("/") / name
    try:
        path.mkdir()
    except OSError:
        return None
    return path


@contextlib.contextmanager
def sandboxed_pip(
    requirements: Path,
    app_root: Path,
    staging: Path,
    settings: BuildSettings,
    extra_index_urls: list[str],
) -> Iterator[subprocess.Popen[str]]:
    """pip, started in its sandbox; its output (stdout and stderr) comes on `.stdout`."""
    from ondo.runtime.sandbox import next_sandbox_uid  # sandbox -> base -> layers -> us

    uid = next_sandbox_uid()
    if os.geteuid() == 0:
        os.chown(staging, uid, uid)
    cgroups = BuildCgroups(settings.memory_mb)
    root_mount = tempfile.mkdtemp(prefix="ondo-build-root-")
    try:
        hosts, allowed = resolve(index_hosts(settings, extra_index_urls))
        if cgroups.unified is not None:  # else: no network at all (offline builds only)
            egress.attach(cgroups.unified, egress.allow_list_policy(allowed))
        config = _config(requirements, app_root, staging, settings, uid, cgroups, root_mount)
        config.update(hosts=hosts, network=cgroups.unified is not None)
        with subprocess.Popen(
            [SANDBOX_PYTHON, "-I", "-S", str(BUILDBOX), json.dumps(config)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
            env={},
        ) as pip:
            yield pip
    finally:
        cgroups.close()
        with contextlib.suppress(OSError):
            os.rmdir(root_mount)
        if os.geteuid() == 0:
            _give_to_root(staging)


def _config(
    requirements: Path,
    app_root: Path,
    staging: Path,
    settings: BuildSettings,
    uid: int,
    cgroups: BuildCgroups,
    root_mount: str,
) -> dict[str, Any]:
    return {
        "jail_path": str(JAIL),
        "root_mount": root_mount,
        "python_prefix": os.path.realpath(sys.base_prefix),
        "python": SANDBOX_PYTHON,
        "code_dir": str(app_root),
        "layer_dir": str(staging),
        "requirements_dir": str(requirements.parent.relative_to(app_root)),
        "requirements_name": requirements.name,
        "index_args": ["--index-url", settings.index_url],
        "host_uid": uid,
        "cgroup_procs": cgroups.procs,
        "tmp_mb": settings.tmp_mb,
        "nproc": 256,
        "as_bytes": (settings.memory_mb + 2048) << 20,
        "environment": {
            **ENVIRONMENT,
            **({"PIP_CERT": CA_BUNDLE} if os.path.exists(CA_BUNDLE) else {}),
        },
    }


def _give_to_root(tree: Path) -> None:
    """The layer is the platform's once built: the build's uid keeps nothing it can change."""
    for directory, dirs, files in os.walk(tree):
        for name in (*dirs, *files):
            with contextlib.suppress(OSError):
                os.lchown(os.path.join(directory, name), 0, 0)
    with contextlib.suppress(OSError):
        os.chown(tree, 0, 0)
