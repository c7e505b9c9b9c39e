"""Zygote and worker: the code that runs INSIDE the sandbox. Imports only the standard library.

Started by the platform as ``python -I -S bootstrap.py <control fd>`` (config comes on that fd):

* the launcher process enters the namespaces (see jail.py) and forks the zygote, then only waits;
* the zygote (pid 1 of the function's pid namespace) builds its root, drops privileges, installs
  the seccomp filter, imports the handler once and then forks one worker per "fork" command;
* a worker talks to the platform directly over the socket it was given and runs one invocation
  at a time until its socket closes.

Control socket (SOCK_SEQPACKET, one JSON object per message):
  zygote -> platform  {"op": "ready", "layers": {...}} | {"op": "import_failed", "error": "..."}
                      {"op": "exit", "slot": n, "status": wait status} | {"op": "fork_failed", ...}
  platform -> zygote  {"op": "fork", "slot": n} with SCM_RIGHTS [worker socket, log memfd]
Worker socket (SOCK_STREAM): frames of <u32 header length><u32 body length><json header><body>.
"""

from __future__ import annotations

import _thread
import array
import contextlib
import ctypes
import gc
import importlib
import importlib.util
import io
import json
import math
import mmap
import os
import resource
import select
import signal
import socket
import struct
import sys
import threading
import time
import traceback
from typing import Any

FRAME = struct.Struct("<II")
LOG_HEADER = struct.Struct("<QI")  # total bytes written, bytes stored
MAX_RESULT_BYTES = 6 * 1024 * 1024
MAX_HEADER_BYTES = 1024 * 1024
IMPORT_LOG_BYTES = 16 * 1024
CONFIG_MAX_BYTES = 4 * 1024 * 1024
HOST_DETAILS = (
    "code_dir", "layer_dir", "hidden_paths", "cgroup_dirs", "root_mount", "jail_path",
    "python_prefix", "host_uid",
)  # fmt: skip


# --- bounded log capture ------------------------------------------------------------------


