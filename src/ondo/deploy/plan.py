"""Deploy: build a plan of frozen steps from ondo.yaml, print it, then apply it (unless dry-run).

Each resource kind contributes a planner: `planner(platform, manifest, namespace) -> [Step]`.
Functions plan here; other kinds (rules, …) register theirs in PLANNERS.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol

from ondo.deploy import progress
from ondo.deploy.manifest import FunctionDecl, Manifest
from ondo.errors import DeployError, OndoError
from ondo.functions.bundle import hash_code
from ondo.functions.model import FunctionConfig
from ondo.rules.planner import plan_rules

if TYPE_CHECKING:
    from ondo.platform import Platform

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

    async def apply(self, platform: Platform) -> dict[str, Any]: ...


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

    async def apply(self, platform: Platform) -> dict[str, Any]:
        functions = platform.functions
        if self.change == "delete":
            await functions.delete(self.name, self.namespace)
            return {}
        if self.change == "unchanged" or self.decl is None:
            return {"version": functions.get(self.name, self.namespace).version}
        code_hash = await asyncio.to_thread(functions.code.add, self.decl.code_dir)
        layer_hash = await _build_layer(platform, self.decl)
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


async def _build_layer(platform: Platform, decl: FunctionDecl) -> str | None:
    if decl.requirements is None:
        return None
    from ondo.runtime import build_layer

    listener = progress.current()
    progress.report(f"function {decl.name}: installing {decl.requirements.name}")
    path = await asyncio.to_thread(
        build_layer,
        decl.requirements,
        platform.config.data_dir / "layers",
        (lambda step: listener(f"function {decl.name}: {step}")) if listener else None,
    )
    return str(path.name)


@dataclass(frozen=True)
class Plan:
    app: str
    namespace: str
    steps: tuple[Step, ...]

    @property
    def changes(self) -> int:
        return sum(1 for s in self.steps if s.change != "unchanged")

    def to_json(self) -> dict[str, Any]:
        return {
            "app": self.app,
            "namespace": self.namespace,
            "steps": [
                {"kind": s.kind, "name": s.name, "change": s.change, "detail": s.detail}
                for s in self.steps
            ],
        }


Planner = Callable[["Platform", Manifest, str], Sequence[Step]]


def _requirements_hash(decl: FunctionDecl) -> str | None:
    if decl.requirements is None:
        return None
    return hashlib.sha256(decl.requirements.read_bytes()).hexdigest()


def _describe(old: FunctionConfig, new: FunctionConfig, code: bool, layer: bool) -> str:
    changed = [k for k, v in new.to_json().items() if old.to_json().get(k) != v]
    if code:
        changed.append("code")
    if layer:
        changed.append("requirements")
    return "changed: " + ", ".join(changed)


def plan_functions(platform: Platform, manifest: Manifest, namespace: str) -> list[Step]:
    steps: list[Step] = []
    for name, decl in sorted(manifest.functions.items()):
        code_hash = hash_code(decl.code_dir)
        layer_hash = _requirements_hash(decl)
        current = platform.functions.repo.current(namespace, name)
        if current is None:
            change: Change = "create"
            detail = f"new function, handler {decl.config.handler}"
        elif (current.config, current.code_hash, current.layer_hash) == (
            decl.config,
            code_hash,
            layer_hash,
        ):
            change, detail = "unchanged", f"version {current.version}"
        else:
            change = "update"
            detail = _describe(
                current.config,
                decl.config,
                current.code_hash != code_hash,
                current.layer_hash != layer_hash,
            )
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
    for name in platform.functions.repo.names_of_app(namespace, manifest.app):
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


PLANNERS: list[Planner] = [plan_functions, plan_rules]  # rules after the functions they invoke


def make_plan(platform: Platform, manifest: Manifest, namespace: str = "default") -> Plan:
    steps: list[Step] = []
    for planner in PLANNERS:
        steps.extend(planner(platform, manifest, namespace))
    return Plan(manifest.app, namespace, tuple(steps))


async def apply_plan(platform: Platform, plan: Plan) -> list[dict[str, Any]]:
    """Apply creates and updates first, deletes last; stop at the first failure."""
    ordered = sorted(plan.steps, key=lambda s: s.change == "delete")
    results = []
    for step in ordered:
        try:
            outcome = await step.apply(platform)
        except OndoError:
            raise
        except Exception as exc:
            raise DeployError(f"{step.kind} {step.name!r}: {exc}") from exc
        results.append({"kind": step.kind, "name": step.name, "change": step.change, **outcome})
    return results
