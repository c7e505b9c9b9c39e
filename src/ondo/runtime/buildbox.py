"""Runs `pip install --target` INSIDE a sandbox like a function's. Standard library only.

Started by the platform (builds.py) as ``python -I -S buildbox.py <config JSON>``, as root:

* the launcher enters new mount, pid, ipc and uts namespaces (and a network namespace with only
  loopback when the build gets no network), forks pid 1 of the build and waits for it;
* pid 1 joins the build's cgroups (memory cap, the egress allow-list, cgroup.kill), builds the
  read-only root of jail.py with the app at /var/task and the staging layer at /opt/python (the
  only writable host directory), puts the index names in /etc/hosts, copies the app into its
  private /tmp for the build's uid, sets rlimits, becomes that uid in a user namespace, drops
  capabilities, installs seccomp and execs pip.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import shutil
import sys
from typing import Any

MS_NOSUID, MS_NODEV, MS_REMOUNT, MS_BIND = 2, 4, 32, 4096
PR_SET_NO_NEW_PRIVS = 38
CLONE_NEWNS, CLONE_NEWUTS, CLONE_NEWIPC = 0x00020000, 0x04000000, 0x08000000
CLONE_NEWPID, CLONE_NEWNET = 0x20000000, 0x40000000


def enter_root(jail: Any, config: dict[str, Any]) -> None:
    for procs in config["cgroup_procs"]:
        with open(procs, "w") as handle:
            handle.write("0")
    jail.build_root(config)
    jail.mount(None, "/opt/python", None, MS_REMOUNT | MS_BIND | MS_NOSUID | MS_NODEV)
    with open("/tmp/.hosts", "w") as handle:
        handle.write(config["hosts"])
    jail.bind("/tmp/.hosts", "/etc/hosts")
    copy_app(int(config["host_uid"]))


def copy_app(uid: int) -> None:
    """The app, copied (as root: it may be private) into the build's own /tmp and handed to the
    build's uid, since setup.py builds write next to their sources."""
    with contextlib.suppress(shutil.Error):  # a special file or the like stays behind
        shutil.copytree("/var/task", "/tmp/app", symlinks=True)
    for directory, dirs, files in os.walk("/tmp/app"):
        os.lchown(directory, uid, uid)
        for name in (*dirs, *files):
            os.lchown(os.path.join(directory, name), uid, uid)


def drop_privileges(jail: Any, config: dict[str, Any]) -> None:
    jail.set_rlimits(config)
    jail.drop_to_host_uid(int(config["host_uid"]))
    jail.enter_user_namespace(int(config["host_uid"]))
    jail.drop_capabilities()
    jail.prctl(PR_SET_NO_NEW_PRIVS, 1)
    jail.install_seccomp()


def run_pip(config: dict[str, Any]) -> None:
    os.chdir(os.path.join("/tmp/app", config["requirements_dir"]))
    python = config["python"]
    command = [
        python, "-m", "pip", "install", "--progress-bar", "off", "--no-input", "--no-cache-dir",
        "--disable-pip-version-check", "--no-warn-script-location", "--target", "/opt/python",
        *config["index_args"], "-r", config["requirements_name"],
    ]  # fmt: skip
    os.execve(python, command, config["environment"])


def main() -> None:
    config = json.loads(sys.argv[1])
    sys.path.insert(0, os.path.dirname(config["jail_path"]))  # -I left the script's dir out
    jail: Any = importlib.import_module("jail")
    flags = CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWUTS
    jail.unshare(flags | (0 if config["network"] else CLONE_NEWNET))
    if not config["network"]:
        jail.loopback_up()
    pid = os.fork()
    if pid == 0:
        try:
            jail.die_with_parent()
            enter_root(jail, config)
            drop_privileges(jail, config)
            run_pip(config)
        except Exception as exc:  # report how the sandbox failed, never a traceback of ours
            sys.stderr.write(f"ERROR: the build sandbox could not start: {exc}\n")
        os._exit(70)
    _, status = os.waitpid(pid, 0)
    os._exit(os.waitstatus_to_exitcode(status) & 0xFF if os.WIFEXITED(status) else 71)


if __name__ == "__main__":
    main()
