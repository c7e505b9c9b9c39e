"""The event log on NATS JetStream (`nats://HOST:PORT`, `pip install 'ondo[nats]'`).

Layout, per cluster (`--cluster`, default `ondo`; see nats_options.py and nats_wire.py):

- one stream `{cluster}_events` on `{cluster}.ev.>` holds the events and nothing else, each on
  its namespace's subject `{cluster}.ev.{namespace}` (a handful of subjects), so the
  stream sequence IS the bus seq: global, starting at 1, never reused (a purge keeps the last
  sequence). Retention: `max_age` (default 7 days) and `max_bytes` from the URL, enforced by the
  server, and `prune(before)`, which purges the prefix of the stream received before `before`.
- deduplication is JetStream's: `Nats-Msg-Id` is a hash of (namespace, source, id) and the
  stream's duplicate window is the bus's dedup window. The server answers a duplicate with the
  sequence of the first copy; when that copy is already pruned, the result's seq is None. The
  window is measured by the NATS server's clock, and the server keeps the ids of the window in
  memory: ~200 B each while it runs (bench/nats_memory.py, nats-server 2.9.10), so 24 h at
  300 events/s is ~5 GB — lower `dedup_window` for high rates.
- consumer offsets (`committed`/`ack`) live in the JetStream key-value bucket
  `{cluster}_offsets`, one key per consumer. Not durable consumers with explicit ack: the
  contract is offset-based — `ack` may rewind (that is how replay starts over), which a JetStream
  ack floor cannot do without deleting the consumer, and `read(after_seq)` may be asked for any
  position (the API's long polls, replays, the dispatcher after a restart). A KV put costs one
  acknowledged JetStream write, like a consumer ack, and survives restarts the same way.
- reads go through ephemeral pull consumers without acks (cursors): `read(after_seq)` reuses the
  cursor that stopped at `after_seq`, so a sequential reader (the dispatcher) costs one pull
  request per batch; a jump creates a new cursor (one request more).
- lookups the log has no index for (`get(source, id)`, `by_id(id)`) read the store's event index
  (`index`, an `EventLookup`: platform.py hands it the store's `event_index` repository), which
  the rules dispatcher writes for every event it reads, in the unit of work of its decisions
  (`indexed_by_store` asks it to; backends/store/repositories/events.py): the index gives seqs,
  each fetched by one direct get and checked (a row may outlive its event). Events appended but
  not indexed yet — the dispatcher lags by its batch, or is stopped — are found by scanning the
  stream past the index's highest seq (read before the index is asked, so nothing indexed in
  between is missed), on the namespace's subject: a scan as long as the dispatcher's lag, at
  most the last UNINDEXED_SCAN_LIMIT events (a warning says when the lag is longer; an event
  the dispatcher skipped as poison is indexed when it is recorded as skipped; an index ahead of
  the log — the stream was deleted, the store kept — is not trusted past the log's end, and
  the dispatcher's rows replace its stale ones seq by seq). Without an index
  (`open_bus` with none: tools, tests) every lookup is that bounded scan of the last
  UNINDEXED_SCAN_LIMIT events. The cost moved to the store's disk: one row per retained event
  (~150 B on SQLite, ~230 B on PostgreSQL with its indexes, for a UUID id), pruned with the
  events' retention. The NATS server's memory no longer grows with the number of retained
  events: bench/nats_memory.py, 200,000 events, bytes per event above one plain subject — this
  layout 211 while running (the dedup window's ids) and 0 after a restart; the subject per event
  it replaced 381 and 222 (~40 GB at 300 events/s for 7 days). `since` finds its start
  by a binary search on `Ondo-Received-At` (log2(n) direct gets), then scans, filtering the
  namespace on the server (subject) and the type glob here. `tail` with a filter scans backwards
  from the end in growing chunks, at most `TAIL_SCAN_LIMIT` events.
- time is the bus's clock (`received_at` in a header), as for the other backends; `since` and
  `prune` assume it grows with the sequence (prune removes a prefix of the stream).

Durability: `append` returns once JetStream acknowledged every message (published pipelined, the
acknowledgements gathered). An acknowledged message is written by nats-server to its store (it
survives `kill -9` of nats-server or of ondo) but not fsynced at each write: against power loss,
run a replicated stream (`?replicas=3` on a NATS cluster). When NATS is unreachable, or an
acknowledgement does not come within `timeout`, `append` raises BusError: never a false success.
A failed append may still have reached the stream; sending the same events again is safe (dedup).
The client reconnects by itself; cursors lost with the server are recreated.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

import nats
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.errors import Error as NatsError
from nats.js import JetStreamContext
from nats.js.api import (
    AckPolicy,
    ConsumerConfig,
    DeliverPolicy,
    DiscardPolicy,
    KeyValueConfig,
    RetentionPolicy,
    StorageType,
    StreamConfig,
)
from nats.js.errors import BucketNotFoundError, KeyNotFoundError, NotFoundError
from nats.js.kv import KeyValue

from ondo.backends.bus import nats_wire as wire
from ondo.backends.bus.base import (
    DEFAULT_DEDUP_WINDOW_S,
    DEFAULT_NAMESPACE,
    DEFAULT_PRUNE_LIMIT,
    AppendResult,
    BusCounters,
    EventLookup,
    StoredEvent,
    type_matches,
)
from ondo.backends.bus.nats_options import NatsOptions, parse_nats_url
from ondo.backends.bus.waiters import POLL_INTERVAL_S, Waiters
from ondo.errors import BusClosed, BusError, ConfigError, PayloadTooLarge
from ondo.events import DEFAULT_MAX_EVENT_BYTES, CloudEvent
from ondo.units import size_text

log = logging.getLogger(__name__)

MAX_CURSORS = 8  # parked read cursors (the dispatcher, API long polls, replays)
CURSOR_IDLE_S = 300.0  # the server deletes a parked cursor unused this long
SCAN_BATCH = 1000
TAIL_CHUNK = 1000
TAIL_SCAN_LIMIT = 100_000
LOOKUP_LIMIT = 1000  # seqs one lookup takes from the index
UNINDEXED_SCAN_LIMIT = 100_000  # events a lookup scans past the index (or without one) at most
EXPECTED_STREAM = "Nats-Expected-Stream"  # JetStream refuses the message if another stream has it
HEADER_ROOM = 512  # bytes the subject and headers take besides the event


def open_bus(
    url: str,
    *,
    options: dict[str, str] | None = None,
    cluster: str = "ondo",
    clock: Callable[[], float] = time.time,
    max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES,
    dedup_window_s: float = DEFAULT_DEDUP_WINDOW_S,
    index: EventLookup | None = None,
) -> NatsBus:
    parsed = parse_nats_url(url, options or {}, cluster)
    if parsed.max_age_s and dedup_window_s > parsed.max_age_s:
        raise ConfigError(
            f"bus URL {url!r}: the dedup window ({dedup_window_s:g} s) is longer than max_age "
            f"({parsed.max_age_s:g} s); JetStream refuses that: lower dedup_window or raise max_age"
        )
    return NatsBus(
        parsed,
        url=url,
        clock=clock,
        max_event_bytes=max_event_bytes,
        dedup_window_s=dedup_window_s,
        index=index,
    )


class NatsBus:
    def __init__(
        self,
        options: NatsOptions,
        *,
        url: str,
        clock: Callable[[], float] = time.time,
        max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES,
        dedup_window_s: float = DEFAULT_DEDUP_WINDOW_S,
        index: EventLookup | None = None,
    ) -> None:
        self.options = options
        self.index = index
        self.indexed_by_store = index is not None
        self.url = url
        self.counters = BusCounters()
        self.max_event_bytes = max_event_bytes
        self.dedup_window_s = dedup_window_s
        self._clock = clock
        self._nc: Client | None = None
        self._js: JetStreamContext | None = None
        self._kv: KeyValue | None = None
        self._publisher: wire.Publisher | None = None
        self._connecting = asyncio.Lock()
        self._cursors: dict[int, wire.Cursor] = {}  # parked, by the seq they deliver next
        self._known_last = 0
        self._last_error: Exception | None = None
        self._waiters = Waiters()
        self._closed = False

    # --- connection ------------------------------------------------------------------------

    async def _connection(self) -> tuple[Client, JetStreamContext]:
        self._check_open()
        if self._nc is None:
            async with self._connecting:
                if self._nc is None:
                    await self._connect()
        assert self._nc is not None and self._js is not None
        if not self._nc.is_connected:
            raise BusError(self._unreachable("the connection is down; reconnecting"))
        return self._nc, self._js

    async def _connect(self) -> None:
        try:
            # nats-py retries a first connection as often as a reconnection (for ever here):
            # give up after `timeout`, so a wrong URL or a stopped server is an error at once.
            async with asyncio.timeout(self.options.timeout_s):
                nc = await self._dial()
        except (NatsError, OSError, TimeoutError) as exc:
            last = self._last_error  # why the attempts failed, rather than "timed out"
            raise BusError(self._unreachable(_describe(last or exc))) from exc
        js = nc.jetstream(timeout=self.options.timeout_s)
        try:
            await self._ensure_stream(js)
            self._kv = await self._ensure_offsets(js)
            await nc.subscribe(self.options.tick_subject, cb=self._on_tick)
        except (NatsError, OSError, TimeoutError) as exc:
            await nc.close()
            raise BusError(self._no_jetstream(exc)) from exc
        self._nc, self._js, self._publisher = nc, js, wire.Publisher(nc)

    async def _dial(self) -> Client:
        return await nats.connect(
            servers=list(self.options.servers),
            name=f"ondo-{self.options.cluster}",
            connect_timeout=max(1, round(self.options.timeout_s)),
            reconnect_time_wait=1,
            max_reconnect_attempts=-1,
            error_cb=self._on_error,
            disconnected_cb=self._on_disconnected,
            reconnected_cb=self._on_reconnected,
        )

    def _stream_config(self) -> StreamConfig:
        return StreamConfig(
            name=self.options.stream,
            subjects=[f"{self.options.subject_root}.>"],
            retention=RetentionPolicy.LIMITS,
            storage=StorageType.FILE,
            discard=DiscardPolicy.OLD,
            max_age=self.options.max_age_s,
            max_bytes=self.options.max_bytes or -1,
            duplicate_window=self.dedup_window_s,
            num_replicas=self.options.replicas,
            allow_direct=True,
        )

    async def _ensure_stream(self, js: JetStreamContext) -> None:
        wanted = self._stream_config()
        try:
            info = await js.stream_info(self.options.stream)
        except NotFoundError:
            await js.add_stream(wanted)
            return
        have = info.config
        if (have.max_age, have.max_bytes, have.duplicate_window) != (
            wanted.max_age,
            wanted.max_bytes,
            wanted.duplicate_window,
        ):
            await js.update_stream(wanted)

    async def _ensure_offsets(self, js: JetStreamContext) -> KeyValue:
        try:
            return await js.key_value(self.options.offsets_bucket)
        except BucketNotFoundError:
            config = KeyValueConfig(
                bucket=self.options.offsets_bucket,
                history=1,
                storage=StorageType.FILE,
                replicas=self.options.replicas,
            )
            return await js.create_key_value(config)

    async def _on_error(self, exc: Exception) -> None:
        self._last_error = exc
        log.debug("NATS client error on %s: %s", self.url, exc)

    async def _on_disconnected(self) -> None:
        if not self._closed:
            log.warning("lost the connection to NATS at %s; reconnecting", self.url)

    async def _on_reconnected(self) -> None:
        log.warning("reconnected to NATS at %s", self.url)

    async def _on_tick(self, msg: Msg) -> None:
        with contextlib.suppress(ValueError):
            self._saw(int(msg.data))

    def _saw(self, seq: int) -> None:
        if seq > self._known_last:
            self._known_last = seq
            self._waiters.notify(seq)

    def _unreachable(self, why: str) -> str:
        return (
            f"NATS at {self.url} is unreachable ({why}): is nats-server running there with "
            "JetStream (`nats-server -js`)? Or choose another bus with --bus / ONDO_BUS"
        )

    def _no_jetstream(self, exc: Exception) -> str:
        return (
            f"NATS at {self.url} did not set up the stream {self.options.stream} "
            f"({_describe(exc)}): is JetStream enabled (`nats-server -js`)?"
        )

    def _failed(self, what: str, exc: Exception) -> BusError:
        return BusError(f"{what} on NATS at {self.url} failed: {_describe(exc)}")

    # --- writes ----------------------------------------------------------------------------

    async def append(
        self, events: Sequence[CloudEvent], namespace: str = DEFAULT_NAMESPACE
    ) -> list[AppendResult]:
        self._check_open()
        for event in events:
            event.check_size(self.max_event_bytes)
        if not events:
            return []
        nc, _ = await self._connection()
        self._check_payloads(nc, events)
        now = self._clock()
        root = self.options.subject_root
        messages = [
            (
                wire.event_subject(root, namespace),
                event.encoded,
                {**wire.headers(event, namespace, now), EXPECTED_STREAM: self.options.stream},
            )
            for event in events
        ]
        assert self._publisher is not None
        try:
            async with asyncio.timeout(self.options.timeout_s):
                acks = await self._publisher.publish(messages)
        except (NatsError, OSError, TimeoutError) as exc:
            raise BusError(
                f"appending {len(events)} event(s) to NATS at {self.url} was not acknowledged "
                f"({_describe(exc)}); they may or may not be stored: sending them again is "
                "safe (duplicates are dropped)"
            ) from exc
        results = await self._results(acks)
        self.counters.append_calls += 1
        self.counters.transactions += 1
        written = [r.seq for r in results if not r.duplicate and r.seq is not None]
        if written:
            self._saw(max(written))
            with contextlib.suppress(NatsError):
                await nc.publish(self.options.tick_subject, str(max(written)).encode())
        return results

    def _check_payloads(self, nc: Client, events: Sequence[CloudEvent]) -> None:
        limit = nc.max_payload - HEADER_ROOM
        for event in events:
            if len(event.encoded) > limit:
                raise PayloadTooLarge(
                    f"event {event.id!r} from {event.source!r} is "
                    f"{size_text(len(event.encoded))}; NATS at {self.url} takes at most "
                    f"{size_text(limit)} per event (raise max_payload in nats-server's "
                    "configuration, or send a reference to large data instead)"
                )

    async def _results(self, acks: list[tuple[int, bool]]) -> list[AppendResult]:
        first = await self._first_seq() if any(dup for _, dup in acks) else 0
        results = []
        for seq, duplicate in acks:
            if duplicate:
                self.counters.duplicates += 1
                results.append(AppendResult(seq if seq >= first else None, True))
            else:
                self.counters.events_written += 1
                results.append(AppendResult(seq, False))
        return results

    async def ack(self, consumer: str, seq: int) -> None:
        kv = await self._offsets()
        try:
            await kv.put(_offset_key(consumer), str(seq).encode())
        except (NatsError, OSError, TimeoutError) as exc:
            raise self._failed(f"recording the position of {consumer!r}", exc) from exc

    async def committed(self, consumer: str) -> int:
        kv = await self._offsets()
        try:
            entry = await kv.get(_offset_key(consumer))
        except KeyNotFoundError:
            return 0
        except (NatsError, OSError, TimeoutError) as exc:
            raise self._failed(f"reading the position of {consumer!r}", exc) from exc
        return int(entry.value or b"0")

    async def _offsets(self) -> KeyValue:
        await self._connection()
        assert self._kv is not None
        return self._kv

    async def prune(self, before: datetime, limit: int = DEFAULT_PRUNE_LIMIT) -> int:
        cut = await self._first_received_at_or_after(before.timestamp())
        first = await self._first_seq()
        cut = min(cut, first + max(0, limit))  # the oldest `limit` seqs at most
        if cut <= first:
            return 0
        reply = await self._api(f"STREAM.PURGE.{self.options.stream}", {"seq": cut})
        return int(reply.get("purged", 0))

    # --- reads -----------------------------------------------------------------------------

    async def read(self, after_seq: int, limit: int = 500) -> list[StoredEvent]:
        self._check_open()
        if limit <= 0:
            return []
        cursor = self._cursors.pop(after_seq + 1, None)
        if cursor is None:
            cursor = await self._new_cursor(after_seq + 1, f"{self.options.subject_root}.>")
        try:
            found = await self._pull(cursor, limit)
        except wire.CursorGone:
            await self._drop(cursor)
            cursor = await self._new_cursor(after_seq + 1, f"{self.options.subject_root}.>")
            found = await self._pull(cursor, limit)
        except Exception:
            await self._drop(cursor)
            raise
        await self._park(cursor)
        return found

    async def wait(self, after_seq: int, timeout: float) -> None:
        self._check_open()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + max(0.0, timeout)
        while not self._closed:
            if self._known_last > after_seq or await self.last_seq() > after_seq:
                return
            remaining = deadline - loop.time()
            if remaining <= 0:
                return
            # Woken by an append's tick (ours or another process's); a lost tick costs 1 s.
            slice_s = min(remaining, POLL_INTERVAL_S)
            await self._waiters.wait(after_seq, slice_s, lambda: self._known_last)

    async def last_seq(self) -> int:
        _, last = await self._state()
        self._saw(last)
        return last

    async def get(
        self, source: str, id: str, namespace: str = DEFAULT_NAMESPACE
    ) -> StoredEvent | None:
        def wanted(stored: StoredEvent) -> bool:
            return (stored.event.source, stored.event.id, stored.namespace) == (
                source,
                id,
                namespace,
            )

        high = await self._indexed_up_to()  # first: rows indexed after it are scanned for
        if self.index is not None:
            for seq in await self.index.seqs_of(namespace, source, id, LOOKUP_LIMIT):
                stored = await self._at(seq)
                if stored is not None and wanted(stored):
                    return stored
        found = await self._scan_unindexed(high, namespace, wanted, 1)
        return found[0] if found else None

    async def by_id(self, id: str, namespace: str | None = None) -> list[StoredEvent]:
        def wanted(stored: StoredEvent) -> bool:
            return stored.event.id == id and namespace in (None, stored.namespace)

        found: dict[int, StoredEvent] = {}
        high = await self._indexed_up_to()
        if self.index is not None:
            seqs = await self.index.seqs_by_id(id, namespace, LOOKUP_LIMIT)
            for stored in await asyncio.gather(*(self._at(seq) for seq in seqs)):
                if stored is not None and wanted(stored):
                    found[stored.seq] = stored
        for stored in await self._scan_unindexed(high, namespace, wanted, None):
            found[stored.seq] = stored
        return [found[seq] for seq in sorted(found)]

    async def since(
        self,
        time: datetime,
        type_glob: str | None = None,
        *,
        after_seq: int = 0,
        limit: int = 1000,
        namespace: str | None = None,
    ) -> list[StoredEvent]:
        cutoff = time.timestamp()
        start = await self._first_received_at_or_after(cutoff, after_seq + 1)
        subject = wire.namespace_filter(self.options.subject_root, namespace)
        return await self._scan(
            start,
            subject,
            lambda s: s.received_at >= cutoff and type_matches(type_glob, s.event.type),
            limit,
        )

    async def tail(
        self, limit: int, type_glob: str | None = None, namespace: str | None = None
    ) -> list[StoredEvent]:
        first, last = await self._state()
        if limit <= 0 or last < first:
            return []
        subject = wire.namespace_filter(self.options.subject_root, namespace)
        if type_glob is None and namespace is None:
            return await self._scan(max(first, last - limit + 1), subject, None, limit)
        found: list[StoredEvent] = []
        high, chunk = last, max(TAIL_CHUNK, limit)
        while high >= first and len(found) < limit and last - high < TAIL_SCAN_LIMIT:
            low = max(first, high - chunk + 1)
            part = await self._scan(
                low, subject, lambda s: type_matches(type_glob, s.event.type), None, high
            )
            found = part + found
            high, chunk = low - 1, min(chunk * 2, TAIL_SCAN_LIMIT)
        return found[-limit:]

    # --- reading machinery -----------------------------------------------------------------

    async def _new_cursor(self, start_seq: int, subject: str) -> wire.Cursor:
        nc, js = await self._connection()
        config = ConsumerConfig(
            deliver_policy=DeliverPolicy.BY_START_SEQUENCE,
            opt_start_seq=max(1, start_seq),
            ack_policy=AckPolicy.NONE,
            filter_subject=subject,
            inactive_threshold=CURSOR_IDLE_S,
            mem_storage=True,
            num_replicas=1,
        )
        try:
            info = await js.add_consumer(self.options.stream, config)
        except (NatsError, OSError, TimeoutError) as exc:
            raise self._failed("opening a reader", exc) from exc
        name = info.name
        assert name is not None
        return wire.Cursor(nc, self.options.stream, name, start_seq, self.options.timeout_s)

    async def _pull(self, cursor: wire.Cursor, limit: int) -> list[StoredEvent]:
        try:
            msgs = await cursor.pull(limit)
        except (NatsError, OSError, TimeoutError) as exc:
            raise self._failed("reading the log", exc) from exc
        return [
            wire.stored_event(m.metadata.sequence.stream, m, m.metadata.timestamp.timestamp())
            for m in msgs
        ]

    async def _park(self, cursor: wire.Cursor) -> None:
        displaced = self._cursors.pop(cursor.next_seq, None)
        self._cursors[cursor.next_seq] = cursor
        if displaced is not None:
            await self._drop(displaced)
        while len(self._cursors) > MAX_CURSORS:
            await self._drop(self._cursors.pop(next(iter(self._cursors))))

    async def _drop(self, cursor: wire.Cursor) -> None:
        await cursor.close()
        if self._js is not None and self._nc is not None and self._nc.is_connected:
            with contextlib.suppress(NatsError, OSError, TimeoutError):
                await self._js.delete_consumer(self.options.stream, cursor.name)

    async def _scan(
        self,
        start_seq: int,
        subject: str,
        keep: Callable[[StoredEvent], bool] | None,
        limit: int | None,
        stop_seq: int | None = None,
    ) -> list[StoredEvent]:
        """Events from `start_seq` on `subject` that `keep` takes, until `limit` or `stop_seq`."""
        cursor = await self._new_cursor(start_seq, subject)
        found: list[StoredEvent] = []
        try:
            while True:
                batch = await self._pull(cursor, SCAN_BATCH)
                for stored in batch:
                    if stop_seq is not None and stored.seq > stop_seq:
                        return found
                    if keep is None or keep(stored):
                        found.append(stored)
                        if limit is not None and len(found) >= limit:
                            return found
                if len(batch) < SCAN_BATCH:
                    return found
        except wire.CursorGone as exc:
            raise BusError(f"a reader of NATS at {self.url} vanished mid-scan ({exc})") from exc
        finally:
            await self._drop(cursor)

    async def _at(self, seq: int) -> StoredEvent | None:
        """The event at `seq` (one direct get), or None if the log no longer holds it."""
        msg = await self._direct({"seq": seq})
        return None if msg is None else _direct_event(msg)

    async def _indexed_up_to(self) -> int:
        """The index's highest seq, read BEFORE the index is asked: the dispatcher indexes in
        seq order, a chunk per commit, so every event up to it is in the index by then, and
        whatever it indexes later is past it, where the scan looks."""
        return await self.index.highest_seq() if self.index is not None else 0

    async def _scan_unindexed(
        self,
        high: int,
        namespace: str | None,
        keep: Callable[[StoredEvent], bool],
        limit: int | None,
    ) -> list[StoredEvent]:
        """What `keep` takes of the events past seq `high` (the index's highest), at most the
        last UNINDEXED_SCAN_LIMIT of them: the dispatcher's lag, when it keeps up."""
        first, last = await self._state()
        if high > last:  # the index names seqs the log never reached: it was reset, not the store
            log.warning(
                "the event index names seqs up to %d but NATS at %s holds up to %d (was the "
                "stream deleted?): lookups scan the log until the dispatcher indexes it again",
                high,
                self.url,
                last,
            )
            high = 0
        start = max(first, high + 1)
        if last - start + 1 > UNINDEXED_SCAN_LIMIT:
            log.warning(
                "%d events of NATS at %s are not in the event index (%s); a lookup scans only "
                "the last %d",
                last - start + 1,
                self.url,
                "is the rules dispatcher running?" if self.index is not None else "none is set",
                UNINDEXED_SCAN_LIMIT,
            )
            start = last - UNINDEXED_SCAN_LIMIT + 1
        if start > last:
            return []
        subject = wire.namespace_filter(self.options.subject_root, namespace)
        return await self._scan(start, subject, keep, limit, last)

    async def _first_received_at_or_after(self, cutoff: float, from_seq: int = 1) -> int:
        """The lowest seq ≥ `from_seq` from which on every event was received at or after `cutoff`.

        A binary search on the events' `received_at` (log2(n) direct gets): the bus's clock is
        assumed to grow with the seq, as it does for one process and for synchronized clocks.
        """
        first, last = await self._state()
        low, high = max(first, from_seq), last + 1
        while low < high:
            middle = (low + high) // 2
            msg = await self._direct(
                {"seq": middle, "next_by_subj": f"{self.options.subject_root}.>"}
            )
            if msg is None:
                high = middle
                continue
            stored = _direct_event(msg)
            if stored.received_at >= cutoff:
                high = middle
            else:
                low = stored.seq + 1
        return low

    async def _direct(self, request: dict[str, Any]) -> Msg | None:
        nc, _ = await self._connection()
        try:
            msg = await nc.request(
                f"$JS.API.DIRECT.GET.{self.options.stream}",
                json.dumps(request).encode(),
                timeout=self.options.timeout_s,
            )
        except (NatsError, OSError, TimeoutError) as exc:
            raise self._failed("looking up an event", exc) from exc
        status = wire.status_of(msg)
        if status == "404":
            return None
        if status is not None:
            raise BusError(f"NATS at {self.url} answered a lookup with status {status}")
        return msg

    async def _state(self) -> tuple[int, int]:
        """The stream's first and last seq (first = last + 1 when it is empty)."""
        reply = await self._api(f"STREAM.INFO.{self.options.stream}", None)
        state = reply.get("state", {})
        return max(1, int(state.get("first_seq", 0))), int(state.get("last_seq", 0))

    async def _first_seq(self) -> int:
        return (await self._state())[0]

    async def _api(self, endpoint: str, body: dict[str, Any] | None) -> dict[str, Any]:
        nc, _ = await self._connection()
        payload = json.dumps(body).encode() if body is not None else b""
        try:
            msg = await nc.request(f"$JS.API.{endpoint}", payload, timeout=self.options.timeout_s)
            reply: dict[str, Any] = json.loads(msg.data)
        except (NatsError, OSError, TimeoutError, ValueError) as exc:
            raise self._failed(endpoint.split(".")[1].lower(), exc) from exc
        if "error" in reply:
            raise BusError(f"NATS at {self.url} refused {endpoint}: {reply['error']}")
        return reply

    # --- lifecycle -------------------------------------------------------------------------

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._waiters.close()
        cursors, self._cursors = list(self._cursors.values()), {}
        nc, self._nc = self._nc, None
        if nc is None:
            return
        with contextlib.suppress(NatsError, OSError, TimeoutError):
            async with asyncio.timeout(self.options.timeout_s):
                for cursor in cursors:
                    await cursor.close()
                    if nc.is_connected and self._js is not None:
                        await self._js.delete_consumer(self.options.stream, cursor.name)
        with contextlib.suppress(NatsError, OSError, TimeoutError):
            async with asyncio.timeout(self.options.timeout_s):
                await nc.close()

    def _check_open(self) -> None:
        if self._closed:
            raise BusClosed(
                f"the event log on NATS at {self.url} is closed (the platform is shutting down)"
            )


def _offset_key(consumer: str) -> str:
    if wire._PLAIN_TOKEN.fullmatch(consumer):
        return consumer
    return "=" + consumer.encode().hex()


def _direct_event(msg: Msg) -> StoredEvent:
    hdrs = msg.headers or {}
    seq = int(hdrs.get("Nats-Sequence", 0))
    stamp = hdrs.get("Nats-Time-Stamp", "")
    return wire.stored_event(seq, msg, _rfc3339_seconds(stamp))


def _rfc3339_seconds(stamp: str) -> float:
    """NATS writes nanoseconds (`2026-12-03T12:19:01.067019459Z`); Python parses microseconds."""
    head, _, fraction = stamp.rstrip("Z").partition(".")
    try:
        whole = datetime.fromisoformat(head + "+00:00").timestamp()
    except ValueError:
        return 0.0
    return whole + float(f"0.{fraction or 0}")


def _describe(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
