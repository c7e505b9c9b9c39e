"""Deploy planning and applying against DeployTargets, without a platform: a real RuleBook over a
real SQLite store, and the function service's part played by `Functions` (FunctionTargets in
memory: versions, the current one, handlers that fail to import)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar

import pytest

from ondo.backends.store import open_store
from ondo.clock import ManualClock
from ondo.deploy.guards import delete_function
from ondo.deploy.manifest import Manifest, parse_manifest
from ondo.deploy.plan import FunctionStep, Plan, apply_plan, check_imports, make_plan
from ondo.deploy.targets import DeployTargets
from ondo.errors import ConfigError, Conflict, HandlerImportError, NotFound
from ondo.functions.bundle import CodeStore
from ondo.functions.model import FunctionConfig, FunctionVersion
from ondo.rules.definitions import RuleBook, RuleChecks
from ondo.runtime.builds import BuildSettings
from ondo.sources.book import SourceBook

T = TypeVar("T")
Key = tuple[str, str]  # (namespace, name)


class Current:
    def __init__(self) -> None:
        self.by_key: dict[Key, FunctionVersion] = {}

    def get(self, namespace: str, name: str) -> FunctionVersion | None:
        return self.by_key.get((namespace, name))


class Functions:
    """What deploy uses of the function service, in memory; `broken` handlers fail to import."""

    def __init__(self, code: CodeStore) -> None:
        self.code = code
        self.current = Current()
        self.versions: dict[Key, list[FunctionVersion]] = {}
        self.broken: set[str] = set()
        self.imported: list[str] = []  # handlers try_import was asked to import
        self.secrets: set[str] = set()  # the secrets set in every namespace

    def get(self, name: str, namespace: str = "default") -> FunctionVersion:
        found = self.current.get(namespace, name)
        if found is None:
            raise NotFound(f"function {name!r} does not exist in namespace {namespace!r}")
        return found

    def exists(self, name: str, namespace: str = "default") -> bool:
        return self.current.get(namespace, name) is not None

    async def identical_version(self, draft: FunctionVersion) -> FunctionVersion | None:
        same = [
            fv
            for fv in self.versions.get((draft.namespace, draft.name), [])
            if (fv.config, fv.code_hash, fv.layer_hash, fv.app)
            == (draft.config, draft.code_hash, draft.layer_hash, draft.app)
        ]
        return same[-1] if same else None

    async def missing_secrets(self, namespace: str, names: Sequence[str]) -> list[str]:
        return sorted(set(names) - self.secrets)

    async def names_of_app(self, namespace: str, app: str) -> list[str]:
        found = self.current.by_key.values()
        return sorted(fv.name for fv in found if fv.namespace == namespace and fv.app == app)

    async def publish(
        self,
        name: str,
        config: FunctionConfig,
        code_hash: str,
        layer_hash: str | None,
        *,
        namespace: str = "default",
        app: str | None = None,
    ) -> FunctionVersion:
        versions = self.versions.setdefault((namespace, name), [])
        draft = FunctionVersion(
            namespace, name, len(versions) + 1, config, code_hash, layer_hash, 0.0, app
        )
        fv = await self.identical_version(draft)
        if fv is None:
            fv = draft
            versions.append(draft)
        self.current.by_key[namespace, name] = fv
        return fv

    async def try_import(
        self,
        name: str,
        config: FunctionConfig,
        code_hash: str,
        layer_hash: str | None,
        namespace: str = "default",
    ) -> None:
        self.imported.append(config.handler)
        if config.handler in self.broken:
            raise HandlerImportError(f"{config.handler}: NameError: name 'oops' is not defined")

    async def delete(self, name: str, namespace: str = "default") -> None:
        self.get(name, namespace)
        del self.current.by_key[namespace, name]


class World:
    """The targets of one test, and its app directory."""

    def __init__(
        self, targets: DeployTargets, functions: Functions, book: RuleBook, root: Path
    ) -> None:
        self.targets = targets
        self.functions = functions
        self.book = book
        self.root = root

    def manifest(self, text: str, app: str = "shop") -> Manifest:
        return parse_manifest(f"name: {app}\n{text}", self.root, "ondo.yaml")

    async def deploy(self, manifest: Manifest) -> list[dict[str, Any]]:
        return await apply_plan(self.targets, await make_plan(self.targets, manifest))


@asynccontextmanager
async def world(tmp_path: Path) -> AsyncIterator[World]:
    root = tmp_path / "app"
    for name in ("hello", "bye"):
        (root / name).mkdir(parents=True)
        (root / name / "app.py").write_text("def handler(event, context):\n    return event\n")
    clock = ManualClock(1_000.0)
    store = open_store(f"sqlite:///{tmp_path / 'ondo.db'}")
    await store.open()
    functions = Functions(CodeStore(tmp_path / "code"))
    checks = RuleChecks(function_exists=functions.exists, validate_action=lambda a, ns: None)
    book = RuleBook(store, clock, checks, on_change=lambda rid, rule: None)
    await book.load()
    targets = DeployTargets(
        functions, book, SourceBook(store), tmp_path / "layers", BuildSettings()
    )
    try:
        yield World(targets, functions, book, root)
    finally:
        await book.close()
        await store.close()


def run(tmp_path: Path, body: Callable[[World], Awaitable[T]]) -> T:
    async def main() -> T:
        async with world(tmp_path) as w:
            return await body(w)

    return asyncio.run(main())


def changes(plan: Plan) -> dict[tuple[str, str], str]:
    return {(s.kind, s.name): s.change for s in plan.steps}


HELLO = "functions:\n  hello:\n    code: ./hello\n"
HELLO_AND_RULE = HELLO + "rules:\n  - {name: greet, when: 'on user.created do invoke hello'}\n"


def test_a_new_app_is_created_then_unchanged(tmp_path: Path) -> None:
    async def body(w: World) -> None:
        manifest = w.manifest(HELLO_AND_RULE)
        plan = await make_plan(w.targets, manifest)
        assert changes(plan) == {("function", "hello"): "create", ("rule", "greet"): "create"}
        applied = await apply_plan(w.targets, plan)
        assert applied[0] == {"kind": "function", "name": "hello", "change": "create", "version": 1}
        assert w.functions.get("hello").app == "shop"
        greet = w.book.stored_rule("default", "greet")
        assert greet is not None and greet.app == "shop" and greet.enabled
        again = await make_plan(w.targets, manifest)
        assert set(changes(again).values()) == {"unchanged"}

    run(tmp_path, body)


def test_changed_code_is_an_update_and_going_back_names_the_identical_version(
    tmp_path: Path,
) -> None:
    async def body(w: World) -> None:
        await w.deploy(w.manifest(HELLO))
        source = w.root / "hello" / "app.py"
        first = source.read_text()
        source.write_text(first + "# changed\n")
        plan = await make_plan(w.targets, w.manifest(HELLO))
        assert [(s.change, s.detail) for s in plan.steps] == [("update", "changed: code")]
        assert (await apply_plan(w.targets, plan))[0]["version"] == 2
        source.write_text(first)
        (step,) = (await make_plan(w.targets, w.manifest(HELLO))).steps
        assert step.detail.endswith("identical to version 1, which becomes current again")

    run(tmp_path, body)


def test_another_apps_function_is_taken_over_only_when_asked(tmp_path: Path) -> None:
    async def body(w: World) -> None:
        await w.deploy(w.manifest(HELLO, app="shop"))
        with pytest.raises(Conflict, match="function 'hello' belongs to app 'shop'"):
            await make_plan(w.targets, w.manifest(HELLO, app="blog"))
        plan = await make_plan(w.targets, w.manifest(HELLO, app="blog"), take_over=True)
        assert plan.steps[0].detail.startswith("taken over from app 'shop' (--take-over)")
        await apply_plan(w.targets, plan)
        assert w.functions.get("hello").app == "blog"

    run(tmp_path, body)


def test_a_function_other_rules_invoke_is_deleted_only_with_force_which_disables_them(
    tmp_path: Path,
) -> None:
    async def body(w: World) -> None:
        await w.deploy(w.manifest(HELLO + "  bye:\n    code: ./bye\n"))
        await w.book.add(w.book.prepare("default", "admin", name="wave", text="on x do invoke bye"))
        with pytest.raises(Conflict, match=r"'bye' is invoked by enabled rules .*: wave"):
            await make_plan(w.targets, w.manifest(HELLO))
        plan = await make_plan(w.targets, w.manifest(HELLO), force=True)
        (delete,) = [s for s in plan.steps if s.change == "delete"]
        assert isinstance(delete, FunctionStep) and delete.disables == ("wave",)
        applied = await apply_plan(w.targets, plan)
        assert applied[-1]["disabled_rules"] == ["wave"]  # deletes are applied last
        assert not w.functions.exists("bye")
        wave = w.book.stored_rule("default", "wave")
        assert wave is not None and not wave.enabled

    run(tmp_path, body)


def test_deleting_a_function_its_own_app_stops_invoking_needs_no_force(tmp_path: Path) -> None:
    async def body(w: World) -> None:
        await w.deploy(w.manifest(HELLO_AND_RULE))
        plan = await make_plan(w.targets, w.manifest("functions: {}\n"))
        assert changes(plan) == {("function", "hello"): "delete", ("rule", "greet"): "delete"}
        await apply_plan(w.targets, plan)
        assert w.book.stored_in("default") == [] and not w.functions.exists("hello")

    run(tmp_path, body)


def test_the_delete_guard_refuses_then_disables_with_force(tmp_path: Path) -> None:
    async def body(w: World) -> None:
        with pytest.raises(NotFound):
            await delete_function(w.targets, "hello", "default")
        await w.deploy(w.manifest(HELLO_AND_RULE))
        with pytest.raises(Conflict, match="pass --force"):
            await delete_function(w.targets, "hello", "default")
        assert w.functions.exists("hello")
        assert await delete_function(w.targets, "hello", "default", force=True) == ["greet"]
        greet = w.book.stored_rule("default", "greet")
        assert greet is not None and not greet.enabled and not w.functions.exists("hello")

    run(tmp_path, body)


def test_a_dry_run_imports_only_new_and_changed_handlers_and_names_where_one_fails(
    tmp_path: Path,
) -> None:
    async def body(w: World) -> None:
        both = HELLO + "  bye:\n    code: ./bye\n    handler: app.handler\n"
        await w.deploy(w.manifest(HELLO))
        w.functions.broken = {"app.handler"}
        plan = await make_plan(w.targets, w.manifest(both))
        with pytest.raises(HandlerImportError) as caught:
            await check_imports(w.targets, plan)
        assert w.functions.imported == ["app.handler"]  # bye only: hello is unchanged
        assert "ondo.yaml:5 (functions.bye): function 'bye': app.handler: NameError" in str(
            caught.value
        )
        assert not w.functions.exists("bye")  # a dry run stores nothing

    run(tmp_path, body)


def test_on_failure_must_name_a_function_of_the_app_or_a_deployed_one(tmp_path: Path) -> None:
    text = HELLO + "    async: {on_failure: invoke bye}\n"

    async def body(w: World) -> None:
        with pytest.raises(ConfigError, match=r"ondo.yaml:5.*'bye' does not exist"):
            await make_plan(w.targets, w.manifest(text))
        await w.deploy(w.manifest("functions:\n  bye:\n    code: ./bye\n", app="other"))
        plan = await make_plan(w.targets, w.manifest(text))
        assert changes(plan) == {("function", "hello"): "create"}

    run(tmp_path, body)


def test_a_declared_secret_must_be_set_before_the_deploy(tmp_path: Path) -> None:
    text = HELLO + "    secrets: [DB_PASSWORD, API_KEY]\n"

    async def body(w: World) -> None:
        w.functions.secrets = {"API_KEY"}
        with pytest.raises(ConfigError) as refused:
            await make_plan(w.targets, w.manifest(text))
        message = str(refused.value)
        assert "ondo.yaml:5 (functions.hello.secrets)" in message
        assert "DB_PASSWORD" in message and "ondo secrets set DB_PASSWORD" in message
        w.functions.secrets.add("DB_PASSWORD")
        plan = await make_plan(w.targets, w.manifest(text))
        assert changes(plan) == {("function", "hello"): "create"}

    run(tmp_path, body)


def test_the_functions_in_memory_play_by_the_targets_rules(tmp_path: Path) -> None:
    """Guards the test double: publishing an identical version makes it current again."""

    async def body(w: World) -> None:
        config = FunctionConfig(handler="app.handler")
        one = await w.functions.publish("f", config, "c1", None, app="a")
        await w.functions.publish("f", replace(config, memory=256), "c1", None, app="a")
        assert await w.functions.publish("f", config, "c1", None, app="a") == one

    run(tmp_path, body)
