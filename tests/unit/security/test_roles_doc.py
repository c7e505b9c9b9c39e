"""docs/security.md's table of roles and permissions says what policy.ROLE_PERMISSIONS does."""

from __future__ import annotations

from pathlib import Path

from ondo.backends.store.repositories.tokens import ROLES
from ondo.security.policy import ROLE_PERMISSIONS, Permission

DOC = Path(__file__).resolve().parents[3] / "docs" / "security.md"


def _table() -> dict[str, list[str]]:
    """permission -> its cells under admin, developer, operator, citizen."""
    lines = DOC.read_text(encoding="utf-8").split("## Roles and policies", 1)[1].splitlines()
    header = "| permission | what it allows | " + " | ".join(ROLES) + " |"
    start = lines.index(header)
    rows: dict[str, list[str]] = {}
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        rows[cells[0].strip("`")] = cells[2:]
    return rows


def test_the_roles_table_matches_role_permissions() -> None:
    rows = _table()
    assert set(rows) == {p.value for p in Permission}
    for permission in Permission:
        if permission is Permission.PLATFORM:
            continue  # the platform admin's alone, said in words
        shown = {role for role, cell in zip(ROLES, rows[permission.value], strict=True) if cell}
        granted = {role for role in ROLES if permission in ROLE_PERMISSIONS[role]}
        assert shown == granted, permission
