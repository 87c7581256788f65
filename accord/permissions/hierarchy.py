"""Pure rules of the role hierarchy and of granting permissions (DATA.md 9.6, D7, G-01..G-05).

Positions: the owner ranks above everything (`OWNER_POSITION`), an instance admin just below the
owner (D8a), everyone else at the highest position among their roles (0 with none). Acting on a
member or a role needs a strictly higher position. Nobody grants a permission they lack unless
they hold `administrator`. Role reorders are renumbered densely so @everyone stays alone at 0.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping

from accord.permissions.names import ALL_PERMISSIONS

OWNER_POSITION = 1 << 30
INSTANCE_ADMIN_POSITION = OWNER_POSITION - 1


def hierarchy_position(*, is_owner: bool, is_instance_admin: bool, highest_role: int) -> int:
    """The rank used for hierarchy checks: owner > instance admin (D8a) > roles."""
    if is_owner:
        return OWNER_POSITION
    if is_instance_admin:
        return INSTANCE_ADMIN_POSITION
    return highest_role


def outranks(actor_position: int, target_position: int) -> bool:
    """HIERARCHY / ROLE-HIERARCHY (API.md 1.11): strictly greater wins, equal loses."""
    return actor_position > target_position


def unknown_permissions(names: Iterable[str]) -> list[str]:
    """Names outside the vocabulary (CLIENT.md 10), in the order given, without repeats."""
    seen: list[str] = []
    for name in names:
        if name not in ALL_PERMISSIONS and name not in seen:
            seen.append(name)
    return seen


def ungrantable(actor_permissions: Collection[str], requested: Iterable[str]) -> list[str]:
    """Requested permissions the actor does not hold (G-02, G-05); none for administrators."""
    if "administrator" in actor_permissions:
        return []
    missing: list[str] = []
    for name in requested:
        if name not in actor_permissions and name not in missing:
            missing.append(name)
    return missing


def reorder_positions(
    current: Mapping[int, int], requested: Mapping[int, int], *, everyone_id: int
) -> dict[int, int]:
    """New dense positions after moving some roles (or channels) to requested positions.

    Every item other than `everyone_id` ends at 1..n (@everyone keeps 0). A moved item takes
    the requested slot: moving up it lands above items already at that position, moving down
    below them. Items not moved keep their relative order. Ties break by id.
    """

    def key(item_id: int) -> tuple[float, int]:
        position = current[item_id]
        wanted = requested.get(item_id)
        if wanted is None or wanted == position:
            return (float(position), item_id)
        return (wanted + (0.5 if wanted > position else -0.5), item_id)

    others = sorted((i for i in current if i != everyone_id), key=key)
    result = {item_id: index + 1 for index, item_id in enumerate(others)}
    if everyone_id in current:
        result[everyone_id] = 0
    return result
