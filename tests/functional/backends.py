"""The backends the functional suite's platforms run on, chosen for the whole run.

`ONDO_TEST_BACKEND=embedded` (the default): each platform keeps its bus and store in SQLite files
in its data dir, as `ondo up` does with nothing configured.

`ONDO_TEST_BACKEND=distributed`: each platform runs on PostgreSQL (`--store`, tests/services.py
POSTGRES_URL) and NATS JetStream (`--bus`, NATS_URL) under a cluster name of its own, one per data
dir (a platform restarted on the same data dir finds its state again). After each test, the
clusters of its platforms are dropped (PostgreSQL schema, NATS streams and buckets); a platform
still running then (a module's shared platform) is dropped at the end of the session.

A missing service is a skip locally and a failure in CI (tests/services.py). Tests that look at
the embedded engines' files are marked `embedded_only` and skip in the distributed run.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from tests.services import (
    NATS_URL,
    POSTGRES_URL,
    drop_cluster,
    require_nats,
    require_postgres,
    unique_cluster,
)

BACKENDS = ("embedded", "distributed")


def configured() -> str:
    """The run's backend, from ONDO_TEST_BACKEND."""
    name = os.environ.get("ONDO_TEST_BACKEND", "embedded") or "embedded"
    if name not in BACKENDS:
        raise ValueError(f"ONDO_TEST_BACKEND={name!r}: expected one of {', '.join(BACKENDS)}")
    return name


def distributed() -> bool:
    return configured() == "distributed"


class Alive(Protocol):
    def alive(self) -> bool: ...


@dataclass
class _Cluster:
    name: str
    users: list[Alive] = field(default_factory=list)


_by_data_dir: dict[Path, _Cluster] = {}


def environment(data_dir: Path, user: Alive) -> dict[str, str]:
    """The ONDO_* settings that put a platform on the run's backend (none when embedded)."""
    if not distributed():
        return {}
    require_postgres()
    require_nats()
    key = data_dir.resolve()
    cluster = _by_data_dir.setdefault(key, _Cluster(unique_cluster("f")))
    if user not in cluster.users:
        cluster.users.append(user)
    return {"ONDO_STORE": POSTGRES_URL, "ONDO_BUS": NATS_URL, "ONDO_CLUSTER": cluster.name}


def drop_finished() -> None:
    """Drop every cluster whose platforms have all stopped (after a test)."""
    for key, cluster in list(_by_data_dir.items()):
        if not any(user.alive() for user in cluster.users):
            del _by_data_dir[key]
            drop_cluster(cluster.name)


def drop_all() -> None:
    """Drop every cluster left (at the end of the session: its platforms are stopped by then)."""
    for key, cluster in list(_by_data_dir.items()):
        del _by_data_dir[key]
        drop_cluster(cluster.name)
