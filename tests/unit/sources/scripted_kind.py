"""A source kind for the supervisor's tests: it does what its settings script, with no outside
peer, so that retry, state and redeploy are tested without one of the real kinds' services."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from ondo.backends.store.repositories.sources import StoredSource
from ondo.events import CloudEvent
from ondo.sources.base import Settings, SourceContext, Where, no_unknown_keys

KEYS = ("types", "fail_runs", "problems", "needs")


class ScriptedKind:
    name = "scripted"

    def validate(self, settings: Mapping[str, Any], at: Where) -> Settings:
        no_unknown_keys(settings, KEYS, at)
        types = settings.get("types", [])
        if not isinstance(types, list) or not all(isinstance(t, str) for t in types):
            raise at.error(("types",), "must be a list of event types")
        return {
            "types": types,
            "fail_runs": int(settings.get("fail_runs", 0)),
            "problems": list(settings.get("problems", [])),
            "needs": settings.get("needs"),
        }

    async def run(self, source: StoredSource, ctx: SourceContext) -> None:
        if source.spec.get("needs"):
            __import__(source.spec["needs"])  # a kind's library, imported when it runs
        state = await ctx.state()
        runs = int(state.get("runs", "0")) + 1
        await ctx.save_state("runs", str(runs))
        if runs <= source.spec["fail_runs"]:
            raise ConnectionError(f"refused on run {runs}")
        ctx.connected(f"run {runs}")
        for problem in source.spec["problems"]:
            ctx.problem(problem)
        for index, type_ in enumerate(source.spec["types"]):
            await ctx.emit(CloudEvent(id=f"{source.name}-{index}", source=source.name, type=type_))
        await asyncio.Event().wait()  # attached until cancelled


KIND = ScriptedKind()
