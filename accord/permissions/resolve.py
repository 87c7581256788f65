"""Pure permission resolution (DATA.md 9.4-9.5, D8a). No I/O; callers load the inputs.

Permission sets are frozensets of names. A set containing `administrator` resolves to every
permission, so `has_permission` is a plain membership test on resolved sets.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Iterable

from accord.permissions.names import ALL_PERMISSIONS


@dataclasses.dataclass(frozen=True, slots=True)
class Overwrite:
    """A channel permission overwrite for one role or one member."""

    target_id: int
    type: str  # "role" or "member"
    allow: frozenset[str]
    deny: frozenset[str]


def _expand(names: Iterable[str]) -> frozenset[str]:
    names = frozenset(names)
    return ALL_PERMISSIONS if "administrator" in names else names & ALL_PERMISSIONS


def resolve_base_permissions(
    *,
    is_owner: bool,
    is_instance_admin: bool,
    everyone_permissions: Iterable[str],
    role_permissions: Iterable[Iterable[str]],
) -> frozenset[str]:
    """Space-level permissions of a member: @everyone plus every assigned role (DATA.md 9.4).

    The owner and instance admins (D8a) hold everything. Membership is the caller's concern.
    """
    if is_owner or is_instance_admin:
        return ALL_PERMISSIONS
    granted = set(everyone_permissions)
    for permissions in role_permissions:
        granted.update(permissions)
    return _expand(granted)


def resolve_channel_permissions(
    base: frozenset[str],
    *,
    everyone_role_id: int,
    member_role_ids: Collection[int],
    user_id: int | None,
    overwrites: Iterable[Overwrite],
) -> frozenset[str]:
    """Apply a channel's overwrites to base permissions (DATA.md 9.5).

    Order: @everyone overwrite (deny, then allow); the union of the member's role overwrites
    (allow beats deny across roles); then the member's own overwrite (deny, then allow).
    `administrator` in the base skips overwrites. Overwrites never grant `administrator`.
    """
    if "administrator" in base:
        return ALL_PERMISSIONS
    everyone: Overwrite | None = None
    member: Overwrite | None = None
    role_allow: set[str] = set()
    role_deny: set[str] = set()
    for overwrite in overwrites:
        if overwrite.type == "role":
            if overwrite.target_id == everyone_role_id:
                everyone = overwrite
            elif overwrite.target_id in member_role_ids:
                role_allow |= overwrite.allow
                role_deny |= overwrite.deny
        elif overwrite.type == "member" and user_id is not None and overwrite.target_id == user_id:
            member = overwrite
    granted = set(base)
    if everyone is not None:
        granted -= everyone.deny
        granted |= everyone.allow
    role_deny -= role_allow
    granted -= role_deny
    granted |= role_allow
    if member is not None:
        granted -= member.deny
        granted |= member.allow
    granted.discard("administrator")
    return frozenset(granted) & ALL_PERMISSIONS


def has_permission(resolved: Collection[str], name: str) -> bool:
    return name in resolved or "administrator" in resolved