class LogSink:
    """Bounded capture shared by sys.stdout, sys.stderr and the fd 1/2 drainer."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.buffer: Any = bytearray(IMPORT_LOG_BYTES + LOG_HEADER.size)
        self.capacity = IMPORT_LOG_BYTES
        self.total = 0
        self.stored = 0

    def attach(self, buffer: Any, capacity: int) -> None:
        self.buffer, self.capacity = buffer, capacity
        self.reset()

    def reset(self) -> None:
        self.total = self.stored = 0
        LOG_HEADER.pack_into(self.buffer, 0, 0, 0)

    def write(self, data: bytes) -> None:
        with self.lock:
            self._append(data)

    def _append(self, data: bytes) -> None:
        take = min(len(data), self.capacity - self.stored)
        if take > 0:
            start = LOG_HEADER.size + self.stored
            self.buffer[start : start + take] = data[:take]
            self.stored += take
        self.total += len(data)
        LOG_HEADER.pack_into(self.buffer, 0, self.total, self.stored)

    def text(self) -> str:
        data = bytes(self.buffer[LOG_HEADER.size : LOG_HEADER.size + self.stored])
        return data.decode("utf-8", "replace")


SINK = LogSink()


class _SinkRaw(io.RawIOBase):
    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        chunk = bytes(data)
        SINK.write(chunk)
        return len(chunk)


def _capture_python_streams() -> None:
    for name in ("stdout", "stderr"):
        stream = io.TextIOWrapper(
            _SinkRaw(),  # type: ignore[type-var]  # a raw writer is all TextIOWrapper needs
            encoding="utf-8",
            errors="backslashreplace",
            write_through=True,
        )
        setattr(sys, name, stream)


class FdDrainer:
    """Captures what C code and subprocesses write to fd 1 and 2 (a pipe read by a thread)."""

    def __init__(self) -> None:
        read_end, write_end = os.pipe()
        os.dup2(write_end, 1)
        os.dup2(write_end, 2)
        os.close(write_end)
        os.set_blocking(read_end, False)
        self.fd = read_end

    def start(self) -> None:
        # No waiting for the thread to run (Thread.start would): the pipe buffers meanwhile.
        _thread.start_new_thread(self._run, ())

    def _run(self) -> None:
        poller = select.poll()
        poller.register(self.fd, select.POLLIN)
        while True:
            poller.poll()
            if not self.drain():
                return

    def drain(self) -> bool:
        """Move what is in the pipe into the sink; False once the pipe is closed."""
        with SINK.lock:
            while True:
                try:
                    chunk = os.read(self.fd, 65536)
                except BlockingIOError:
                    return True
                if not chunk:
                    return False
                SINK._append(chunk)


# --- the Lambda context ----------------------------------------------------------------


class LambdaContext:
    """What AWS Lambda passes as `context`, so existing handlers run unchanged."""

    def __init__(self, config: dict[str, Any], request_id: str, deadline: float) -> None:
        ns, name, version = config["namespace"], config["name"], str(config["version"])
        self.aws_request_id = request_id
        self.function_name = name
        self.function_version = version
        # A string, as AWS's Python runtime gives it (it reads AWS_LAMBDA_FUNCTION_MEMORY_SIZE).
        self.memory_limit_in_mb = str(config["memory_mb"])
        self.invoked_function_arn = f"arn:ondo:lambda:local:{ns}:function:{name}:{version}"
        self.log_group_name = f"/ondo/{ns}/{name}"
        self.log_stream_name = str(config.get("log_stream", ""))
        self.identity = None
        self.client_context = None
        # ondo's: this invocation's own token and the API's URL, when the function declared
        # `permissions` (None otherwise); never the zygote's, never the next invocation's.
        self.ondo_token: str | None = None
        self.ondo_api_url: str | None = None
        self._deadline = deadline

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


# --- frames ------------------------------------------------------------------------------


class FrameReader:
    """Reads frames with as few recv calls as possible (usually one per request)."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.pending = bytearray()

    def _fill(self, size: int) -> bool:
        while len(self.pending) < size:
            chunk = self.sock.recv(max(65536, size - len(self.pending)))
            if not chunk:
                return False
            self.pending += chunk
        return True

    def read(self) -> tuple[dict[str, Any], bytes] | None:
        if not self._fill(FRAME.size):
            return None
        head_len, body_len = FRAME.unpack_from(self.pending)
        end = FRAME.size + head_len + body_len
        if not self._fill(end):
            return None
        header = json.loads(self.pending[FRAME.size : FRAME.size + head_len])
        body = bytes(self.pending[FRAME.size + head_len : end])
        del self.pending[:end]
        return header, body


def send_frame(sock: socket.socket, header: dict[str, Any], body: bytes = b"") -> None:
    head = json.dumps(header, separators=(",", ":")).encode()
    sock.sendall(FRAME.pack(len(head), len(body)) + head + body)


# --- invocation --------------------------------------------------------------------------


IMPORT_MACHINERY = os.path.dirname(importlib.__file__)


def is_user_frame(frame: traceback.FrameSummary) -> bool:
    """Frames of the function's code (and its libraries), not of this file or of importlib."""
    name = frame.filename
    return not (
        name == __file__ or name.startswith("<frozen ") or name.startswith(IMPORT_MACHINERY)
    )


def user_traceback(exc: BaseException) -> str:
    """The formatted exception with only the user's frames, in each chained exception too."""
    top = traceback.TracebackException.from_exception(exc)
    todo, seen = [top], set()
    while todo:
        part = todo.pop()
        if id(part) in seen:
            continue
        seen.add(id(part))
        part.stack = traceback.StackSummary.from_list([f for f in part.stack if is_user_frame(f)])
        todo += [p for p in (part.__cause__, part.__context__) if p is not None]
    return "".join(top.format())


def lambda_error(exc: BaseException, error_type: str | None = None) -> dict[str, Any]:
    frames = traceback.extract_tb(exc.__traceback__)
    user_frames = [f for f in frames if is_user_frame(f)]
    return {
        "errorMessage": str(exc),
        "errorType": error_type or type(exc).__name__,
        "stackTrace": traceback.format_list(user_frames),
    }


