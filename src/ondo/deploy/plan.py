"""Deploy: build a plan of frozen steps from ondo.yaml, print it, then apply it (unless dry-run).

Each resource kind contributes a planner: `planner(targets, manifest, namespace) -> [Step]`,
where `targets` (targets.py) is what a deploy changes: never the platform object.
Functions plan here, on the loop (they read the store); other kinds (rules, …) register theirs
in PLANNERS, run after the functions', off the loop.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal, Protocol

from ondo.deploy import progress
from ondo.deploy.guards import (
    invokes,
    invoking_rules,
    refuse_delete,
    refuse_foreign_rules,
    refuse_take_over,
)
from ondo.deploy.manifest import FunctionDecl, Manifest
from ondo.deploy.rules import DEPLOY_OWNER, RuleStep, plan_rules
from ondo.deploy.sources import DirectoryStep, plan_directory
from ondo.deploy.targets import DeployTargets, FunctionTargets
from ondo.errors import ConfigError, DeployError, HandlerImportError, OndoError
from ondo.functions.bundle import hash_code
from ondo.functions.model import FunctionConfig

Change = Literal["create", "update", "unchanged", "delete"]


class Step(Protocol):
    @property
    def kind(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def change(self) -> Change: ...
    @property
    def detail(self) -> str: ...

    async def apply(self, targets: DeployTargets) -> dict[str, Any]: ...


@dataclass(frozen=True)
class FunctionStep:
    kind: str
    name: str
    change: Change
    detail: str
    namespace: str
    app: str
    decl: FunctionDecl | None
    code_hash: str | None
    layer_hash: str | None
    disables: tuple[str, ...] = ()  # rules that invoke a deleted function (deploy --force)

    async def apply(self, targets: DeployTargets) -> dict[str, Any]:
        functions = targets.functions
        if self.change == "delete":
            for rule in self.disables:
                await targets.rules.set_enabled(self.namespace, rule, False)
            await functions.delete(self.name, self.namespace)
            return {"disabled_rules": list(self.disables)} if self.disables else {}
        if self.change == "unchanged" or self.decl is None:
            return {"version": functions.get(self.name, self.namespace).version}
        code_hash = await asyncio.to_thread(functions.code.add, self.decl.code_dir)
        layer_hash = await _build_layer(targets, self.decl)
        progress.report(f"function {self.name}: importing {self.decl.config.handler}")
        try:
            fv = await functions.publish(
                self.name,
                self.decl.config,
                code_hash,
                layer_hash,
                namespace=self.namespace,
                app=self.app,
            )
        except OndoError as exc:
            raise type(exc)(f"{self.decl.where}: function {self.name!r}: {exc}") from exc
        return {"version": fv.version}


async def check_imports(targets: DeployTargets, plan: Plan) -> None:
    """A dry run's check: import each new or changed handler in a throwaway zygote, as the
    deploy would before making it current. HandlerImportError listing every failure."""
    failures: list[str] = []
    for step in plan.steps:
        if not isinstance(step, FunctionStep) or step.decl is None or step.change == "unchanged":
            continue
        code_hash = await asyncio.to_thread(targets.functions.code.add, step.decl.code_dir)
        layer_hash = await _build_layer(targets, step.decl)
        try:
            await targets.functions.try_import(
                step.name, step.decl.config, code_hash, layer_hash, step.namespace
            )
        except HandlerImportError as exc:
            failures.append(f"{step.decl.where}: function {step.name!r}: {exc}")
    if failures:
        raise HandlerImportError(
            "the plan cannot be applied: a handler fails to import\n" + "\n".join(failures)
        )


async def _build_layer(targets: DeployTargets, decl: FunctionDecl) -> str | None:
    if decl.requirements is None:
        return None
    from ondo.runtime import build_layer

    listener = progress.current()
    progress.report(f"function {decl.name}: installing {decl.requirements.name}")
    path = await asyncio.to_thread(
        build_layer,
        decl.requirements,
        targets.layers_dir,
        (lambda step: listener(f"function {decl.name}: {step}")) if listener else None,
        decl.app_root,
        targets.build,
    )
    return str(path.name)


@dataclass(frozen=True)
class Plan:
    app: str
    namespace: str
    steps: tuple[Step, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "app": self.app,
            "namespace": self.namespace,
            "steps": [
                {"kind": s.kind, "name": s.name, "change": s.change, "detail": s.detail}
                for s in self.steps
            ],
        }


# (targets, manifest, namespace, owner: the principal deploying, who owns what it creates)
Planner = Callable[[DeployTargets, Manifest, str, str], Sequence[Step]]


def _hashes(decl: FunctionDecl) -> tuple[str, str | None]:
    """The hashes of a declared function's code and of its requirements file, if any."""
    if decl.requirements is None:
        return hash_code(decl.code_dir), None
    layer = hashlib.sha256(decl.requirements.read_bytes()).hexdigest()
    return hash_code(decl.code_dir), layer


