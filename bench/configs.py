"""The backend configurations a bench runs `ondo up` on, several in one run.

- `embedded`: the default, SQLite bus and store in the platform's data dir.
- `distributed`: PostgreSQL (`--store`, default postgresql://postgres@127.0.0.1:5432/test) and
  NATS JetStream (`--bus`, default nats://127.0.0.1:4222) under a cluster name of its own
  (`--cluster`, default `bench_<random>`; a random one is dropped at the end: schema and streams).

`--configs embedded,distributed` measures both in the same run, one after the other, each on a
fresh platform; `--bus`/`--store`/`--cluster` alone measure that one configuration (`given`;
what is not given stays embedded), and with --configs they replace the distributed defaults.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository: tests.services

from tests.services import delete_nats_streams

POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"
NATS_URL = "nats://127.0.0.1:4222"
NAMES = ("embedded", "distributed")


@dataclass(frozen=True)
class BackendConfig:
    name: str
    bus: str = ""  # "" = the embedded SQLite bus
    store: str = ""  # "" = the embedded SQLite store
    cluster: str = ""  # "" = ondo's default
    drop_after: bool = False  # the cluster was made up for this run

    def env(self) -> dict[str, str]:
        """The ONDO_* settings for `ondo up` (the embedded defaults are left unset)."""
        settings = {"ONDO_BUS": self.bus, "ONDO_STORE": self.store, "ONDO_CLUSTER": self.cluster}
        return {name: value for name, value in settings.items() if value}

    def describe(self) -> dict[str, str]:
        return {
            "bus": self.bus or "sqlite (data dir)",
            "store": self.store or "sqlite (data dir)",
            "cluster": self.cluster or "ondo",
        }

    def drop(self) -> None:
        """Delete the run's cluster from PostgreSQL and NATS, if this run made it up."""
        if self.drop_after:
            asyncio.run(_drop(self))


EMBEDDED = BackendConfig("embedded")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--configs",
        default="",
        help="comma-separated configurations measured one after the other: embedded,distributed",
    )
    parser.add_argument("--bus", default="", help="ONDO_BUS for the platform (nats://...)")
    parser.add_argument("--store", default="", help="ONDO_STORE for the platform (postgresql://..)")
    parser.add_argument("--cluster", default="", help="ONDO_CLUSTER (default: bench_<random>)")


def chosen(args: argparse.Namespace) -> list[BackendConfig]:
    """The configurations asked for: --configs, else the one --bus/--store name, else embedded."""
    names = [n.strip() for n in args.configs.split(",") if n.strip()]
    unknown = [n for n in names if n not in NAMES]
    if unknown:
        raise SystemExit(f"--configs: unknown {', '.join(unknown)}; expected {', '.join(NAMES)}")
    if names:
        return [_config(name, args) for name in names]
    if args.bus or args.store:  # exactly what was given; the other one stays embedded
        return [BackendConfig("given", args.bus, args.store, *_cluster(args))]
    return [EMBEDDED]


def _config(name: str, args: argparse.Namespace) -> BackendConfig:
    if name == "embedded":
        return EMBEDDED
    return BackendConfig(name, args.bus or NATS_URL, args.store or POSTGRES_URL, *_cluster(args))


def _cluster(args: argparse.Namespace) -> tuple[str, bool]:
    """(cluster name, drop it afterwards): a made-up one is dropped, a given one kept."""
    if args.cluster:
        return args.cluster, False
    return f"bench_{uuid.uuid4().hex[:10]}", True


async def _drop(config: BackendConfig) -> None:
    if config.store.startswith("postgres"):
        import asyncpg

        conn = await asyncpg.connect(config.store)
        try:
            await conn.execute(f'DROP SCHEMA IF EXISTS "{config.cluster}" CASCADE')
        finally:
            await conn.close()
    if config.bus.startswith("nats"):
        await delete_nats_streams(config.cluster, config.bus)
