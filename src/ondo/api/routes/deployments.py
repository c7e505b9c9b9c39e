"""POST /v1/deployments: an app archive in, the plan out (applied unless dry_run)."""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route

from ondo.api.http import answer, namespace_of, platform_of, read_body
from ondo.deploy.bundle import MAX_APP_BYTES, unpack
from ondo.deploy.manifest import Manifest, read_manifest
from ondo.deploy.plan import apply_plan, make_plan
from ondo.platform import Platform


async def deploy(request: Request) -> JSONResponse:
    platform = platform_of(request)
    body = await read_body(request, MAX_APP_BYTES)
    dry_run = request.query_params.get("dry_run", "false").lower() in ("1", "true", "yes")
    with tempfile.TemporaryDirectory(prefix="ondo-deploy-") as tmp:
        root = Path(tmp)
        await asyncio.to_thread(unpack, body, root)
        manifest = read_manifest(root, request.query_params.get("app"))
        result = await deploy_manifest(platform, manifest, namespace_of(request), dry_run)
    return answer(result)


async def deploy_manifest(
    platform: Platform, manifest: Manifest, namespace: str, dry_run: bool
) -> dict[str, object]:
    """Plan, and apply unless `dry_run`; shared by the API and `ondo up --app`."""
    plan = await asyncio.to_thread(make_plan, platform, manifest, namespace)
    out: dict[str, object] = {**plan.to_json(), "dry_run": dry_run}
    if not dry_run:
        out["applied"] = await apply_plan(platform, plan)
    return out


def routes() -> list[BaseRoute]:
    return [Route("/v1/deployments", deploy, methods=["POST"])]
