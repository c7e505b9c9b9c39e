"""What a deploy changes, and the little it uses of each: the function service, the rule book,
where layers are built and how.

Planning and applying take a `DeployTargets` (or the one piece they use), never the platform:
platform.py builds it once from its function service and rule book, which satisfy these
Protocols as they are. A unit test builds only what it touches.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from ondo.backends.store.repositories.functions import FunctionVersion
from ondo.backends.store.repositories.rules import StoredRule
from ondo.deploy.sources import SourceTargets
from ondo.functions.model import FunctionConfig

if TYPE_CHECKING:
    from ondo.rules.definitions import CompiledRule
    from ondo.runtime.builds import BuildSettings


class CodeAdder(Protocol):
    def add(self, source: Path) -> str:
        """Copy a code directory into the code store (blocking); its content hash."""


class CurrentLookup(Protocol):
    def get(self, namespace: str, name: str) -> FunctionVersion | None:
        """The function's current version, as this process knows it (no store round trip)."""


class FunctionTargets(Protocol):
    """What deploy uses of the function service (functions/service.py)."""

    @property
    def code(self) -> CodeAdder: ...
    @property
    def current(self) -> CurrentLookup: ...

    def get(self, name: str, namespace: str = "default") -> FunctionVersion:
        """The current version; NotFound if none."""

    def exists(self, name: str, namespace: str = "default") -> bool: ...

    async def identical_version(self, draft: FunctionVersion) -> FunctionVersion | None:
        """The newest stored version with the draft's code, layer, settings and app."""

    async def names_of_app(self, namespace: str, app: str) -> list[str]: ...

    async def missing_secrets(self, namespace: str, names: Sequence[str]) -> list[str]:
        """Which of `names` are not set as secrets in `namespace`."""

    async def publish(
        self,
        name: str,
        config: FunctionConfig,
        code_hash: str,
        layer_hash: str | None,
        *,
        namespace: str = "default",
        app: str | None = None,
    ) -> FunctionVersion:
        """Prepare the version in the runtime, then make it current."""

    async def try_import(
        self,
        name: str,
        config: FunctionConfig,
        code_hash: str,
        layer_hash: str | None,
        namespace: str = "default",
    ) -> None:
        """Import the handler in a throwaway zygote; HandlerImportError if it fails."""

    async def delete(self, name: str, namespace: str = "default") -> None: ...


class RuleTargets(Protocol):
    """What deploy uses of the rule book (rules/definitions.py)."""

    def stored_rule(self, namespace: str, name: str) -> StoredRule | None:
        """The rule as last read from the store (a cache kept by the change feed)."""

    def stored_in(self, namespace: str) -> list[StoredRule]: ...

    def names_of_app(self, namespace: str, app: str) -> list[str]: ...

    def prepare(
        self,
        namespace: str,
        owner: str,
        *,
        name: str | None = None,
        text: str | None = None,
        definition: dict[str, Any] | None = None,
        app: str | None = None,
        known_functions: Collection[str] = (),
    ) -> CompiledRule:
        """Parse and validate without storing anything; RuleSyntaxError or RuleError."""

    async def add(
        self, rule: CompiledRule, *, replace_existing: bool = False, take_over: bool = False
    ) -> StoredRule: ...

    async def check_consent(self, stored: StoredRule) -> None:
        """Forbidden when the rule is about a data subject who has not allowed its owner."""

    async def delete(self, namespace: str, name: str) -> None: ...

    async def set_enabled(self, namespace: str, name: str, enabled: bool) -> StoredRule: ...


@dataclass(frozen=True)
class DeployTargets:
    """Everything a deploy plans against and applies to."""

    functions: FunctionTargets
    rules: RuleTargets
    sources: SourceTargets
    layers_dir: Path  # where dependency layers are built (the function service reads them there)
    build: BuildSettings  # how they are built (the operator's index, limits)
