"""Sandbox layers entered by the zygote before any user code runs. Standard library only.

Loaded by bootstrap.py by path (never through the ondo package). Order matters:
  launcher (root):  unshare mount/pid/ipc/uts[/net] namespaces, loopback up, fork the zygote
  zygote (pid 1):   join its cgroups, build a minimal read-only root and pivot into it, set rlimits,
                    become an unprivileged host uid, enter a new user namespace as uid 1000,
                    drop every capability, no_new_privs, install the seccomp filter.
  worker (a fork):  its own user, mount and ipc namespaces with a private /tmp and /dev/shm,
                    capabilities dropped again, a Landlock domain of its own (no signal, ptrace or
                    /proc/PID/mem access to the zygote or other workers), the strict seccomp filter,
                    subreaper of everything it starts (see enter_worker).
`python -I -S jail.py probe <root mount>` tries each layer in a child and prints what works.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import functools
import json
import os
import resource
import signal
import socket
import struct
import sys
from typing import Any

CLONE_NEWNS = 0x00020000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
NAMESPACE_FLAGS = {
    "mount": CLONE_NEWNS,
    "pid": CLONE_NEWPID,
    "ipc": CLONE_NEWIPC,
    "uts": CLONE_NEWUTS,
    "net": CLONE_NEWNET,
}

MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 32, 4096, 16384, 1 << 18
MNT_DETACH = 2
PR_SET_DUMPABLE = 4
PR_SET_PDEATHSIG, PR_CAPBSET_DROP, PR_SET_NO_NEW_PRIVS, PR_SET_SECCOMP = 1, 24, 38, 22
PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL = 47, 4
PR_SET_CHILD_SUBREAPER = 36
SYS_PIVOT_ROOT, SYS_CAPSET = 155, 126
SANDBOX_UID = 1000

libc = ctypes.CDLL(None, use_errno=True)
libc.mount.argtypes = [
    ctypes.c_char_p,
    ctypes.c_char_p,
    ctypes.c_char_p,
    ctypes.c_ulong,
    ctypes.c_char_p,
]
libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
libc.unshare.argtypes = [ctypes.c_int]
libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]


class JailError(Exception):
    """A sandbox layer could not be entered."""


def _check(result: int, what: str) -> None:
    if result != 0:
        err = ctypes.get_errno()
        raise JailError(f"{what}: {os.strerror(err)} (errno {err})")


def _b(text: str | None) -> bytes | None:
    return None if text is None else text.encode()


def mount(
    source: str | None, target: str, fstype: str | None, flags: int, data: str | None = None
) -> None:
    _check(libc.mount(_b(source), _b(target), _b(fstype), flags, _b(data)), f"mount {target}")


def unshare(flags: int) -> None:
    _check(libc.unshare(flags), f"unshare({flags:#x})")


def prctl(option: int, arg: int = 0) -> None:
    _check(libc.prctl(option, arg, 0, 0, 0), f"prctl({option})")


# --- launcher: namespaces -----------------------------------------------------------------


def namespace_flags(layers: dict[str, bool], network: bool) -> int:
    flags = 0
    for name, flag in NAMESPACE_FLAGS.items():
        if layers.get(name) and not (name == "net" and network):
            flags |= flag
    return flags


def enter_outer(config: dict[str, Any]) -> None:
    layers = config["layers"]
    flags = namespace_flags(layers, bool(config["network"]))
    if flags:
        unshare(flags)
    if flags & CLONE_NEWNET:
        loopback_up()
    if flags & CLONE_NEWUTS:
        socket.sethostname("ondo")


def loopback_up() -> None:
    siocgifflags, siocsifflags, iff_up = 0x8913, 0x8914, 0x1
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        request = struct.pack("16sH14x", b"lo", 0)
        flags = struct.unpack("16sH14x", fcntl.ioctl(sock, siocgifflags, request))[1]
        fcntl.ioctl(sock, siocsifflags, struct.pack("16sH14x", b"lo", flags | iff_up))


def die_with_parent() -> None:
    parent = os.getppid()
    prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # the parent died before the line above took effect
        os._exit(1)


# --- zygote: root, privileges, limits, seccomp --------------------------------------------


def enter_inner(config: dict[str, Any]) -> dict[str, Any]:
    layers: dict[str, bool] = config["layers"]
    flags = namespace_flags(layers, bool(config["network"]))
    applied: dict[str, Any] = {name: bool(flags & flag) for name, flag in NAMESPACE_FLAGS.items()}
    for procs in config.get("cgroup_dirs", []):
        with open(procs, "w") as handle:
            handle.write("0")
    if layers.get("mount") and layers.get("rootfs"):
        build_root(config)
        applied["rootfs"] = True
    elif layers.get("mount"):
        keep = [config["code_dir"], *([config["layer_dir"]] if config.get("layer_dir") else [])]
        hide_paths(config.get("hidden_paths", []), keep)  # second best: cover the secrets
        applied["hidden_paths"] = True
    set_rlimits(config)
    applied["rlimits"] = True
    drop_to_host_uid(int(config["host_uid"]))
    if layers.get("user"):
        enter_user_namespace(int(config["host_uid"]))
        applied["user"] = True
    drop_capabilities()
    prctl(PR_SET_NO_NEW_PRIVS, 1)
    applied["worker_tmp"] = bool(
        layers.get("worker_tmp") and applied.get("user") and applied.get("rootfs")
    )
    applied["landlock"] = bool(layers.get("landlock"))
    if layers.get("seccomp"):
        worker_setup_closed()  # built here, once, for every worker's enter_worker
        install_seccomp(seccomp_program(worker_setup=applied["worker_tmp"]))
        applied["seccomp"] = True
    if not applied["landlock"]:
        prctl(PR_SET_DUMPABLE, 0)  # no Landlock to keep workers out: /proc/1/mem is root's
    return applied


# --- worker: what each fork of the zygote enters before its first invocation -------------------

WORKER_NAMESPACES = CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWIPC
TMP_MOUNT_FLAGS = MS_NOSUID | MS_NODEV
SHM_MOUNT_FLAGS = MS_NOSUID | MS_NODEV | MS_NOEXEC


def enter_worker(applied: dict[str, Any], tmp_mb: int, tmp_from_import: bool = True) -> None:
    """Called in a new worker (single-threaded, right after fork): nothing of this worker is
    reachable from its siblings, and nothing its siblings left behind is reachable from it."""
    if applied.get("worker_tmp"):
        prctl(PR_SET_DUMPABLE, 1)  # the zygote may not be: else /proc/self/uid_map is root's
        private_tmp(tmp_mb, tmp_from_import)
        drop_capabilities()  # the new user namespace gave them back
    if applied.get("landlock"):
        landlock_scope_self()
    else:
        prctl(PR_SET_DUMPABLE, 0)  # second best: no /proc/PID/mem or ptrace from same-uid peers
    if applied.get("seccomp") and applied.get("worker_tmp"):
        install_seccomp(worker_setup_closed())  # with the zygote's: the strict filter
    prctl(PR_SET_CHILD_SUBREAPER, 1)  # every leftover process stays ours to kill


def private_tmp(tmp_mb: int, over_zygote_tmp: bool = True) -> None:
    """A /tmp of its own: a tmpfs that dies with the worker (nothing it wrote stays charged to
    the cgroup its slot passes on); if the handler's import wrote files in the zygote's /tmp
    (over_zygote_tmp), an overlay with that /tmp as lower layer and the tmpfs as upper layer,
    so they stay visible. Also /dev/shm and SysV IPC of its own."""
    uid, gid = os.geteuid(), os.getegid()
    unshare(WORKER_NAMESPACES)
    for name, text in (
        ("setgroups", "deny"),
        ("uid_map", f"{uid} {uid} 1"),
        ("gid_map", f"{gid} {gid} 1"),
    ):
        fd = os.open(f"/proc/self/{name}", os.O_WRONLY | os.O_CLOEXEC)
        try:
            os.write(fd, text.encode())
        finally:
            os.close(fd)
    if over_zygote_tmp:
        _overlay_tmp(tmp_mb)
    else:
        mount("tmp", "/tmp", "tmpfs", TMP_MOUNT_FLAGS, f"size={tmp_mb}m,mode=1777")
    mount("shm", "/dev/shm", "tmpfs", SHM_MOUNT_FLAGS, f"size={max(1, tmp_mb // 4)}m,mode=1777")


def _overlay_tmp(tmp_mb: int) -> None:
    lower = os.open("/tmp", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        mount("tmp", "/tmp", "tmpfs", TMP_MOUNT_FLAGS, f"size={tmp_mb}m,mode=700")
        os.mkdir("/tmp/upper", 0o1777)
        os.chmod("/tmp/upper", 0o1777)
        os.mkdir("/tmp/work", 0o700)
        options = f"lowerdir=/proc/self/fd/{lower},upperdir=/tmp/upper,workdir=/tmp/work,userxattr"
        mount("tmp", "/tmp", "overlay", TMP_MOUNT_FLAGS, options)
    finally:
        os.close(lower)


SYS_LANDLOCK_CREATE_RULESET, SYS_LANDLOCK_RESTRICT_SELF = 444, 446
LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET, LANDLOCK_SCOPE_SIGNAL = 1, 2  # Landlock ABI 6 (Linux 6.12)


def landlock_scope_self() -> None:
    """A Landlock domain of this worker's own: it (and what it starts) can signal, ptrace, open
    /proc/PID/mem of, or connect to abstract sockets of only processes inside it."""
    scopes = LANDLOCK_SCOPE_SIGNAL | LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET
    attr = struct.pack("QQQ", 0, 0, scopes)  # handled fs access, handled net access, scoped
    fd = libc.syscall(SYS_LANDLOCK_CREATE_RULESET, attr, len(attr), 0)
    if fd < 0:
        _check(fd, "landlock_create_ruleset")
    try:
        _check(libc.syscall(SYS_LANDLOCK_RESTRICT_SELF, fd, 0), "landlock_restrict_self")
    finally:
        os.close(fd)


def bind(source: str, target: str, writable: bool = False) -> None:
    mount(source, target, None, MS_BIND | MS_REC)
    flags = MS_REMOUNT | MS_BIND | MS_NOSUID | (0 if writable else MS_RDONLY)
    if not source.startswith("/dev/"):
        flags |= MS_NODEV
    mount(None, target, None, flags)


def _make_target(root: str, path: str, like: str) -> str:
    target = root + path
    if os.path.isdir(like):
        os.makedirs(target, exist_ok=True)
    else:
        os.makedirs(os.path.dirname(target), exist_ok=True)
        with open(target, "a"):
            pass
    return target


def _bind_system_dirs(root: str) -> None:
    for top in ("usr", "bin", "sbin", "lib", "lib32", "lib64", "libx32"):
        host = "/" + top
        if os.path.islink(host):
            os.symlink(os.readlink(host), root + host)
        elif os.path.isdir(host):
            bind(host, _make_target(root, host, host))


def _bind_etc(root: str) -> None:
    names = (
        "hosts",
        "resolv.conf",
        "nsswitch.conf",
        "host.conf",
        "localtime",
        "ssl",
        "ca-certificates",
        "mime.types",
    )
    os.makedirs(root + "/etc", exist_ok=True)
    for name in names:
        host = os.path.realpath("/etc/" + name)
        if os.path.exists(host):
            bind(host, _make_target(root, "/etc/" + name, host))
    with open(root + "/etc/passwd", "w") as handle:
        handle.write(
            f"root:x:0:0::/:/bin/false\nsbx_user:x:{SANDBOX_UID}:{SANDBOX_UID}::/tmp:/bin/false\n"
        )
    with open(root + "/etc/group", "w") as handle:
        handle.write(f"root:x:0:\nsbx_user:x:{SANDBOX_UID}:\n")


def _populate_dev(root: str, tmp_mb: int) -> None:
    os.makedirs(root + "/dev", exist_ok=True)
    for name in ("null", "zero", "full", "random", "urandom"):
        bind("/dev/" + name, _make_target(root, "/dev/" + name, "/dev/" + name), writable=True)
    for fd, name in enumerate(("stdin", "stdout", "stderr")):
        os.symlink(f"/proc/self/fd/{fd}", f"{root}/dev/{name}")
    os.symlink("/proc/self/fd", root + "/dev/fd")
    os.makedirs(root + "/dev/shm")
    mount(
        "shm",
        root + "/dev/shm",
        "tmpfs",
        MS_NOSUID | MS_NODEV | MS_NOEXEC,
        f"size={max(1, tmp_mb // 4)}m,mode=1777",
    )


def build_root(config: dict[str, Any]) -> None:
    """A tmpfs root holding read-only binds of the system, python, code and layer; pivot into it."""
    root = config["root_mount"]
    mount(None, "/", None, MS_REC | MS_PRIVATE)
    mount("ondo-root", root, "tmpfs", MS_NOSUID | MS_NODEV, "size=1m,mode=755")
    _bind_system_dirs(root)
    prefix = config["python_prefix"]
    if not prefix.startswith("/usr/"):
        bind(prefix, _make_target(root, prefix, prefix))
    bind(config["code_dir"], _make_target(root, "/var/task", "/"))
    if config.get("layer_dir"):
        bind(config["layer_dir"], _make_target(root, "/opt/python", "/"))
    _bind_etc(root)
    _populate_dev(root, int(config["tmp_mb"]))
    os.makedirs(root + "/tmp")
    mount(
        "tmp",
        root + "/tmp",
        "tmpfs",
        MS_NOSUID | MS_NODEV,
        f"size={int(config['tmp_mb'])}m,mode=1777",
    )
    os.makedirs(root + "/proc")
    mount("proc", root + "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    os.chdir(root)
    _check(libc.syscall(SYS_PIVOT_ROOT, b".", b"."), "pivot_root")
    _check(libc.umount2(b".", MNT_DETACH), "umount old root")
    os.chdir("/")
    mount(None, "/", None, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV)


def hide_paths(paths: list[str], keep: list[str]) -> None:
    """Cover each hidden path with an empty tmpfs; re-expose (read-only) the `keep` paths in it."""
    mount(None, "/", None, MS_REC | MS_PRIVATE)
    kept = {path: os.open(path, os.O_PATH | os.O_CLOEXEC) for path in keep}
    for hidden in filter(os.path.isdir, paths):
        mount("hidden", hidden, "tmpfs", MS_NOSUID | MS_NODEV, "size=64k,mode=755")
        for path, fd in kept.items():
            if path.startswith(hidden.rstrip("/") + "/"):
                os.makedirs(path, exist_ok=True)
                bind(f"/proc/self/fd/{fd}", path)
        mount(None, hidden, None, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV)
    for fd in kept.values():
        os.close(fd)


def set_rlimits(config: dict[str, Any]) -> None:
    limits = {
        resource.RLIMIT_NOFILE: 1024,
        resource.RLIMIT_NPROC: int(config["nproc"]),
        resource.RLIMIT_FSIZE: int(config["tmp_mb"]) * 1024 * 1024,
        resource.RLIMIT_CORE: 0,
        resource.RLIMIT_AS: int(config["as_bytes"]),
        resource.RLIMIT_MEMLOCK: 64 * 1024,
    }
    for which, value in limits.items():
        resource.setrlimit(which, (value, value))


def drop_to_host_uid(uid: int) -> None:
    if os.geteuid() != 0:
        return  # the platform itself is unprivileged: nothing to drop
    os.setgroups([])
    os.setresgid(uid, uid, uid)
    os.setresuid(uid, uid, uid)
    prctl(PR_SET_DUMPABLE, 1)  # else /proc/self is root's and the uid map cannot be written


def enter_user_namespace(host_uid: int) -> None:
    uid, gid = os.geteuid(), os.getegid()  # host_uid, unless the platform is unprivileged
    unshare(CLONE_NEWUSER)
    for name, text in (
        ("setgroups", "deny"),
        ("uid_map", f"{SANDBOX_UID} {uid} 1"),
        ("gid_map", f"{SANDBOX_UID} {gid} 1"),
    ):
        with open(f"/proc/self/{name}", "w") as handle:
            handle.write(text)


def _last_capability() -> int:
    try:
        with open("/proc/sys/kernel/cap_last_cap") as handle:
            return int(handle.read())
    except OSError:
        return 63


LAST_CAPABILITY = _last_capability()  # read once: workers drop capabilities on each start


def drop_capabilities() -> None:
    for cap in range(LAST_CAPABILITY + 1):
        libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0)  # EPERM once CAP_SETPCAP is gone: harmless
    libc.prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0)
    header = struct.pack("Ii", 0x20080522, 0)
    data = bytes(24)
    _check(libc.syscall(SYS_CAPSET, header, data), "capset")


# --- seccomp ------------------------------------------------------------------------------

AUDIT_ARCH_X86_64 = 0xC000003E
RET_KILL_PROCESS, RET_ALLOW = 0x80000000, 0x7FFF0000
RET_ERRNO = 0x00050000
BPF_LD_W_ABS, BPF_JEQ_K, BPF_JGE_K, BPF_JSET_K, BPF_RET_K = 0x20, 0x15, 0x35, 0x45, 0x06
# Syscalls a function has no business with: the process is killed (SIGSYS) if it tries.
KILLED_SYSCALLS = {
    "ptrace": 101,
    "syslog": 103,
    "uselib": 134,
    "personality": 135,
    "ustat": 136,
    "sysfs": 139,
    "vhangup": 153,
    "pivot_root": 155,
    "_sysctl": 156,
    "adjtimex": 159,
    "chroot": 161,
    "acct": 163,
    "settimeofday": 164,
    "mount": 165,
    "umount2": 166,
    "swapon": 167,
    "swapoff": 168,
    "reboot": 169,
    "sethostname": 170,
    "setdomainname": 171,
    "iopl": 172,
    "ioperm": 173,
    "create_module": 174,
    "init_module": 175,
    "delete_module": 176,
    "get_kernel_syms": 177,
    "query_module": 178,
    "quotactl": 179,
    "nfsservctl": 180,
    "lookup_dcookie": 212,
    "clock_settime": 227,
    "kexec_load": 246,
    "add_key": 248,
    "request_key": 249,
    "keyctl": 250,
    "name_to_handle_at": 303,
    "open_by_handle_at": 304,
    "clock_adjtime": 305,
    "process_vm_readv": 310,
    "process_vm_writev": 311,
    "kcmp": 312,
    "finit_module": 313,
    "kexec_file_load": 320,
    "bpf": 321,
    "userfaultfd": 323,
    "perf_event_open": 298,
    "fanotify_init": 300,
    "open_tree": 428,
    "move_mount": 429,
    "fsopen": 430,
    "fsconfig": 431,
    "fsmount": 432,
    "fspick": 433,
    "pidfd_getfd": 438,
    "mount_setattr": 442,
}
# Namespace changes fail with EPERM (libraries probe for them; no reason to kill).
EPERM_SYSCALLS = {
    "unshare": 272,
    "setns": 308,
    "io_uring_setup": 425,  # a large kernel attack surface; libraries fall back to plain I/O
    "io_uring_enter": 426,
    "io_uring_register": 427,
}
SYS_CLONE, SYS_CLONE3 = 56, 435
CLONE_NS_MASK = (
    CLONE_NEWNS
    | CLONE_NEWUTS
    | CLONE_NEWIPC
    | CLONE_NEWUSER
    | CLONE_NEWPID
    | CLONE_NEWNET
    | CLONE_NEWCGROUP
)


def _stmt(code: int, k: int, jt: int = 0, jf: int = 0) -> bytes:
    return struct.pack("HBBI", code, jt, jf, k)


def _arg_is(index: int, values: tuple[int, ...], otherwise: int) -> list[bytes]:
    """For the syscall in the accumulator's block: allow if 64-bit argument `index` is one of
    `values`, else return `otherwise`. Terminal: every path returns."""
    low, high = 16 + 8 * index, 20 + 8 * index
    prog = [_stmt(BPF_LD_W_ABS, high), _stmt(BPF_JEQ_K, 0, 0, len(values) + 1)]
    prog.append(_stmt(BPF_LD_W_ABS, low))
    for n, value in enumerate(values):
        prog.append(_stmt(BPF_JEQ_K, value, len(values) - n, 0))
    return [*prog, _stmt(BPF_RET_K, otherwise), _stmt(BPF_RET_K, RET_ALLOW)]


def _only_worker_setup() -> list[bytes]:
    """The zygote's filter lets exactly what enter_worker needs through: unshare of the worker's
    namespaces and mounts of a new filesystem with its flags (no bind, move or remount). Each
    worker stacks worker_setup_closed() on top before any user code runs in it."""
    prog: list[bytes] = []
    for nr, flags, otherwise in (
        (EPERM_SYSCALLS["unshare"], (WORKER_NAMESPACES,), RET_ERRNO | errno.EPERM),
        (KILLED_SYSCALLS["mount"], (TMP_MOUNT_FLAGS, SHM_MOUNT_FLAGS), RET_KILL_PROCESS),
    ):
        index = 0 if nr == EPERM_SYSCALLS["unshare"] else 3
        block = _arg_is(index, flags, otherwise)
        prog += [_stmt(BPF_JEQ_K, nr, 0, len(block)), *block]
    return prog


@functools.cache
def worker_setup_closed() -> bytes:
    """Stacked on the zygote's filter in each worker once it is set up: refuses what that
    filter let through for the setup, so the two together are the strict filter. A few
    instructions: the kernel compiles each filter on install, on every worker's cold start."""
    return b"".join(
        [
            _stmt(BPF_LD_W_ABS, 4),  # seccomp_data.arch
            _stmt(BPF_JEQ_K, AUDIT_ARCH_X86_64, 1, 0),
            _stmt(BPF_RET_K, RET_KILL_PROCESS),
            _stmt(BPF_LD_W_ABS, 0),  # seccomp_data.nr
            _stmt(BPF_JEQ_K, EPERM_SYSCALLS["unshare"], 0, 1),
            _stmt(BPF_RET_K, RET_ERRNO | errno.EPERM),
            _stmt(BPF_JEQ_K, KILLED_SYSCALLS["mount"], 0, 1),
            _stmt(BPF_RET_K, RET_KILL_PROCESS),
            _stmt(BPF_RET_K, RET_ALLOW),
        ]
    )


