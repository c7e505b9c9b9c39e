"""Delete what a test's NATS cluster left on the shared server (its stream and offsets bucket)."""

from __future__ import annotations

import asyncio
import contextlib


def delete_cluster(url: str, cluster: str) -> None:
    asyncio.run(_delete(url, cluster))


async def _delete(url: str, cluster: str) -> None:
    import nats
    from nats.js.errors import NotFoundError

    nc = await nats.connect(url)
    try:
        js = nc.jetstream()
        for stream in (f"{cluster}_events", f"KV_{cluster}_offsets"):
            with contextlib.suppress(NotFoundError):
                await js.delete_stream(stream)
    finally:
        await nc.close()
