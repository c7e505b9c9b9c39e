"""`ondo.yaml`: read, validate strictly (unknown keys are errors), resolve paths."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ondo.deploy.permissions import parse_permissions
from ondo.deploy.sources import Directory, SourceDecl, parse_directory, parse_sources
from ondo.deploy.yamlsrc import MAX_MANIFEST_BYTES, Located, load
from ondo.destinations import parse_destination
from ondo.durations import accepted_forms, parse_duration
from ondo.errors import ConfigError, ConfigLimitExceeded, DurationError
from ondo.functions.model import (
    HANDLER_RE,
    MAX_EVENT_AGE_S,
    MAX_RETRIES,
    MAX_TIMEOUT_S,
    MIN_EVENT_AGE_S,
    NAME_RE,
    FunctionConfig,
)
from ondo.functions.shapes import SHAPES

MANIFEST_NAME = "ondo.yaml"
TOP_LEVEL_KEYS = ("name", "functions", "rules", "sources", "contacts", "groups")
FUNCTION_KEYS = (
    "code",
    "handler",
    "timeout",
    "memory",
    "concurrency",
    "network",
    "environment",
    "requirements",
    "async",
    "event",
    "permissions",
    "secrets",
)
ASYNC_KEYS = ("retries", "max_event_age", "on_failure")
DESTINATION_RE = re.compile(r"^(invoke|emit) +(\S+)$")
PLATFORM_ENV = ("ONDO_TOKEN", "ONDO_API_URL")  # set per invocation (runtime/bootstrap.py)
ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
SECRET_NAME_RE = re.compile(r"^[A-Z_][A-Z0-9_]{0,63}$")  # security/secrets.py NAME_RE


@dataclass(frozen=True)
class FunctionDecl:
    name: str
    code_dir: Path
    config: FunctionConfig
    requirements: Path | None
    where: str  # file:line, for errors found later (import failures)
    app_root: Path | None = None  # what a dependency build may see (requirements.py)


@dataclass(frozen=True)
class Manifest:
    app: str
    root: Path
    functions: dict[str, FunctionDecl]
    rules: list[Any] = field(default_factory=list)
    source: Located | None = None
    sources: dict[str, SourceDecl] = field(default_factory=dict)
    directory: Directory = field(default_factory=lambda: Directory({}, {}))


def read_manifest(
    app_dir: Path, app_name: str | None = None, origin: Path | None = None
) -> Manifest:
    path = app_dir / MANIFEST_NAME
    if not path.is_file():
        raise ConfigError(f"{path}: not found; an app directory needs an {MANIFEST_NAME}")
    size = path.stat().st_size
    if size > MAX_MANIFEST_BYTES:  # refused before reading it into memory
        raise ConfigLimitExceeded(
            f"{path}: is {size} bytes; the limit is {MAX_MANIFEST_BYTES} bytes"
            " (manifest size limit)"
        )
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text") from None
    return parse_manifest(text, app_dir, MANIFEST_NAME, app_name, origin)


def parse_manifest(
    text: str,
    root: Path,
    filename: str,
    app_name: str | None = None,
    origin: Path | None = None,
) -> Manifest:
    """`origin`: the app directory on the deploying machine, when `root` is a copy of it (a
    source's relative paths, such as a watched folder, are resolved against it)."""
    doc = load(text, filename)
    data = doc.data if doc.data is not None else {}
    if not isinstance(data, dict):
        raise doc.error(
            (), "the top level must be a mapping with keys: " + ", ".join(TOP_LEVEL_KEYS)
        )
    _no_unknown_keys(doc, (), data, TOP_LEVEL_KEYS)
    app = data.get("name", app_name or folder_app_name(root))
    if not isinstance(app, str) or not NAME_RE.match(app):
        how = "" if "name" in data else f" (from the folder's name); add `name:` to {filename}"
        raise doc.error(("name",), f"app name must match {NAME_RE.pattern}, got {app!r}{how}")
    functions_raw = data.get("functions") or {}
    if not isinstance(functions_raw, dict):
        raise doc.error(("functions",), "functions must be a mapping of name to settings")
    functions = {name: _function(doc, root, name, spec) for name, spec in functions_raw.items()}
    rules = data.get("rules") or []
    if not isinstance(rules, list | dict):
        raise doc.error(("rules",), "rules must be a list (or a mapping of name to rule)")
    return Manifest(
        app,
        root,
        functions,
        rules if isinstance(rules, list) else [rules],
        doc,
        parse_sources(doc, origin or root, data.get("sources")),
        parse_directory(doc, data.get("contacts"), data.get("groups")),
    )


def folder_app_name(root: Path) -> str:
    """The app name when ondo.yaml has no `name:`: the folder's, lower case, with `_`, `.` and
    spaces as `-` (`my_shop` is app `my-shop`)."""
    return re.sub(r"[_. ]", "-", root.resolve().name.lower())


def _no_unknown_keys(
    doc: Located, path: tuple[str | int, ...], data: dict[str, Any], allowed: tuple[str, ...]
) -> None:
    for key in data:
        if key not in allowed:
            raise doc.error(
                (*path, key), f"unknown key {key!r}; allowed here: {', '.join(allowed)}"
            )


def _function(doc: Located, root: Path, name: str, spec: Any) -> FunctionDecl:
    path: tuple[str | int, ...] = ("functions", name)
    if not NAME_RE.match(name):
        raise doc.error(path, f"function name {name!r} must match {NAME_RE.pattern}")
    spec = {} if spec is None else spec
    if not isinstance(spec, dict):
        raise doc.error(path, "function settings must be a mapping")
    _no_unknown_keys(doc, path, spec, FUNCTION_KEYS)
    code_dir = _inside(doc, root, (*path, "code"), spec.get("code", f"./{name}"))
    if not code_dir.is_dir():
        raise doc.error((*path, "code"), f"code directory {code_dir} does not exist")
    handler = spec.get("handler", "app.handler")
    if not isinstance(handler, str) or not HANDLER_RE.match(handler):
        raise doc.error(
            (*path, "handler"), f"handler must look like module.function, got {handler!r}"
        )
    module_file = code_dir.joinpath(*handler.split(".")[:-1])
    if not (module_file.with_suffix(".py").is_file() or (module_file / "__init__.py").is_file()):
        raise doc.error(
            (*path, "handler"),
            f"handler module {'.'.join(handler.split('.')[:-1])!r} not found:"
            f" no {module_file.with_suffix('.py')}",
        )
    network, network_allow = _network(doc, (*path, "network"), spec.get("network", False))
    requirements = spec.get("requirements")
    req_path = _inside(doc, root, (*path, "requirements"), requirements) if requirements else None
    if req_path is not None and not req_path.is_file():
        raise doc.error((*path, "requirements"), f"requirements file {req_path} does not exist")
    config = FunctionConfig(
        handler=handler,
        timeout=_number(doc, (*path, "timeout"), spec.get("timeout", 30), 0.1, MAX_TIMEOUT_S),
        memory=int(_number(doc, (*path, "memory"), spec.get("memory", 128), 32, 10240, True)),
        concurrency=int(
            _number(doc, (*path, "concurrency"), spec.get("concurrency", 10), 1, 1000, True)
        ),
        network=network,
        network_allow=network_allow,
        environment=_environment(doc, (*path, "environment"), spec.get("environment") or {}),
        **_async(doc, (*path, "async"), spec.get("async") or {}),
        event=_shape(doc, (*path, "event"), spec.get("event", "cloudevent")),
        permissions=parse_permissions(doc, (*path, "permissions"), spec.get("permissions")),
        secrets=_secrets(doc, (*path, "secrets"), spec.get("secrets") or []),
    )
    _no_shadowing(doc, path, config)
    return FunctionDecl(name, code_dir, config, req_path, doc.where(path), root.resolve())


def _shape(doc: Located, path: tuple[str | int, ...], value: Any) -> str:
    if value not in SHAPES:
        raise doc.error(
            path,
            f"must be one of {', '.join(SHAPES)} (the event shape the handler takes)"
            f", got {value!r}",
        )
    return str(value)


def _inside(doc: Located, root: Path, path: tuple[str | int, ...], value: Any) -> Path:
    if not isinstance(value, str) or not value:
        raise doc.error(path, f"must be a relative path, got {value!r}")
    resolved = (root / value).resolve()
    if not resolved.is_relative_to(root.resolve()):
        raise doc.error(path, f"{value!r} points outside the app directory")
    return resolved


def _number(
    doc: Located,
    path: tuple[str | int, ...],
    value: Any,
    low: float,
    high: float,
    whole: bool = False,
) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise doc.error(path, f"must be a number, got {value!r}")
    if whole and not float(value).is_integer():
        raise doc.error(path, f"must be a whole number, got {value!r}")
    if not low <= value <= high:
        raise doc.error(path, f"must be between {low:g} and {high:g}, got {value!r}")
    return float(value)


def _network(doc: Located, path: tuple[str | int, ...], value: Any) -> tuple[bool, tuple[str, ...]]:
    """`true`, `false`, or `{allow: ["127.0.0.1:5432", ...]}` (network on, plus host exceptions)."""
    if not isinstance(value, dict):
        if not isinstance(value, bool):
            raise doc.error(
                path, f'must be true, false or {{allow: ["ip:port", ...]}}, got {value!r}'
            )
        return value, ()
    _no_unknown_keys(doc, path, value, ("allow",))
    allow = value.get("allow", [])
    if not isinstance(allow, list):
        raise doc.error((*path, "allow"), 'must be a list such as ["127.0.0.1:5432"]')
    for index, item in enumerate(allow):
        try:
            parse_destination(item)
        except ConfigError as exc:
            raise doc.error((*path, "allow", index), str(exc)) from None
    return True, tuple(str(item) for item in allow)


def _environment(doc: Located, path: tuple[str | int, ...], value: Any) -> dict[str, str]:
    if not isinstance(value, dict):
        raise doc.error(path, "must be a mapping of NAME: value")
    env: dict[str, str] = {}
    for key, item in value.items():
        if not ENV_NAME_RE.match(key):
            raise doc.error((*path, key), f"{key!r} is not a valid environment variable name")
        if key in PLATFORM_ENV:
            raise doc.error(
                (*path, key),
                f"{key} is set by the platform for each invocation (the function's own token"
                " and the API's URL, when it declares `permissions`); choose another name",
            )
        if isinstance(item, dict | list) or item is None:
            raise doc.error((*path, key), "must be text, a number or a boolean")
        env[key] = str(item).lower() if isinstance(item, bool) else str(item)
    return env


def _secrets(doc: Located, path: tuple[str | int, ...], value: Any) -> tuple[str, ...]:
    """`secrets: [DB_PASSWORD, ...]`: the secrets (set with `ondo secrets set`) the function
    gets as environment variables."""
    if not isinstance(value, list):
        raise doc.error(path, "must be a list of secret names, e.g. [DB_PASSWORD]")
    names: list[str] = []
    for index, item in enumerate(value):
        if not isinstance(item, str) or not SECRET_NAME_RE.fullmatch(item):
            raise doc.error(
                (*path, index),
                f"{item!r} is not a secret name: capital letters, digits and '_', not starting"
                " with a digit, at most 64 (e.g. DB_PASSWORD)",
            )
        if item in names:
            raise doc.error((*path, index), f"{item!r} is listed twice")
        if item in PLATFORM_ENV:
            raise doc.error(
                (*path, index), f"{item} is set by the platform for each invocation; rename it"
            )
        names.append(item)
    return tuple(names)


def _no_shadowing(doc: Located, path: tuple[str | int, ...], config: FunctionConfig) -> None:
    """A name is either a plain environment variable or a secret, not both."""
    for name in config.secrets:
        if name in config.environment:
            raise doc.error(
                (*path, "environment", name),
                f"{name!r} is also in `secrets`: keep it in one of them (a secret's value"
                " comes from `ondo secrets set`)",
            )


def _async(doc: Located, path: tuple[str | int, ...], value: Any) -> dict[str, Any]:
    """`async: {retries, max_event_age, on_failure}` as FunctionConfig's async_* fields."""
    if not isinstance(value, dict):
        raise doc.error(path, "must be a mapping with keys: " + ", ".join(ASYNC_KEYS))
    _no_unknown_keys(doc, path, value, ASYNC_KEYS)
    retries = _number(doc, (*path, "retries"), value.get("retries", MAX_RETRIES), 0, 2, True)
    age = _duration(doc, (*path, "max_event_age"), value.get("max_event_age", MAX_EVENT_AGE_S))
    if not MIN_EVENT_AGE_S <= age <= MAX_EVENT_AGE_S:
        raise doc.error((*path, "max_event_age"), f"must be between 60s and 6h, got {age:g} s")
    on_failure = value.get("on_failure")
    if on_failure is not None:
        match = DESTINATION_RE.match(on_failure) if isinstance(on_failure, str) else None
        if match is None or (match[1] == "invoke" and not NAME_RE.match(match[2])):
            raise doc.error(
                (*path, "on_failure"),
                f"must be `invoke FUNCTION` or `emit EVENT-TYPE`, got {on_failure!r}",
            )
    return {
        "async_retries": int(retries),
        "async_max_event_age": age,
        "async_on_failure": on_failure,
    }


def _duration(doc: Located, path: tuple[str | int, ...], value: Any) -> float:
    """Seconds, as a number or text (ondo.durations): 90, "90s", "5m", "6h", "1h30m"."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if not isinstance(value, str):
        raise doc.error(path, f"must be a duration: {accepted_forms(bare_seconds=True)}")
    try:
        return parse_duration(value, bare_seconds=True)
    except DurationError as exc:
        raise doc.error(path, str(exc)) from None
