"""The audit chain (security/audit.py) on SQLite and PostgreSQL: appends, listings, and what
`verify` finds after someone with write access to the database changed it."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import pytest

from ondo.backends.store import Store
from ondo.backends.store.repositories.audit import GENESIS, AuditEntry, AuditRecord, entry_hash
from ondo.errors import ValidationError
from ondo.security.audit import SUPPRESSED, AuditLog, Verification
from ondo.security.audit_anchor import Head, HeadAnchor
from ondo.security.refusals import RefusalGate
from tests.unit.store.conftest import StoreFactory

T = TypeVar("T")


def run_with_log(
    make_store: StoreFactory,
    tmp_path: Path,
    body: Callable[[AuditLog, Store], Awaitable[T]],
) -> T:
    """`body(log, store)` on a fresh store, with an anchor file in `tmp_path`."""

    async def main() -> T:
        store = await make_store()
        try:
            ticks = iter(range(1_000_000))
            log = AuditLog(store, lambda: 1000.0 + next(ticks), HeadAnchor(tmp_path / "head"))
            return await body(log, store)
        finally:
            await store.close()

    return asyncio.run(main())


async def _fill(log: AuditLog, count: int) -> None:
    for i in range(count):
        await log.record("clinic", "bob", "POST /v1/rules", f"rule:r{i}", about="alice", n=i)


async def _sql(store: Store, statement: str, *params: object) -> None:
    await store.database.sql.execute(statement, params)


def test_entries_chain_and_read_back_with_their_hashes(
    make_store: StoreFactory, tmp_path: Path
) -> None:
    async def body(log: AuditLog, store: Store) -> Verification:
        first = await log.record("clinic", "bob", "POST /v1/rules", "rule:bp", about="alice")
        second = await log.record(
            "clinic", "admin", "DELETE /v1/functions/{name}", "function:f", outcome="failed"
        )
        assert (first.seq, first.prev_hash) == (1, GENESIS)
        assert (second.seq, second.prev_hash) == (2, first.hash)
        assert second.hash == entry_hash(2, second.record, first.hash)
        read = await store.repos.audit.chain(0, 10)
        assert read == [first, second]
        return await log.verify()

    verdict = run_with_log(make_store, tmp_path, body)
    assert verdict.ok and verdict.checked == 2 and verdict.head_seq == 2
    assert json.loads((tmp_path / "head").read_text())["seq"] == 2


def test_awkward_details_hash_the_same_after_the_store(
    make_store: StoreFactory, tmp_path: Path
) -> None:
    """What JSON or PostgreSQL would change (int keys, tuples, NUL, objects) is changed before
    hashing, so a round trip through the store does not break the chain."""

    async def body(log: AuditLog, store: Store) -> Verification:
        await log.record(
            "default",
            "adm\x00in",
            "POST /v1/x",
            "res\x00ource",
            weird={1: (1, 2)},
            path=Path("/tmp/x"),
            text="nul\x00inside",
            big=1.5e300,
        )
        await log.record("default", "admin", "POST /v1/x", huge="x" * 100_000)
        [first, second] = await store.repos.audit.chain(0, 10)
        assert first.record.principal == "adm\ufffdin"
        assert first.record.detail["weird"] == {"1": [1, 2]}
        assert first.record.detail["text"] == "nul\x00inside"
        assert "cut" in second.record.detail and second.record.detail["keys"] == ["huge"]
        return await log.verify()

    assert run_with_log(make_store, tmp_path, body).ok


def test_listing_filters_and_pages(make_store: StoreFactory, tmp_path: Path) -> None:
    async def body(log: AuditLog, store: Store) -> None:
        await log.record("clinic", "bob", "POST /v1/rules", "rule:bp", about="alice")
        await log.record("clinic", "alice", "POST /v1/grants", "grant:g1", about="alice")
        await log.record("clinic", "carol", "POST /v1/rules", "rule:other")
        await log.record("default", "bob", "POST /v1/rules", "rule:elsewhere", about="alice")
        repo = store.repos.audit
        assert [e.seq for e in await repo.listing("clinic", about="alice")] == [1, 2]
        assert [e.seq for e in await repo.listing("clinic", principal="bob")] == [1]
        assert [e.seq for e in await repo.listing("clinic", involving="alice")] == [1, 2]
        assert [e.seq for e in await repo.listing("clinic", involving="carol")] == [3]
        assert [e.seq for e in await repo.listing(None, principal="bob")] == [1, 4]
        assert [e.seq for e in await repo.listing("clinic", limit=2)] == [2, 3]  # the newest
        assert [e.seq for e in await repo.listing("clinic", after_seq=1, limit=1)] == [2]
        assert await repo.listing("clinic", after_seq=3) == []
        found = await repo.at(3)
        assert found is not None and found.record.principal == "carol"
        assert await repo.at(99) is None

    run_with_log(make_store, tmp_path, body)


def test_verify_names_a_modified_entry(make_store: StoreFactory, tmp_path: Path) -> None:
    async def body(log: AuditLog, store: Store) -> Verification:
        await _fill(log, 5)
        await _sql(store, "UPDATE audit_log SET principal = 'mallory' WHERE seq = 3")
        return await log.verify()

    verdict = run_with_log(make_store, tmp_path, body)
    assert verdict.broken_seq == 3 and "entry 3 was modified" in verdict.problem
    assert verdict.checked == 2 and verdict.head_seq == 2


def test_verify_names_a_deleted_middle_entry(make_store: StoreFactory, tmp_path: Path) -> None:
    async def body(log: AuditLog, store: Store) -> Verification:
        await _fill(log, 5)
        await _sql(store, "DELETE FROM audit_log WHERE seq = 2")
        return await log.verify()

    verdict = run_with_log(make_store, tmp_path, body)
    assert verdict.broken_seq == 2 and "entry 2 is missing" in verdict.problem


def test_verify_names_a_replaced_entry(make_store: StoreFactory, tmp_path: Path) -> None:
    """Replaced with an entry whose own hash is right (recomputed): the next one's link breaks."""

    async def body(log: AuditLog, store: Store) -> Verification:
        await _fill(log, 5)
        [second] = await store.repos.audit.chain(1, 1)
        forged = AuditRecord(second.record.at, "clinic", "bob", "POST /v1/rules", "rule:x", "ok")
        forged_hash = entry_hash(2, forged, second.prev_hash)
        await _sql(store, "DELETE FROM audit_log WHERE seq = 2")
        await store.repos.audit.append(AuditEntry(2, forged, second.prev_hash, forged_hash))
        return await log.verify()

    verdict = run_with_log(make_store, tmp_path, body)
    assert verdict.broken_seq == 3 and "entry 3 does not link to entry 2" in verdict.problem


