"""Two processes on one PostgreSQL store: a deploy, rollback or delete made through one
FunctionService is seen by the other's (its current versions and runtime specs follow the
store's change feed), and the other then invokes what was deployed."""

from __future__ import annotations

import asyncio
import textwrap
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from ondo.backends.store import Store, open_store
from ondo.clock import WallClock
from ondo.errors import NotFound
from ondo.functions.bundle import CodeStore
from ondo.functions.model import FunctionConfig
from ondo.functions.service import FunctionService
from ondo.metrics import Metrics
from ondo.runtime import SandboxOptions, ZygoteRuntime
from ondo.security.secretbox import new_key_text, parse_keys
from ondo.security.secrets import Secrets
from tests.services import require_postgres, unique_cluster
from tests.unit.store.conftest import drop_schema

SOURCE = """
def handler(event, context):
    return {"says": %r}
"""


async def until(predicate: Callable[[], bool], timeout: float = 30.0) -> None:
    """Wait for the other process to hear of a change (bounded; not a timing assertion)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("the change never reached the other process")
        await asyncio.sleep(0.005)


def code(root: Path, says: str) -> Path:
    code_dir = root / says
    code_dir.mkdir(parents=True)
    (code_dir / "app.py").write_text(textwrap.dedent(SOURCE % says))
    return code_dir


@asynccontextmanager
async def two_processes(tmp_path: Path) -> AsyncIterator[tuple[FunctionService, FunctionService]]:
    """Two services, each on its own view (pool, LISTEN connection) of one PostgreSQL schema and
    with its own runtime; they share the code store, as two nodes would share deployed code."""
    url, cluster = require_postgres(), unique_cluster()
    stores: list[Store] = []
    services: list[FunctionService] = []
    keys = parse_keys(new_key_text(), "test")  # every node holds the same key
    runtimes: list[ZygoteRuntime] = []
    try:
        for _ in range(2):
            runtime = ZygoteRuntime(sandbox=SandboxOptions(), spare_workers=0)
            runtimes.append(runtime)
            await runtime.start()
            store = open_store(url, cluster=cluster)
            await store.open()
            stores.append(store)
            secrets = Secrets(store, lambda: keys, time.time)
            service = FunctionService(
                store,
                runtime,
                CodeStore(tmp_path / "code"),
                tmp_path / "layers",
                WallClock(),
                Metrics(),
                secrets,
            )
            secrets.on_change(service.secret_changed)
            secrets.watch()
            await service.start()
            services.append(service)
        yield services[0], services[1]
    finally:
        for service in services:
            await service.drain(1.0)
            service.close()
        for store in stores:
            await store.close()
        for runtime in runtimes:
            await runtime.close(grace_s=1.0)
        await drop_schema(url, cluster)


def zygotes(service: FunctionService) -> set[str]:
    """The versions whose zygote the service's runtime holds ("default/hello:1")."""
    return set(service.runtime.status()["functions"])


async def says(service: FunctionService) -> object:
    record = await service.invoke("hello", b"{}")
    assert record.status == "succeeded", record
    return record.result


def test_a_deploy_through_one_process_is_seen_by_the_other(tmp_path: Path) -> None:
    async def main() -> None:
        async with two_processes(tmp_path) as (one, other):
            first = one.code.add(code(tmp_path / "src", "one"))
            second = one.code.add(code(tmp_path / "src", "two"))
            with pytest.raises(NotFound):
                other.get("hello")

            await one.publish("hello", FunctionConfig(), first, None)
            await until(lambda: other.exists("hello"))
            assert await says(other) == {"says": "one"}

            await one.publish("hello", FunctionConfig(), second, None)
            await until(lambda: other.get("hello").version == 2)
            # the other's zygote of version 1 goes, as the deploying process's did
            await until(lambda: "default/hello:1" not in zygotes(other))
            assert await says(other) == {"says": "two"}

            await one.rollback("hello", 1)
            await until(lambda: other.get("hello").version == 1)
            assert await says(other) == {"says": "one"}

            await one.delete("hello")
            await until(lambda: not other.exists("hello"))
            await until(lambda: zygotes(other) == set())
            with pytest.raises(NotFound):
                await other.invoke("hello", b"{}")

    asyncio.run(main())


def test_records_written_by_one_process_are_read_by_the_other(tmp_path: Path) -> None:
    async def main() -> None:
        async with two_processes(tmp_path) as (one, other):
            await one.publish("hello", FunctionConfig(), one.code.add(code(tmp_path, "x")), None)
            record = await one.invoke("hello", b"{}")
            found = await other.invocation(record.id)
            assert found is not None and found.result == {"says": "x"}
            assert [r.id for r in await other.logs_after("default", "hello", 0.0, 10)] == [
                record.id
            ]

    asyncio.run(main())


SECRET_SOURCE = """
import os

def handler(event, context):
    token = os.environ.get("API_TOKEN")
    return {"reversed": token[::-1] if token else None}  # as is, it would be masked
"""


def test_a_secret_set_through_one_process_reaches_the_others_function(tmp_path: Path) -> None:
    async def main() -> None:
        async with two_processes(tmp_path) as (one, other):
            code_dir = tmp_path / "reader"
            code_dir.mkdir()
            (code_dir / "app.py").write_text(SECRET_SOURCE)
            secrets_of_one = one.secrets
            assert isinstance(secrets_of_one, Secrets)
            await secrets_of_one.put("default", "API_TOKEN", b"first-token", "tester")
            config = FunctionConfig(secrets=("API_TOKEN",))
            await one.publish("hello", config, one.code.add(code_dir), None)
            await until(lambda: other.exists("hello"))
            assert await says(other) == {"reversed": "nekot-tsrif"}  # its zygote runs now

            await secrets_of_one.put("default", "API_TOKEN", b"second-token", "tester")
            # the other process hears it, restarts its zygote and reads the new value
            await until(lambda: "default/hello:1" not in zygotes(other))
            assert await says(other) == {"reversed": "nekot-dnoces"}
            assert await says(one) == {"reversed": "nekot-dnoces"}

    asyncio.run(main())