def run_invocation(
    handler: Any, config: dict[str, Any], header: dict[str, Any], body: bytes
) -> tuple[dict[str, Any], bytes]:
    timeout = float(config["timeout_s"])
    started = time.monotonic()
    context = LambdaContext(config, str(header["id"]), started + timeout)
    reply: dict[str, Any] = {"id": header["id"], "status": "failed"}
    result = b""
    caller = header.get("ondo")
    if caller:
        hand_identity(context, caller)
    try:
        event = json.loads(body) if body else None
        value = handler(event, context)
    except MemoryError as exc:
        reply["error"] = lambda_error(exc, "Runtime.OutOfMemory")
        reply["fatal"] = "memory"
    except Exception as exc:
        reply["error"] = lambda_error(exc)
    else:
        result, error = encode_result(value)
        if error is None:
            reply["status"] = "succeeded"
        else:
            reply["error"], result = error, b""
    finally:
        if caller:
            take_identity_back()
    reply["duration_ms"] = (time.monotonic() - started) * 1000.0
    usage = resource.getrusage(resource.RUSAGE_SELF)
    reply["max_rss_kb"] = usage.ru_maxrss
    CPU_LIMIT.rearm(usage.ru_utime + usage.ru_stime, timeout)
    return reply, result


IDENTITY_ENV = ("ONDO_TOKEN", "ONDO_API_URL")


def hand_identity(context: LambdaContext, caller: dict[str, Any]) -> None:
    """The invocation's own token and the API's URL: on the context, and in the environment
    while it runs (so a client library, or a subprocess, finds them there too)."""
    context.ondo_token, context.ondo_api_url = str(caller["token"]), str(caller["api_url"])
    os.environ.update(zip(IDENTITY_ENV, (context.ondo_token, context.ondo_api_url), strict=True))


def take_identity_back() -> None:
    """Nothing of this invocation's identity is left for the next one the worker runs."""
    for name in IDENTITY_ENV:
        os.environ.pop(name, None)


def encode_result(value: Any) -> tuple[bytes, dict[str, Any] | None]:
    try:
        # Not ASCII-escaped: a str that is not Unicode (a lone surrogate) fails here, as the
        # handler's error, instead of reaching the platform as an escape it cannot show.
        text = json.dumps(
            value, separators=(",", ":"), allow_nan=False, ensure_ascii=False
        ).encode()
    except (TypeError, ValueError, RecursionError) as exc:  # UnicodeEncodeError is a ValueError
        return b"", lambda_error(exc, "Runtime.ResultNotSerializable")
    if len(text) > MAX_RESULT_BYTES:
        message = (
            f"Response payload size ({len(text)} bytes) exceeded the maximum allowed "
            f"payload size ({MAX_RESULT_BYTES} bytes)."
        )
        return b"", {
            "errorMessage": message,
            "errorType": "Function.ResponseSizeTooLarge",
            "stackTrace": [],
        }
    return text, None


class CpuLimit:
    """RLIMIT_CPU as a backstop (the platform kills on wall-clock time): always at least one
    timeout of CPU ahead of what the worker has used, re-armed only when it gets close."""

    def __init__(self) -> None:
        self.soft = 0

    def rearm(self, used: float, timeout: float) -> None:
        if self.soft - used > timeout + 1:
            return
        _, hard = resource.getrlimit(resource.RLIMIT_CPU)
        soft = math.ceil(used + 2 * timeout) + 2
        if hard != resource.RLIM_INFINITY:
            soft = min(soft, hard)
        resource.setrlimit(resource.RLIMIT_CPU, (soft, hard))
        self.soft = soft


CPU_LIMIT = CpuLimit()


# --- worker ------------------------------------------------------------------------------


def worker_main(
    sock: socket.socket, log_fd: int, handler: Any, config: dict[str, Any], jail: Any
) -> None:
    # Hello first: the platform moves us into our cgroups while we set up the rest.
    creds = struct.pack("3i", os.getpid(), os.getuid(), os.getgid())
    sock.sendmsg([b"H"], [(socket.SOL_SOCKET, socket.SCM_CREDENTIALS, creds)])
    _attach_log_area(log_fd, config)
    if jail is not None:
        _isolate(jail, config)  # still single-threaded, as unshare(CLONE_NEWUSER) requires
    drainer = FdDrainer()
    drainer.start()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    CPU_LIMIT.rearm(usage.ru_utime + usage.ru_stime, float(config["timeout_s"]))
    frames = FrameReader(sock)
    while True:
        frame = frames.read()
        if frame is None:
            return
        header, body = frame
        SINK.reset()
        reply, result = run_invocation(handler, config, header, body)
        kill_leftovers()
        for stream in (sys.stdout, sys.stderr):
            stream.flush()
        drainer.drain()
        send_frame(sock, reply, result)
        if reply.get("fatal"):
            os._exit(137)


