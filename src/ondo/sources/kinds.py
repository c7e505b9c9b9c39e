"""Which module serves each `kind:` of source, imported only when a source of that kind is
deployed or runs, so that a kind's library (aiomqtt, pyftpdlib, …) is needed only by its users."""

from __future__ import annotations

import importlib

from ondo.errors import ConfigError, SourceKindUnavailable
from ondo.sources.base import SourceKind

# kind -> (module exporting KIND, the extra that installs its library)
KIND_MODULES: dict[str, tuple[str, str]] = {
    "http": ("ondo.sources.http", ""),
    "schedule": ("ondo.sources.schedule", "schedule"),
    "ftp": ("ondo.sources.ftp", "ftp"),
    "bucket": ("ondo.sources.bucket", "bucket"),
    "postgres": ("ondo.sources.postgres", "postgres"),
    "sqlite": ("ondo.sources.sqlite", ""),
    "mqtt": ("ondo.sources.mqtt", "mqtt"),
    "smtp": ("ondo.sources.smtp", "smtp"),
    "ondo": ("ondo.sources.platform_events", ""),
}


def source_kind(kind: str) -> SourceKind:
    """The kind's implementation; ConfigError naming the known kinds, or how to install one."""
    found = KIND_MODULES.get(kind)
    if found is None:
        raise ConfigError(f"unknown source kind {kind!r}; known kinds: {', '.join(KIND_MODULES)}")
    module_name, extra = found
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        fix = f"; install it with: pip install 'ondo[{extra}]'" if extra else ""
        raise SourceKindUnavailable(f"source kind {kind!r} is not available: {exc}{fix}") from exc
    kind_impl: SourceKind = module.KIND
    return kind_impl