@functools.cache
def seccomp_program(worker_setup: bool = False) -> bytes:
    """The strict filter, or (worker_setup) the zygote's, which allows what enter_worker does.
    Cached: the zygote builds both, so each worker only installs its own."""
    prog = [
        _stmt(BPF_LD_W_ABS, 4),  # seccomp_data.arch
        _stmt(BPF_JEQ_K, AUDIT_ARCH_X86_64, 1, 0),
        _stmt(BPF_RET_K, RET_KILL_PROCESS),
        _stmt(BPF_LD_W_ABS, 0),  # seccomp_data.nr
        _stmt(BPF_JGE_K, 0x40000000, 0, 1),  # the x32 ABI
        _stmt(BPF_RET_K, RET_KILL_PROCESS),
    ]
    if worker_setup:
        prog += _only_worker_setup()
    for nr in KILLED_SYSCALLS.values():
        prog += [_stmt(BPF_JEQ_K, nr, 0, 1), _stmt(BPF_RET_K, RET_KILL_PROCESS)]
    for nr in EPERM_SYSCALLS.values():
        prog += [_stmt(BPF_JEQ_K, nr, 0, 1), _stmt(BPF_RET_K, RET_ERRNO | errno.EPERM)]
    # clone3 hides its flags in memory: ENOSYS makes libc fall back to clone, checked below.
    prog += [_stmt(BPF_JEQ_K, SYS_CLONE3, 0, 1), _stmt(BPF_RET_K, RET_ERRNO | errno.ENOSYS)]
    prog += [
        _stmt(BPF_JEQ_K, SYS_CLONE, 0, 3),
        _stmt(BPF_LD_W_ABS, 16),  # low half of args[0]: the clone flags
        _stmt(BPF_JSET_K, CLONE_NS_MASK, 0, 1),
        _stmt(BPF_RET_K, RET_ERRNO | errno.EPERM),
        _stmt(BPF_RET_K, RET_ALLOW),
    ]
    return b"".join(prog)