def _attach_log_area(log_fd: int, config: dict[str, Any]) -> None:
    """Output goes to the shared log area; each worker is its own Lambda log stream."""
    stream = f"{time.strftime('%Y/%m/%d')}/[{config['version']}]{os.urandom(8).hex()}"
    config["log_stream"] = os.environ["AWS_LAMBDA_LOG_STREAM_NAME"] = stream
    size = os.fstat(log_fd).st_size
    log_map = mmap.mmap(log_fd, size)
    os.close(log_fd)
    SINK.attach(log_map, size - LOG_HEADER.size)


def _isolate(jail: Any, config: dict[str, Any]) -> None:
    try:
        applied, tmp_mb = config.get("applied", {}), int(config.get("tmp_mb", 64))
        jail.enter_worker(applied, tmp_mb, bool(config.get("tmp_from_import", True)))
    except (OSError, jail.JailError) as exc:  # reported in the first invocation's logs
        SINK.write(f"ondo: the worker's sandbox could not be entered: {exc}\n".encode())
        os._exit(70)


def kill_leftovers() -> None:
    """Nothing an invocation started outlives it. The worker is the subreaper of everything it
    starts, so each leftover is, or becomes once its parent dies, a child of the worker: kill
    the children, reap, repeat. With no children this is one waitpid call."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid:
            continue  # reaped one; there may be more
        for child in _child_pids():
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, signal.SIGKILL)
        try:
            os.waitpid(-1, 0)
        except ChildProcessError:
            return


def _child_pids() -> list[int]:
    me = str(os.getpid())
    children = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as handle:
                stat = handle.read()
        except OSError:
            continue
        if stat[stat.rfind(b")") + 2 :].split()[1].decode() == me:  # state, then ppid
            children.append(int(entry))
    return children


def start_worker(
    sock: socket.socket, log_fd: int, handler: Any, config: dict[str, Any], jail: Any
) -> None:
    """In the freshly forked child: never return into the zygote's loop."""
    code = 0
    try:
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        worker_main(sock, log_fd, handler, config, jail)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except BaseException:
        traceback.print_exc()
        code = 70
    os._exit(code)


# --- zygote ------------------------------------------------------------------------------


class Zygote:
    def __init__(self, ctl: socket.socket, config: dict[str, Any], handler: Any, jail: Any) -> None:
        self.ctl = ctl
        self.config = config
        self.handler = handler
        self.jail = jail  # each worker enters its own sandbox with it (jail.enter_worker)
        self.slots: dict[int, int] = {}  # pid -> slot
        self.wake_r, self.wake_w = os.pipe()
        os.set_blocking(self.wake_r, False)
        os.set_blocking(self.wake_w, False)
        signal.signal(signal.SIGCHLD, lambda *_: None)
        signal.set_wakeup_fd(self.wake_w)

    def send(self, message: dict[str, Any]) -> None:
        self.ctl.send(json.dumps(message).encode())

    def serve(self) -> None:
        while True:
            ready, _, _ = select.select([self.ctl.fileno(), self.wake_r], [], [])
            if self.wake_r in ready:
                self._drain_wakeups()
                self.reap()
            if self.ctl.fileno() in ready and not self._command():
                return

    def _drain_wakeups(self) -> None:
        try:
            while os.read(self.wake_r, 4096):
                pass
        except BlockingIOError:
            pass

    def _command(self) -> bool:
        fds = array.array("i")
        data, ancdata, _, _ = self.ctl.recvmsg(65536, socket.CMSG_SPACE(8 * fds.itemsize))
        for level, kind, payload in ancdata:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                fds.frombytes(payload[: len(payload) - len(payload) % fds.itemsize])
        if not data:
            return False
        message = json.loads(data)
        if message.get("op") == "fork" and len(fds) == 2:
            self.fork(int(message["slot"]), fds[0], fds[1])
        else:
            for fd in fds:
                os.close(fd)
        return True

    def fork(self, slot: int, sock_fd: int, log_fd: int) -> None:
        try:
            pid = os.fork()
        except OSError as exc:
            os.close(sock_fd)
            os.close(log_fd)
            self.send({"op": "fork_failed", "slot": slot, "error": str(exc)})
            return
        if pid == 0:
            self.ctl.close()
            os.close(self.wake_r)
            signal.set_wakeup_fd(-1)
            os.close(self.wake_w)
            start_worker(
                socket.socket(fileno=sock_fd), log_fd, self.handler, self.config, self.jail
            )
        os.close(sock_fd)
        os.close(log_fd)
        self.slots[pid] = slot

    def reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            slot = self.slots.pop(pid, None)
            if slot is not None:
                self.send({"op": "exit", "slot": slot, "status": status})


