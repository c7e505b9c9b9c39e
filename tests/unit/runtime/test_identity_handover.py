"""The invocation's identity in the worker (bootstrap.py, loaded by path as the zygote loads it):
on the context and in the environment while the handler runs, gone when it returns, absent for
an invocation that was given none. Each run is in a forked child (it sets a CPU rlimit)."""

from __future__ import annotations

import faulthandler
import importlib.util
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

BOOTSTRAP = Path(__file__).resolve().parents[3] / "src" / "ondo" / "runtime" / "bootstrap.py"
CONFIG = {"namespace": "default", "name": "f", "version": 1, "memory_mb": 128, "timeout_s": 5}
NAMES = ("ONDO_TOKEN", "ONDO_API_URL")


def _in_child(action: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """action() in a forked child; what it returned, as JSON through a pipe."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        faulthandler.disable()
        try:
            os.write(write_end, json.dumps(action()).encode())
        finally:
            os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        data = pipe.read()
    os.waitpid(pid, 0)
    found: dict[str, Any] = json.loads(data)
    return found


def _runs() -> dict[str, Any]:
    spec = importlib.util.spec_from_file_location("sandboxed_bootstrap", BOOTSTRAP)
    assert spec is not None and spec.loader is not None
    bootstrap = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bootstrap)
    for name in NAMES:
        os.environ.pop(name, None)
    seen: list[Any] = []

    def handler(event: Any, context: Any) -> None:
        seen.append([context.ondo_token, context.ondo_api_url, *map(os.environ.get, NAMES)])

    given = {"token": "ondo_fn.abc.def", "api_url": "http://127.0.0.1:8080"}
    first, _ = bootstrap.run_invocation(handler, CONFIG, {"id": "1", "ondo": given}, b"{}")
    after = [os.environ.get(name) for name in NAMES]
    second, _ = bootstrap.run_invocation(handler, CONFIG, {"id": "2"}, b"{}")
    return {"seen": seen, "after": after, "status": [first["status"], second["status"]]}


def test_the_identity_is_there_while_the_handler_runs_and_gone_after() -> None:
    found = _in_child(_runs)
    token, url = "ondo_fn.abc.def", "http://127.0.0.1:8080"
    assert found["status"] == ["succeeded", "succeeded"]
    assert found["seen"] == [[token, url, token, url], [None, None, None, None]]
    assert found["after"] == [None, None]