def test_a_deleted_tail_is_found_by_the_anchor_only(
    make_store: StoreFactory, tmp_path: Path
) -> None:
    """Deleting the newest entries leaves a whole chain: only the head remembered outside the
    database (the anchor file, or one the operator kept) shows that something is gone."""

    async def body(log: AuditLog, store: Store) -> tuple[Verification, ...]:
        await _fill(log, 3)
        kept = (await log.verify()).head_seq, (await log.verify()).head_hash
        await _fill(log, 2)
        await _sql(store, "DELETE FROM audit_log WHERE seq >= 4")
        without_anchor = await AuditLog(store, lambda: 0.0).verify()
        with_file = await log.verify()
        (tmp_path / "head").unlink()
        operator_kept = await log.verify(expect=Head(*kept))
        operator_later = await log.verify(expect=Head(5, "0" * 64))
        return without_anchor, with_file, operator_kept, operator_later

    without_anchor, with_file, operator_kept, operator_later = run_with_log(
        make_store, tmp_path, body
    )
    assert without_anchor.ok and without_anchor.head_seq == 3
    assert with_file.broken_seq == 4 and "entries 4-5 or more are missing" in with_file.problem
    assert operator_kept.ok and operator_kept.anchors == (operator_kept.anchors[0],)
    assert operator_later.broken_seq == 4


