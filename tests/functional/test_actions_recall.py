"""An attempt that finished just before a crash is recalled, not run again (in-process platform,
real runtime): the restarted queue finds the invocation by the attempt's request id."""

from __future__ import annotations

import asyncio
from pathlib import Path

import yaml

from ondo.actions.base import ActionRequest, attempt_id
from ondo.actions.model import Action
from ondo.api.routes.deployments import deploy_manifest
from ondo.config import Config
from ondo.deploy.manifest import read_manifest
from ondo.platform import Platform
from tests.unit.actions.conftest import job_of, queue_of, until

ONCE = """
import time


def handler(event, context):
    return {"ran_at": time.time(), "event": event["id"]}
"""


def write_app(root: Path) -> Path:
    (root / "once").mkdir(parents=True)
    (root / "once" / "app.py").write_text(ONCE)
    manifest = {"name": "recall", "functions": {"once": {"code": "./once"}}}
    (root / "ondo.yaml").write_text(yaml.safe_dump(manifest))
    return root


def request(key: str) -> ActionRequest:
    return ActionRequest(
        key=key,
        namespace="default",
        rule="r",
        action_index=0,
        action=Action(kind="invoke", target="once"),
        event={"specversion": "1.0", "id": f"ev-{key}", "source": "tests", "type": "t"},
        enforcement_id=f"enf-{key}",
    )


def test_a_finished_attempt_is_recalled_after_a_crash_and_an_unfinished_one_runs(
    tmp_path: Path,
) -> None:
    done_key, todo_key = "d" * 40, "t" * 40

    async def scenario() -> None:
        platform = Platform(Config(data_dir=tmp_path / "data"))
        await platform.start()
        try:
            await deploy_manifest(
                platform.deploy_targets,
                read_manifest(write_app(tmp_path / "app")),
                "default",
                False,
            )
            await platform.actions.stop()  # from here on, jobs are only what we make of them
            queue = platform.actions
            async with platform.store.transaction() as uow:  # as the rules engine does
                await queue.enqueue_in(uow, [request(done_key), request(todo_key)])
            claimed = await queue.jobs.claim(platform.clock.now(), 2)  # both running: the crash
            assert {j.attempt_seq for j in claimed} == {1}
            # The first job's attempt ran to the end before the crash; its outcome was not stored.
            before = await platform.functions.invoke(
                "once", b'{"id": "ev-done"}', request_id=attempt_id(done_key, 1)
            )
            assert before.status == "succeeded"

            restarted = queue_of(platform, queue.settings)
            await restarted.start()

            async def both_succeeded() -> bool:
                return (await restarted.counts())["succeeded"] == 2

            await until(both_succeeded)
            await restarted.stop()

            done = await job_of(restarted.jobs, done_key)
            assert done is not None and done.invocation_ids == [before.id]
            after = await platform.functions.invocation(before.id)
            assert after is not None and after.finished_at == before.finished_at  # not re-run
            assert after.result == before.result
            todo = await job_of(restarted.jobs, todo_key)
            assert todo is not None and todo.invocation_ids == [attempt_id(todo_key, 1)]
            ran = await platform.functions.invocation(attempt_id(todo_key, 1))
            assert ran is not None and ran.status == "succeeded" and ran.trigger == "rule:r"
        finally:
            await platform.stop()

    asyncio.run(scenario())
