"""The backends the functional suite's platforms run on, chosen for the whole run.

`ONDO_TEST_BACKEND=embedded` (the default): each platform keeps its bus and store in SQLite files
in its data dir, as `ondo up` does with nothing configured.

`ONDO_TEST_BACKEND=distributed`: each platform runs on PostgreSQL (`--store`, tests/services.py
POSTGRES_URL) and NATS JetStream (`--bus`, NATS_URL) under a cluster name of its own, one per data
dir (a platform restarted on the same data dir finds its state again). After each test, the
clusters of its platforms are dropped (PostgreSQL schema, NATS streams and buckets); a platform
still running then (a module's shared platform) is dropped at the end of the session.

`ONDO_TEST_BACKEND=nats-bus`: the bus on NATS JetStream, the store embedded (SQLite), with the
same cluster bookkeeping: the NATS bus proven through the whole suite on its own.

A missing service is a skip locally and a failure in CI (tests/services.py). Tests that look at
the embedded engines' files are marked `embedded_only` and skip in the distributed run.
"""

from __future__ import annotations

import base64
import os
from pathlib import Path
from typing import Protocol

from tests.services import (
    NATS_URL,
    POSTGRES_URL,
    drop_cluster,
    drop_nats_cluster,
    require_nats,
    require_postgres,
    unique_cluster,
)

BACKENDS = ("embedded", "distributed", "nats-bus")
SECRETS_KEY = base64.urlsafe_b64encode(os.urandom(32)).decode()


def configured() -> str:
    """The run's backend, from ONDO_TEST_BACKEND."""
    name = os.environ.get("ONDO_TEST_BACKEND", "embedded") or "embedded"
    if name not in BACKENDS:
        raise ValueError(f"ONDO_TEST_BACKEND={name!r}: expected one of {', '.join(BACKENDS)}")
    return name


def distributed() -> bool:
    """Whether platforms run on shared servers under cluster names (any backend but embedded)."""
    return configured() != "embedded"


class Alive(Protocol):
    def alive(self) -> bool: ...


_names: dict[Path, str] = {}  # data dir -> its cluster
_users: dict[str, list[Alive]] = {}  # cluster -> the platforms that ran on it


def environment(data_dir: Path) -> dict[str, str]:
    """The ONDO_* settings that put a platform on the run's backend (none when embedded)."""
    if not distributed():
        return {}
    require_nats()
    cluster = _names.setdefault(data_dir.resolve(), unique_cluster("f"))
    if configured() == "nats-bus":
        return {"ONDO_BUS": NATS_URL, "ONDO_CLUSTER": cluster}
    require_postgres()
    return {
        "ONDO_STORE": POSTGRES_URL,
        "ONDO_BUS": NATS_URL,
        "ONDO_CLUSTER": cluster,
        # A shared store takes its secrets key from here (every node the same): one per run.
        "ONDO_SECRETS_KEY": SECRETS_KEY,
    }


def used(cluster: str | None, user: Alive) -> None:
    """Note that `user` runs on `cluster` (the run's, or one a test chose), to drop it later."""
    if not distributed() or not cluster:
        return
    users = _users.setdefault(cluster, [])
    if user not in users:
        users.append(user)


def drop_finished() -> None:
    """Drop every cluster whose platforms have all stopped (after a test)."""
    for cluster, users in list(_users.items()):
        if not any(user.alive() for user in users):
            del _users[cluster]
            _drop(cluster)


def drop_all() -> None:
    """Drop every cluster left (at the end of the session: its platforms are stopped by then)."""
    for cluster in list(_users):
        del _users[cluster]
        _drop(cluster)


def _drop(cluster: str) -> None:
    if configured() == "nats-bus":
        drop_nats_cluster(cluster)
    else:
        drop_cluster(cluster)