def warm_up(config: dict[str, Any]) -> None:
    """Run the invocation machinery once here, so each forked worker starts with it ready."""
    context = LambdaContext(config, "warm-up", time.monotonic() + 1.0)
    context.get_remaining_time_in_millis()
    encode_result(json.loads(b'{"warm": [1, 2.5, "up", null, true]}'))
    lambda_error(ValueError("warm-up"))
    resource.getrusage(resource.RUSAGE_SELF)
    json.dumps({"status": "succeeded", "duration_ms": 0.5}, separators=(",", ":"))
    FRAME.pack(1, 2)


def load_handler(spec: str) -> Any:
    module_name, _, attr = spec.rpartition(".")
    if not module_name or not attr:
        raise ValueError(f"handler {spec!r} must look like 'module.function'")
    module = importlib.import_module(module_name)
    if not hasattr(module, attr):
        raise AttributeError(f"module {module_name!r} has no attribute {attr!r}")
    handler = getattr(module, attr)
    if not callable(handler):
        raise TypeError(f"{spec} is a {type(handler).__name__}, not a callable")
    return handler


def prepare_interpreter(config: dict[str, Any]) -> None:
    task_root = config["task_root"]
    layer = config.get("layer_root")
    stdlib = [p for p in sys.path if p and not p.endswith("bootstrap.py")]
    sys.path[:] = [task_root, *([layer] if layer else []), *stdlib]
    os.environ.clear()
    os.environ.update(config["environment"])
    os.chdir(task_root)
    importlib.invalidate_caches()
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    os.close(null)
    _capture_python_streams()


def zygote_main(ctl: socket.socket, config: dict[str, Any], jail: Any) -> None:
    layers = jail.enter_inner(config) if jail is not None else {}
    config["applied"] = layers
    for host_detail in HOST_DETAILS:  # user code is about to run: it need not know these
        config.pop(host_detail, None)
    prepare_interpreter(config)
    try:
        handler = load_handler(config["handler"])
    except BaseException as exc:  # user code ran: anything may come out of it
        text = user_traceback(exc)
        output = SINK.text()
        if output:
            text += f"\nOutput during import:\n{output}"
        ctl.send(json.dumps({"op": "import_failed", "error": text[-60000:]}).encode())
        return
    if layers.get("worker_tmp"):
        config["tmp_from_import"] = bool(os.listdir("/tmp"))  # else workers skip the overlay
    zygote = Zygote(ctl, config, handler, jail)
    warm_up(config)
    gc.freeze()  # workers share these objects without the collector dirtying their pages
    zygote.send({"op": "ready", "layers": layers, "pid": os.getpid()})
    zygote.serve()


def load_jail(path: str) -> Any:
    spec = importlib.util.spec_from_file_location("ondo_jail", path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load the sandbox module at {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main() -> None:
    ctl = socket.socket(fileno=int(sys.argv[1]))
    config = json.loads(ctl.recv(CONFIG_MAX_BYTES))  # not argv: /proc/*/cmdline is world-readable
    jail = load_jail(config["jail_path"]) if config.get("sandbox") else None
    if jail is not None:
        jail.enter_outer(config)
    pid = os.fork()
    if pid == 0:
        try:
            if jail is not None:
                jail.die_with_parent()
            zygote_main(ctl, config, jail)
        except BaseException:
            traceback.print_exc(file=sys.__stderr__)
            os._exit(70)
        os._exit(0)
    ctl.close()
    _, status = os.waitpid(pid, 0)
    code = os.waitstatus_to_exitcode(status)
    os._exit(code if code >= 0 else 128 - code)


if __name__ == "__main__":
    _ = ctypes  # loaded early: the sandbox may hide the files later imports need
    main()