def install_seccomp(program: bytes | None = None) -> None:
    """Install `program` (the strict filter unless given) on this thread and its descendants."""
    if os.uname().machine != "x86_64":
        raise JailError(f"the seccomp filter is written for x86_64, not {os.uname().machine}")
    program = program or seccomp_program()
    buffer = ctypes.create_string_buffer(program, len(program))
    fprog = ctypes.create_string_buffer(
        struct.pack("HxxxxxxP", len(program) // 8, ctypes.addressof(buffer))
    )
    prctl(PR_SET_NO_NEW_PRIVS, 1)
    _check(libc.prctl(PR_SET_SECCOMP, 2, ctypes.addressof(fprog), 0, 0), "seccomp filter")


# --- probe ----------------------------------------------------------------------------------


def _attempt(step: Any) -> str | None:
    """Run step() in a child process; None if it worked, else why not."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read_end)
        try:
            step()
            message = b""
        except Exception as exc:  # report anything: this is a probe
            message = str(exc).encode() or type(exc).__name__.encode()
        os.write(write_end, message or b"ok")
        os._exit(0)
    os.close(write_end)
    answer = os.read(read_end, 4096)
    os.close(read_end)
    os.waitpid(pid, 0)
    return None if answer == b"ok" else (answer.decode(errors="replace") or "the probe died")


def _in_pid_child(step: Any) -> Any:
    def run() -> None:
        unshare(CLONE_NEWNS | CLONE_NEWPID)
        why = _attempt(step)
        if why:
            raise JailError(why)

    return run


def _root_then_user(config: dict[str, Any]) -> None:
    build_root(config)
    drop_to_host_uid(1_999_999)
    enter_user_namespace(1_999_999)


def _worker_tmp(config: dict[str, Any]) -> None:
    _root_then_user(config)
    drop_capabilities()
    prctl(PR_SET_NO_NEW_PRIVS, 1)
    install_seccomp(seccomp_program(worker_setup=True))
    why = _attempt(lambda: private_tmp(1))
    if why:
        raise JailError(why)


def _landlock() -> None:
    prctl(PR_SET_NO_NEW_PRIVS, 1)
    landlock_scope_self()


def probe(root_mount: str) -> dict[str, dict[str, Any]]:
    config = {
        "root_mount": root_mount,
        "python_prefix": os.path.realpath(sys.base_prefix),
        "code_dir": "/",
        "layer_dir": None,
        "tmp_mb": 1,
    }
    steps: dict[str, Any] = {
        name: (lambda f=flag: unshare(f)) for name, flag in NAMESPACE_FLAGS.items()
    }
    steps["rootfs"] = _in_pid_child(lambda: build_root(config))
    steps["user"] = _in_pid_child(lambda: _root_then_user(config))
    steps["worker_tmp"] = _in_pid_child(lambda: _worker_tmp(config))
    steps["landlock"] = _landlock
    steps["seccomp"] = install_seccomp
    steps["rlimits"] = lambda: resource.setrlimit(resource.RLIMIT_NPROC, (4096, 4096))
    result = {}
    for name, step in steps.items():
        why = _attempt(step)
        result[name] = {"active": why is None, **({"reason": why} if why else {})}
    return result


if __name__ == "__main__" and len(sys.argv) == 3 and sys.argv[1] == "probe":
    print(json.dumps(probe(sys.argv[2])))
