"""Group commit of invocation records: the records that finish together share one transaction.

A final record must be committed before its invocation is answered, and one SQLite commit
costs far more than one row. Under load many invocations finish in the same loop iteration,
so `write` queues the record and the first writer of an iteration schedules one flush (with
`call_soon`) that commits all of them with `executemany` and only then wakes their callers.
When nothing else is in flight (`alone`), the record is committed at once: no batch to wait for.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

from ondo.functions.model import InvocationRecord

WriteMany = Callable[[Sequence[InvocationRecord]], None]


class RecordWriter:
    """Commits final invocation records in batches; `await write(record)` returns once durable."""

    def __init__(self, write_many: WriteMany) -> None:
        self._write_many = write_many
        self._pending: list[tuple[InvocationRecord, asyncio.Future[None]]] = []
        self.batches = 0  # transactions committed (for tests and benchmarks)
        self.records = 0

    async def write(self, record: InvocationRecord, alone: bool = False) -> None:
        """Return once `record` is committed; raise what the store raised if it was not."""
        if alone and not self._pending:
            self._commit([record])
            return
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        if not self._pending:
            loop.call_soon(self._flush)
        self._pending.append((record, future))
        await future

    def _flush(self) -> None:
        batch, self._pending = self._pending, []
        try:
            self._commit([record for record, _ in batch])
        except Exception as exc:  # every caller in the batch learns its record was not written
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        for _, future in batch:
            if not future.done():  # a cancelled caller's record is written all the same
                future.set_result(None)

    def _commit(self, records: list[InvocationRecord]) -> None:
        self._write_many(records)
        self.batches += 1
        self.records += len(records)