def _describe(old: FunctionConfig, new: FunctionConfig, code: bool, layer: bool) -> str:
    changed = [k for k, v in new.to_json().items() if old.to_json().get(k) != v]
    if code:
        changed.append("code")
    if layer:
        changed.append("requirements")
    return "changed: " + ", ".join(changed)


def _check_on_failure(
    functions: FunctionTargets, manifest: Manifest, namespace: str, decl: FunctionDecl
) -> None:
    """`async.on_failure: invoke F` needs F: in this app or already deployed."""
    verb, _, target = (decl.config.async_on_failure or "").partition(" ")
    target = target.strip()
    if verb != "invoke" or target in manifest.functions:
        return
    if not functions.exists(target, namespace):
        path = ("functions", decl.name, "async", "on_failure")
        where = manifest.source.where(path) if manifest.source else decl.where
        raise ConfigError(
            f"{where}: function {target!r} does not exist in namespace {namespace!r};"
            " declare it in this app or deploy it first"
        )


async def _check_secrets(
    functions: FunctionTargets, manifest: Manifest, namespace: str, decl: FunctionDecl
) -> None:
    """Each declared secret must be set in the namespace before the function can run."""
    missing = await functions.missing_secrets(namespace, decl.config.secrets)
    if not missing:
        return
    path = ("functions", decl.name, "secrets")
    where = manifest.source.where(path) if manifest.source else decl.where
    what = f"secret {missing[0]} is" if len(missing) == 1 else f"secrets {', '.join(missing)} are"
    raise ConfigError(
        f"{where}: {what} not set in namespace {namespace!r}; set each first with"
        f" `ondo secrets set {missing[0]}` (the value is read from stdin), then deploy again"
    )


async def plan_functions(
    functions: FunctionTargets, manifest: Manifest, namespace: str
) -> list[Step]:
    steps: list[Step] = []
    for name, decl in sorted(manifest.functions.items()):
        _check_on_failure(functions, manifest, namespace, decl)
        await _check_secrets(functions, manifest, namespace, decl)
        code_hash, layer_hash = await asyncio.to_thread(_hashes, decl)
        current = functions.current.get(namespace, name)
        if current is None:
            change: Change = "create"
            detail = f"new function, handler {decl.config.handler}"
        elif (current.config, current.code_hash, current.layer_hash, current.app) == (
            decl.config,
            code_hash,
            layer_hash,
            manifest.app,
        ):
            change, detail = "unchanged", f"version {current.version}"
        elif (current.config, current.code_hash, current.layer_hash) == (
            decl.config,
            code_hash,
            layer_hash,
        ):
            change, detail = "update", f"moves to app {manifest.app!r}, version {current.version}"
        else:
            change = "update"
            detail = _describe(
                current.config,
                decl.config,
                current.code_hash != code_hash,
                current.layer_hash != layer_hash,
            )
            same = await functions.identical_version(
                replace(
                    current,
                    config=decl.config,
                    code_hash=code_hash,
                    layer_hash=layer_hash,
                    app=manifest.app,
                )
            )
            if same is not None:
                detail += f"; identical to version {same.version}, which becomes current again"
        steps.append(
            FunctionStep(
                "function",
                name,
                change,
                detail,
                namespace,
                manifest.app,
                decl,
                code_hash,
                layer_hash,
            )
        )
    for name in await functions.names_of_app(namespace, manifest.app):
        if name not in manifest.functions:
            steps.append(
                FunctionStep(
                    "function",
                    name,
                    "delete",
                    "no longer in ondo.yaml",
                    namespace,
                    manifest.app,
                    None,
                    None,
                    None,
                )
            )
    return steps


def _plan_rules(
    targets: DeployTargets, manifest: Manifest, namespace: str, owner: str
) -> list[RuleStep]:
    return plan_rules(targets.rules, manifest, namespace, owner)


PLANNERS: list[Planner] = [_plan_rules]  # after the functions they invoke


