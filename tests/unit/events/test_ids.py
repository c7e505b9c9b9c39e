"""Time-ordered ids: valid UUIDv7, unique, and sorted by the millisecond they were made in."""

from __future__ import annotations

import os
import time
import uuid

from ondo.ids import uuid7, uuid7_hex, uuid7_many


def test_an_id_is_a_version_7_rfc_uuid_carrying_the_current_millisecond() -> None:
    before = time.time_ns() // 1_000_000
    text = uuid7()
    after = time.time_ns() // 1_000_000
    parsed = uuid.UUID(text)
    assert str(parsed) == text and parsed.version == 7 and parsed.variant == uuid.RFC_4122
    assert before <= parsed.int >> 80 <= after


def test_ids_are_unique_and_sort_by_the_millisecond_they_were_made_in() -> None:
    made = [uuid7_hex() for _ in range(20_000)]
    assert len(set(made)) == len(made)
    first = uuid7_hex()
    time.sleep(0.002)
    assert uuid7_hex() > first
    assert [h[:12] for h in made] == sorted(h[:12] for h in made)  # the timestamp part


def test_a_forked_child_does_not_repeat_its_parents_random_bits() -> None:
    uuid7_hex()  # the parent now holds random bits drawn ahead for its next ids
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its next id's random part, to the parent
        os.write(write, uuid7_hex()[12:].encode())
        os._exit(0)
    os.close(write)
    child = os.read(read, 64).decode()
    os.close(read)
    os.waitpid(pid, 0)
    assert len(child) == 20 and child != uuid7_hex()[12:]


def test_ids_made_together_are_version_7_unique_and_of_their_millisecond() -> None:
    before = time.time_ns() // 1_000_000
    made = uuid7_many(3000)  # more than one pool of random bits
    after = time.time_ns() // 1_000_000
    parsed = [uuid.UUID(text) for text in made]
    assert [str(p) for p in parsed] == made and len(set(made)) == len(made)
    assert all(p.version == 7 and p.variant == uuid.RFC_4122 for p in parsed)
    assert all(before <= p.int >> 80 <= after for p in parsed)
    assert uuid7_many(0) == [] and len(uuid7_many(1)) == 1
