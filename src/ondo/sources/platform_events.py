"""The `ondo` source: the platform's own events on the bus, so rules can react to them.

```yaml
sources:
  ops:
    kind: ondo
    types: [ondo.invocation.failed, ondo.action.dead_lettered]   # optional; default: all
```

Each notice of the source's namespace (see notices.py) becomes one event with source `ondo`,
type the notice's (`ondo.function.deployed`, `ondo.invocation.failed`, `ondo.rule.changed`,
`ondo.action.dead_lettered`, `ondo.source.disconnected`), subject what it is about (the
function, rule or source) and the details as `data`. The hub's callback only queues the notice;
this source's task appends what is queued in batches, so publishing never waits for the bus.
An event made because of a rule (an invocation a rule started failed) carries the rule hops
behind it, so a rule reacting to its own failures stops at the engine's hop limit.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final

from ondo.events import HOPS_EXTENSION, CloudEvent
from ondo.notices import TYPES, Notice
from ondo.sources.base import Settings, Where, no_unknown_keys

if TYPE_CHECKING:
    from ondo.backends.store.repositories.sources import StoredSource
    from ondo.sources.base import SourceContext

SOURCE: Final = "ondo"
MAX_QUEUED: Final = 10_000  # notices waiting for the bus; beyond, each one is a recorded problem
BATCH: Final = 500


class PlatformEventsKind:
    name = "ondo"

    def validate(self, settings: Mapping[str, Any], at: Where) -> Settings:
        no_unknown_keys(settings, ("types",), at)
        types = settings.get("types", [])
        if not isinstance(types, list):
            raise at.error(("types",), f"types must be a list of: {', '.join(TYPES)}")
        for index, name in enumerate(types):
            if name not in TYPES:
                raise at.error(
                    ("types", index), f"unknown type {name!r}; known types: {', '.join(TYPES)}"
                )
        return {"types": sorted(set(types))}

    async def run(self, source: StoredSource, ctx: SourceContext) -> None:
        wanted = frozenset(source.spec.get("types") or TYPES)
        queue: asyncio.Queue[CloudEvent] = asyncio.Queue(MAX_QUEUED)

        def heard(notice: Notice) -> None:
            if notice.type not in wanted:
                return
            try:
                queue.put_nowait(notice_event(notice, ctx.clock.now()))
            except asyncio.QueueFull:
                ctx.problem(f"{notice.type} about {notice.subject!r} dropped: {MAX_QUEUED} queued")

        unsubscribe = ctx.notices.subscribe(ctx.namespace, heard)
        try:
            ctx.connected(f"{len(wanted)} kinds of platform events")
            while True:
                batch = [await queue.get()]
                while len(batch) < BATCH and not queue.empty():
                    batch.append(queue.get_nowait())
                await ctx.emit_many(batch)
        finally:
            unsubscribe()


def notice_event(notice: Notice, now: float) -> CloudEvent:
    extensions = {HOPS_EXTENSION: notice.hops} if notice.hops else {}
    return CloudEvent(
        id=notice.id,
        source=SOURCE,
        type=notice.type,
        subject=notice.subject,
        time=datetime.fromtimestamp(now, UTC),
        datacontenttype="application/json",
        data={"namespace": notice.namespace, **notice.data},
        extensions=extensions,
    )


KIND = PlatformEventsKind()