async def make_plan(
    targets: DeployTargets,
    manifest: Manifest,
    namespace: str = "default",
    *,
    take_over: bool = False,
    force: bool = False,
    now: float | None = None,
    owner: str = DEPLOY_OWNER,
) -> Plan:
    """The plan, refused (Conflict) when it would take over another app's functions or rules,
    or rules another principal wrote (unless `take_over`), or delete a function that enabled
    rules invoke (unless `force`, which makes the deletion disable those rules). The rules it
    creates or changes become `owner`'s (the deploying principal's)."""
    steps = await plan_functions(targets.functions, manifest, namespace)
    steps.extend(
        await plan_directory(
            targets.sources,
            manifest.sources,
            manifest.directory,
            manifest.app,
            namespace,
            time.time() if now is None else now,
        )
    )
    plan = await asyncio.to_thread(
        _finish_plan, targets, manifest, namespace, steps, take_over, force, owner
    )
    for step in plan.steps:  # the data subjects' consent to the rules about them
        if isinstance(step, RuleStep) and step.rule is not None and step.change != "unchanged":
            await targets.rules.check_consent(step.rule.stored)
    return plan


def _finish_plan(
    targets: DeployTargets,
    manifest: Manifest,
    namespace: str,
    steps: list[Step],
    take_over: bool,
    force: bool,
    owner: str,
) -> Plan:
    """The other kinds' steps, then the checks across all steps (off the loop: the rules'
    planner compiles every rule of the manifest)."""
    for planner in PLANNERS:
        steps.extend(planner(targets, manifest, namespace, owner))
    foreign = _foreign_rules(targets, namespace, steps, owner)
    if foreign and not take_over:
        raise refuse_foreign_rules(foreign, owner)
    taken = [
        (step.kind, step.name, app)
        for step in steps
        if step.change == "update"
        and (app := _owner(targets, namespace, step)) not in (None, manifest.app)
    ]
    if taken and not take_over:
        raise refuse_take_over(taken, manifest.app)
    owners = {(kind, name): app for kind, name, app in taken}
    steps = [_taken_over(s, owners.get((s.kind, s.name))) for s in steps]
    steps = [_guard_delete(targets, namespace, manifest, steps, s, force) for s in steps]
    return Plan(manifest.app, namespace, tuple(steps))


def _foreign_rules(
    targets: DeployTargets, namespace: str, steps: list[Step], owner: str
) -> list[tuple[str, str]]:
    """(rule, its owner) of the rules this plan changes or deletes that another principal
    wrote."""
    found = []
    for step in steps:
        if step.kind != "rule" or step.change not in ("update", "delete"):
            continue
        current = targets.rules.stored_rule(namespace, step.name)
        if current is not None and current.owner != owner:
            found.append((step.name, current.owner))
    return found


def _owner(targets: DeployTargets, namespace: str, step: Step) -> str | None:
    """The app that owns the resource a step changes today (None: no app, or not known)."""
    if step.kind == "function":
        current = targets.functions.current.get(namespace, step.name)
        return current.app if current is not None else None
    if step.kind == "rule":
        rule = targets.rules.stored_rule(namespace, step.name)
        return rule.app if rule is not None else None
    if isinstance(step, DirectoryStep):
        return step.current_app
    return None


def _taken_over(step: Step, owner: str | None) -> Step:
    if owner is None or not isinstance(step, FunctionStep | RuleStep | DirectoryStep):
        return step
    return replace(step, detail=f"taken over from app {owner!r} (--take-over); {step.detail}")


def _guard_delete(
    targets: DeployTargets,
    namespace: str,
    manifest: Manifest,
    steps: list[Step],
    step: Step,
    force: bool,
) -> Step:
    """A function deletion, checked against the rules that will still invoke it."""
    if not (isinstance(step, FunctionStep) and step.change == "delete"):
        return step
    ours = {s.name: s for s in steps if isinstance(s, RuleStep)}
    rules = [r for r in invoking_rules(targets.rules, namespace, step.name) if r not in ours]
    rules += [
        s.name
        for s in ours.values()
        if s.rule is not None and s.enabled and invokes(s.rule.spec.actions, step.name)
    ]
    if not rules:
        return step
    if not force:
        raise refuse_delete(
            step.name, namespace, sorted(rules), f"deploy with --force (app {manifest.app!r})"
        )
    detail = f"{step.detail}; disables rules {', '.join(sorted(rules))} (--force)"
    return replace(step, detail=detail, disables=tuple(sorted(rules)))


async def apply_plan(targets: DeployTargets, plan: Plan) -> list[dict[str, Any]]:
    """Apply creates and updates first, deletes last; stop at the first failure."""
    ordered = sorted(plan.steps, key=lambda s: s.change == "delete")
    results = []
    for step in ordered:
        try:
            outcome = await step.apply(targets)
        except OndoError:
            raise
        except Exception as exc:
            raise DeployError(f"{step.kind} {step.name!r}: {exc}") from exc
        results.append({"kind": step.kind, "name": step.name, "change": step.change, **outcome})
    return results