def test_a_rewritten_chain_is_found_by_the_anchor(make_store: StoreFactory, tmp_path: Path) -> None:
    """Someone who recomputes every hash after changing an entry keeps the chain whole, but
    the anchored head's hash no longer matches."""

    async def body(log: AuditLog, store: Store) -> tuple[Verification, Verification]:
        await _fill(log, 3)
        entries = await store.repos.audit.chain(0, 10)
        await _sql(store, "DELETE FROM audit_log")
        prev = GENESIS
        for entry in entries:
            record = entry.record
            if entry.seq == 2:
                record = AuditRecord(record.at, "clinic", "bob", "nothing happened", "", "ok")
            rewritten = AuditEntry(entry.seq, record, prev, entry_hash(entry.seq, record, prev))
            await store.repos.audit.append(rewritten)
            prev = rewritten.hash
        return await AuditLog(store, lambda: 0.0).verify(), await log.verify()

    chain_only, anchored = run_with_log(make_store, tmp_path, body)
    assert chain_only.ok  # what the chain alone cannot show
    assert anchored.broken_seq == 3 and "rewritten" in anchored.problem


def test_a_damaged_anchor_is_reported(make_store: StoreFactory, tmp_path: Path) -> None:
    async def body(log: AuditLog, store: Store) -> None:
        await _fill(log, 1)
        (tmp_path / "head").write_text("{not json")
        with pytest.raises(ValidationError, match=r"audit anchor .* is damaged"):
            await log.verify()

    run_with_log(make_store, tmp_path, body)


def test_two_stores_appending_at_once_never_fork_the_chain(
    make_store: StoreFactory, tmp_path: Path, store_url: tuple[str, str]
) -> None:
    """Two processes' views of one PostgreSQL store (two pools, two logs, each with its own
    in-process lock): only the store's append lock keeps them from reading the same head."""
    if store_url[0].startswith("sqlite"):
        pytest.skip("an SQLite store belongs to one process (its data dir is locked)")

    async def main() -> Verification:
        one, two = await make_store(), await make_store()
        try:
            logs = [AuditLog(one, lambda: 1.0), AuditLog(two, lambda: 2.0)]
            await asyncio.gather(
                *(logs[i % 2].record("default", f"p{i}", "POST /v1/x", f"r{i}") for i in range(60))
            )
            entries = await one.repos.audit.chain(0, 100)
            assert [e.seq for e in entries] == list(range(1, 61))
            assert sorted(e.record.principal for e in entries) == sorted(f"p{i}" for i in range(60))
            return await logs[1].verify()
        finally:
            await one.close()
            await two.close()

    verdict = asyncio.run(main())
    assert verdict.ok and verdict.checked == 60


def test_refusals_past_the_share_become_one_summary_entry(
    make_store: StoreFactory, tmp_path: Path
) -> None:
    async def body(log: AuditLog, store: Store) -> list[AuditEntry]:
        log.gate = RefusalGate(lambda: 0.0, per_source=2, overall=100, window_s=60)
        for _ in range(10):
            await log.refused("10.1.2.3", "default", "", "GET /v1/rules", token="ab12cd34")
        await log.close()  # writes what was only counted
        return await store.repos.audit.chain(0, 100)

    entries = run_with_log(make_store, tmp_path, body)
    assert [e.record.action for e in entries] == ["GET /v1/rules"] * 2 + [SUPPRESSED]
    assert {e.record.outcome for e in entries} == {"denied"}
    assert entries[2].record.detail["count"] == 8
    assert entries[2].record.detail["source"] == "10.1.2.3"


def test_concurrent_appends_are_batched_in_order_and_each_caller_gets_its_entry(
    make_store: StoreFactory, tmp_path: Path
) -> None:
    async def body(log: AuditLog, store: Store) -> Verification:
        entries = await asyncio.gather(
            *(log.record("default", "admin", "POST /v1/x", f"r{i}") for i in range(250))
        )
        assert [e.record.resource for e in entries] == [f"r{i}" for i in range(250)]
        assert [e.seq for e in entries] == list(range(1, 251))  # arrival order, no gap
        assert await store.repos.audit.chain(0, 300) == list(entries)
        return await log.verify()

    verdict = run_with_log(make_store, tmp_path, body)
    assert (
        verdict.ok and verdict.checked == 250 and verdict.anchors == (f"250:{verdict.head_hash}",)
    )
