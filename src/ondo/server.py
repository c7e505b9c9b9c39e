"""`ondo up`: the whole platform in one process tree, served by uvicorn until SIGINT/SIGTERM."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import ssl
import sys
from collections.abc import AsyncIterator

import uvicorn
from starlette.applications import Starlette

from ondo.api.app import create_app
from ondo.api.coalesce import CoalescingHttpToolsProtocol
from ondo.api.invoke import InvokeFastPath
from ondo.api.routes.deployments import deploy_manifest, deploy_summary
from ondo.config import Config
from ondo.deploy.manifest import read_manifest
from ondo.errors import ConfigError, OndoError
from ondo.platform import Platform
from ondo.security.tokens import ADMIN
from ondo.sources.http_serve import HttpPrefix

log = logging.getLogger("ondo")


UP_DEPLOY = "ondo up --app"  # the audit action of a deploy at start-up (no API call)


async def deploy_apps(platform: Platform) -> None:
    for app_dir in platform.config.apps:
        try:
            manifest = read_manifest(app_dir)
            result = await deploy_manifest(
                platform.deploy_targets, manifest, "default", dry_run=False
            )
        except OndoError as exc:
            await platform.audit.record(
                "default", ADMIN, UP_DEPLOY, f"dir:{app_dir}", outcome="failed", error=exc.code
            )
            raise
        for step in result["steps"]:  # type: ignore[attr-defined]
            log.info(
                "deploy %s: %s %s %s", manifest.app, step["change"], step["kind"], step["name"]
            )
        resource, detail = deploy_summary(result)
        if detail["changes"]:  # a restart that changes nothing is no administrative action
            await platform.audit.record("default", ADMIN, UP_DEPLOY, resource, **detail)


def build(config: Config) -> tuple[Platform, Starlette]:
    platform = Platform(config)
    app = create_app(platform)

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        await platform.start()
        try:
            await deploy_apps(platform)
        except OndoError as exc:
            log.error("deploying --app failed: %s", exc)
            await platform.stop()
            raise SystemExit(2) from None
        _announce(platform)
        # What start-up made lives as long as the platform: out of the collector's sight, a
        # full collection no longer walks every module, route and metric on the request path.
        gc.freeze()
        yield
        log.info("shutting down: letting in-flight invocations finish")
        await platform.stop()

    app.router.lifespan_context = lifespan
    return platform, app


def _announce(platform: Platform) -> None:
    cfg = platform.config
    lines = [
        f"ondo is up at {cfg.url}  (data in {cfg.data_dir})",
        f"admin token: {cfg.token_path}  (export ONDO_TOKEN=$(cat {cfg.token_path}))",
        f"/metrics scrape token: {cfg.metrics_token_path}  (Prometheus: authorization:"
        " credentials_file)",
    ]
    if cfg.tls_cert is not None:
        lines.append(f"TLS: {cfg.tls_cert}  (clients: --cacert FILE if it is self-signed)")
    for fv in platform.functions.current.in_namespace("default"):
        lines.append(
            f'function {fv.name} v{fv.version}:  ondo invoke {fv.name} --data \'{{"name": "you"}}\''
        )
    for rule in platform.rules.book.stored_in("default"):
        lines.append(f"rule {rule.name}: {rule.text or '(JSON form)'}")
    for source in platform.sources.statuses("default"):
        lines.append(f"source {source.name} ({source.kind}):  ondo sources show {source.name}")
    if len(lines) > 3:
        lines.append("events:  ondo emit TYPE --data JSON;  what they caused:  ondo trace EVENT_ID")
    for app_dir in cfg.apps:  # each example's README says how to trigger it
        readme = app_dir / "README.md"
        if readme.is_file():
            lines.append(f"app {app_dir.name}: how to try it: {readme}")
    for line in lines:
        print(line, file=sys.stderr, flush=True)


def check_tls(config: Config) -> None:
    """Refuse to start with a certificate or key that cannot serve, saying which and why
    (uvicorn would fail later with a bare ssl traceback)."""
    if config.tls_cert is None or config.tls_key is None:
        return
    for flag, path in (("--tls-cert", config.tls_cert), ("--tls-key", config.tls_key)):
        try:
            path.read_bytes()
        except OSError as exc:
            raise ConfigError(f"{flag} {path}: cannot read it: {exc.strerror}") from None
    try:
        ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(
            config.tls_cert, config.tls_key
        )
    except ssl.SSLError as exc:
        raise ConfigError(
            f"--tls-cert {config.tls_cert} / --tls-key {config.tls_key}: {_tls_problem(exc)}"
        ) from None


def _tls_problem(exc: ssl.SSLError) -> str:
    if "KEY_VALUES_MISMATCH" in str(exc):
        return "the key is not the certificate's private key: give the certificate's own key"
    return (
        f"not a PEM certificate and its unencrypted PEM private key ({exc.reason or exc}):"
        " give the certificate (chain) file to --tls-cert and its key to --tls-key"
    )


def serve(config: Config) -> int:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    check_tls(config)
    platform, app = build(config)
    # loop/http "auto": uvloop and httptools when installed (they are dependencies), else
    # asyncio and h11. Every platform component runs on this one loop, so its speed is theirs.
    uv_config = uvicorn.Config(
        # The invoke fast path in front of the whole app (it authenticates on its own and
        # passes on whatever it does not serve, lifespan included): no framework layer per call.
        # The http sources' routes (/http/NS/SOURCE/…) in front of that: no token needed by a
        # public route, and nothing else of the API is reachable through that prefix.
        HttpPrefix(InvokeFastPath(app, platform), platform.http_routes),
        host=config.host,
        port=config.port,
        log_level="warning",
        lifespan="on",
        timeout_graceful_shutdown=15,
        loop="auto",
        http=CoalescingHttpToolsProtocol,  # httptools, one send per response (see coalesce.py)
        server_header=False,  # no "server: uvicorn" on every answer: nothing to advertise
        ssl_certfile=config.tls_cert,
        ssl_keyfile=config.tls_key,
    )
    server = uvicorn.Server(uv_config)
    try:
        with asyncio.Runner(loop_factory=uv_config.get_loop_factory()) as runner:
            runner.run(server.serve())
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0 if server.started else 1
