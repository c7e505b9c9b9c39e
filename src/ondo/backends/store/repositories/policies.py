"""Per-resource policies: "principal P of namespace N may do PERMISSION on RESOURCE-PATTERN",
widening what P's role allows (security/policy.py decides with them)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class Policy:
    """One policy entry. `resource` is an fnmatch pattern (`function:report*`, `type:orders.*`)
    or `*` for the permission as a whole."""

    id: str
    namespace: str
    principal: str
    permission: str
    resource: str
    created_at: float
    created_by: str

    def to_json(self) -> dict[str, object]:
        return {
            "id": self.id,
            "namespace": self.namespace,
            "principal": self.principal,
            "permission": self.permission,
            "resource": self.resource,
            "created_at": self.created_at,
            "created_by": self.created_by,
        }


class PolicyRepository(Protocol):
    """Policies by namespace and principal. Every change notifies the change feed's topic
    `principals` (repositories/tokens.py), so cached principals pick it up on their next call."""

    async def add(self, policy: Policy) -> None: ...

    async def listing(self, namespace: str, principal: str | None) -> list[Policy]:
        """The namespace's policies (of one principal if given), oldest first."""
        ...

    async def delete(self, namespace: str, policy_id: str) -> Policy | None:
        """Remove one policy of `namespace`; the removed one, or None if there is none."""
        ...

    async def delete_principal(self, namespace: str, principal: str) -> int:
        """Remove every policy of a principal (a removed user); how many there were."""
        ...
