"""The real services some tests need: skip when one is unreachable locally, fail in CI.

CI (env CI set, as `.ci/run` does) must prove every backend, so a missing service is a failure
there, never a silent skip.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import uuid

import pytest

POSTGRES_URL = os.environ.get("ONDO_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
NATS_URL = os.environ.get("ONDO_TEST_NATS", "nats://127.0.0.1:4222")
MQTT_HOST, MQTT_PORT = "127.0.0.1", 1883


def reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1.0):
            return True
    except OSError:
        return False


def require(name: str, host: str, port: int) -> None:
    """Skip the calling test (locally) or fail it (CI) when `name` is not listening."""
    if reachable(host, port):
        return
    message = f"{name} is not reachable on {host}:{port}"
    if os.environ.get("CI"):
        pytest.fail(f"{message}, and CI needs every service (.ci/run starts them)")
    pytest.skip(f"{message} (CI is unset, so this is a skip; in CI it fails)")


def require_postgres() -> str:
    require("PostgreSQL", "127.0.0.1", 5432)
    return POSTGRES_URL


def require_nats() -> str:
    require("NATS", "127.0.0.1", 4222)
    return NATS_URL


def require_mqtt() -> str:
    """The MQTT broker's URL (Mosquitto on 127.0.0.1:1883)."""
    require("MQTT broker", MQTT_HOST, MQTT_PORT)
    return f"mqtt://{MQTT_HOST}:{MQTT_PORT}"


def unique_cluster(prefix: str = "t") -> str:
    """A cluster name of its own for one test (schema, streams), so parallel runs never meet."""
    return f"{prefix}_{uuid.uuid4().hex[:12]}"


def drop_cluster(cluster: str) -> None:
    """Delete what a cluster left on the shared servers: its PostgreSQL schema, and every NATS
    stream (KV buckets and object stores included) whose name starts with the cluster's name."""
    asyncio.run(_drop_cluster(cluster))


def drop_nats_cluster(cluster: str) -> None:
    """Delete the cluster's NATS streams only (a run whose store is not on PostgreSQL)."""
    asyncio.run(delete_nats_streams(cluster))


async def _drop_cluster(cluster: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(POSTGRES_URL)
    try:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{cluster}" CASCADE')
    finally:
        await conn.close()
    await delete_nats_streams(cluster)


async def delete_nats_streams(cluster: str, url: str = NATS_URL) -> None:
    """Every stream (KV buckets and object stores are streams too) named after the cluster
    (the benches' made-up clusters too: bench/configs.py)."""
    import nats

    prefixes = tuple(f"{kind}{cluster}_" for kind in ("", "KV_", "OBJ_"))
    nc = await nats.connect(url)
    try:
        names: list[str] = []
        while True:  # the server answers a page of names at a time
            reply = await nc.request(
                "$JS.API.STREAM.NAMES", json.dumps({"offset": len(names)}).encode(), timeout=10
            )
            page = json.loads(reply.data)
            names += page.get("streams") or []
            if not page.get("streams") or len(names) >= page.get("total", 0):
                break
        for name in names:
            if name.startswith(prefixes):
                await nc.request(f"$JS.API.STREAM.DELETE.{name}", b"", timeout=10)
    finally:
        await nc.close()
