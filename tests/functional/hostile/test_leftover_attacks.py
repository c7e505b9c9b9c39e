"""Nothing an invocation starts outlives it, and nothing it leaves in /tmp burdens later ones."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.functional.hostile.harness import (
    function_processes,
    healthy_spec,
    while_healthy_answers,
)
from tests.functional.runtime.helpers import (
    invoke,
    make_spec,
    result_of,
    run,
    started,
    write_function,
)

DETACHER = """
import subprocess
def handler(event, context):
    subprocess.Popen(
        ["sh", "-c", "(while :; do echo beat >> /tmp/beat; sleep 0.2; done) &"],
        start_new_session=True,
    ).wait()  # the shell exits at once; its loop is an orphan, detached from the handler
    with open("/proc/self/stat") as handle:
        worker = int(handle.read().split()[0])
    if event["end"] == "raise":
        raise RuntimeError("started a loop and failed")
    return worker
"""


@pytest.mark.parametrize("end", ["return", "raise"])
def test_a_detached_loop_does_not_outlive_its_invocation(tmp_path: Path, end: str) -> None:
    spec = make_spec(write_function(tmp_path, "detacher", DETACHER), timeout_s=10)
    healthy = healthy_spec(tmp_path)

    async def scenario() -> None:
        async with started() as runtime:
            attack = invoke(runtime, spec, {"end": end})
            outcome = await while_healthy_answers(runtime, healthy, attack)
            if end == "return":
                result_of(outcome)
            else:
                assert outcome.status == "failed", outcome
                assert outcome.error is not None
                assert outcome.error["errorType"] == "RuntimeError"
            zygote, processes = function_processes(runtime, spec)
            assert len(processes - {zygote}) == 1, processes  # the idle worker, nothing else
            again = await invoke(runtime, spec, {"end": "return"})  # the same, warm worker
            assert again.cold is False and again.status == "succeeded"

    run(scenario)


TMP_FILLER = """
import os, signal
def handler(event, context):
    if event["fill_mb"]:
        with open("/tmp/fill", "wb") as handle:
            for _ in range(event["fill_mb"]):
                handle.write(b"x" * (1024 * 1024))
        os.kill(os.getpid(), signal.SIGKILL)
    hoard = b"y" * (event["use_mb"] * 1024 * 1024)  # touched, so charged to the worker
    return {"used": len(hoard) // (1024 * 1024), "tmp": sorted(os.listdir("/tmp"))}
"""


@pytest.mark.parametrize("private_tmp", [True, False], ids=["private_tmp", "shared_tmp"])
def test_a_killed_workers_tmp_files_do_not_stay_charged_to_its_slot(
    tmp_path: Path, private_tmp: bool
) -> None:
    code = write_function(tmp_path, "filler", TMP_FILLER)
    spec = make_spec(code, memory_mb=128, concurrency=1, timeout_s=20)
    healthy = healthy_spec(tmp_path)
    # Without worker_tmp (a machine without overlayfs in user namespaces) the file stays in the
    # version's /tmp, but the next worker gets a memory cgroup that does not carry it.
    disabled = () if private_tmp else ("worker_tmp",)

    async def scenario() -> None:
        async with started(disabled_layers=disabled) as runtime:
            attack = invoke(runtime, spec, {"fill_mb": 60, "use_mb": 0})
            filled = await while_healthy_answers(runtime, healthy, attack)
            assert filled.status == "killed" and filled.error is not None
            assert filled.error["signal"] == "SIGKILL"
            for _ in range(2):  # the next workers reuse the slot's cgroups
                after = await invoke(runtime, spec, {"fill_mb": 0, "use_mb": 90})
                assert result_of(after) == {"used": 90, "tmp": [] if private_tmp else ["fill"]}

    run(scenario)
