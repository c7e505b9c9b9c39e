"""POST /v1/deployments: an app archive in, the plan out (applied unless dry_run)."""

from __future__ import annotations

import asyncio
import tempfile
from collections import Counter
from functools import partial
from pathlib import Path
from typing import Any

from starlette.datastructures import QueryParams
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from ondo.api.http import (
    AuditFinish,
    answer,
    audit_later,
    audit_note,
    flag_param,
    namespace_of,
    platform_of,
    principal_of,
    read_body,
)
from ondo.api.progress import progress_stream, wants_progress
from ondo.backends.store.repositories.tokens import Principal
from ondo.deploy.bundle import MAX_APP_BYTES, unpack
from ondo.deploy.manifest import Manifest, read_manifest
from ondo.deploy.plan import apply_plan, check_imports, make_plan
from ondo.deploy.rules import DEPLOY_OWNER
from ondo.deploy.targets import DeployTargets
from ondo.errors import OndoError
from ondo.security.policy import Permission, require_each

MAX_NOTED_NAMES = 50  # rule names an audit entry lists for one deploy


async def deploy(request: Request) -> Response:
    """Apply an app archive (`?dry_run=true`: plan only); NDJSON progress when asked for."""
    targets = platform_of(request).deploy_targets
    body = await read_body(request, MAX_APP_BYTES)
    job = partial(
        _deploy_archive,
        targets,
        body,
        request.query_params,
        namespace_of(request),
        principal_of(request),
    )
    if wants_progress(request):
        # The answer starts before the outcome is known: the entry is written when it is.
        return progress_stream(job, partial(_audit_outcome, request, audit_later(request)))
    out = await job()
    _note(request, out)
    return answer(out)


async def _audit_outcome(
    request: Request, finish: AuditFinish, result: Any, error: BaseException | None
) -> None:
    if error is None:
        _note(request, result)
        await finish("ok", "")
    else:
        await finish("failed", error.code if isinstance(error, OndoError) else "internal")


def _note(request: Request, out: dict[str, Any]) -> None:
    """What the deploy's audit entry says (`deploy_summary`)."""
    resource, detail = deploy_summary(out)
    audit_note(request, resource=resource, **detail)


def deploy_summary(out: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """A deploy's audit resource and details: the app, how many of each kind changed how,
    and the rules it created, changed or deleted."""
    steps = out.get("steps", [])
    changes = Counter(f"{s['kind']}.{s['change']}" for s in steps if s["change"] != "unchanged")
    rules = sorted(s["name"] for s in steps if s["kind"] == "rule" and s["change"] != "unchanged")
    detail = {
        "dry_run": bool(out.get("dry_run")),
        "changes": dict(sorted(changes.items())),
        "rules": rules[:MAX_NOTED_NAMES],
    }
    return f"app:{out.get('app')}", detail


async def _deploy_archive(
    targets: DeployTargets,
    body: bytes,
    params: QueryParams,
    namespace: str,
    principal: Principal,
) -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix="ondo-deploy-") as tmp:
        root = Path(tmp)
        try:
            await asyncio.to_thread(unpack, body, root)
            # Off the loop: YAML parsing is pure Python, and a manifest may be up to its limit.
            origin = params.get("dir")
            manifest = await asyncio.to_thread(
                read_manifest, root, params.get("app"), Path(origin) if origin else None
            )
            return await deploy_manifest(
                targets,
                manifest,
                namespace,
                flag_param(params, "dry_run"),
                take_over=flag_param(params, "take_over"),
                force=flag_param(params, "force"),
                principal=principal,
            )
        except OndoError as exc:
            # Name the sender's files (`?dir=` is their app directory), not this temporary copy.
            exc.args = (str(exc).replace(str(root), params.get("dir") or "<app>"),)
            raise


async def deploy_manifest(
    targets: DeployTargets,
    manifest: Manifest,
    namespace: str,
    dry_run: bool,
    *,
    take_over: bool = False,
    force: bool = False,
    principal: Principal | None = None,
) -> dict[str, object]:
    """Plan, and apply unless `dry_run`; shared by the API and `ondo up --app`.

    `take_over`: the app may take functions and rules from other apps and principals; `force`:
    it may delete functions that enabled rules invoke (those rules are disabled). `principal`:
    who deploys (None: the platform admin, as `ondo up --app`): it owns the rules it writes and
    must be allowed to deploy each resource of the plan."""
    owner = principal.name if principal is not None else DEPLOY_OWNER
    plan = await make_plan(
        targets, manifest, namespace, take_over=take_over, force=force, owner=owner
    )
    if principal is not None:
        resources = (f"{step.kind}:{step.name}" for step in plan.steps)
        require_each(principal, Permission.DEPLOY, f"deploying app {plan.app!r}", resources)
    out: dict[str, object] = {**plan.to_json(), "dry_run": dry_run}
    if dry_run:
        await check_imports(targets, plan)
    else:
        out["applied"] = await apply_plan(targets, plan)
    return out


def routes() -> list[BaseRoute]:
    return [Route("/v1/deployments", deploy, methods=["POST"])]
