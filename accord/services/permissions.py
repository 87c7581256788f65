"""Permission checks for services: load the caller's standing once, then ask questions.

These are sync functions meant to run inside a service's `db.read`/`db.write` closure, so a
request resolves its permissions and does its work in one database hop:

    def work(conn):
        access = channel_access(conn, channel_id, principal)
        access.require("send_messages")
        ...

Order of errors (API.md 1.11): unknown space/channel 404, not a member 403, missing
permission 403. Instance admins pass every space and channel check (D8a).
"""

from __future__ import annotations

import dataclasses
import sqlite3

from accord.auth.principal import Principal
from accord.errors import (
    ForbiddenError,
    MissingPermissionsError,
    NotFoundError,
    UnauthorizedError,
)
from accord.models.channels import Channel
from accord.models.spaces import Space
from accord.permissions import (
    has_permission,
    hierarchy_position,
    outranks,
    resolve_base_permissions,
    resolve_channel_permissions,
    ungrantable,
)
from accord.storage.permissions import (
    SpaceRoles,
    get_channel_and_space,
    load_space_roles,
    to_resolver_overwrites,
)
from accord.storage.spaces import get_space
from accord.times import now_ts

NOT_MEMBER = "you are not a member of this space"
MEMBER_HIERARCHY = "you cannot act on a member with an equal or higher role"
ROLE_HIERARCHY = "you cannot manage a role at or above your highest role"


@dataclasses.dataclass(frozen=True, slots=True)
class SpaceAccess:
    """The caller's resolved space-level permissions."""

    roles: SpaceRoles
    permissions: frozenset[str]
    is_instance_admin: bool

    @property
    def space(self) -> Space:
        return self.roles.space

    @property
    def user_id(self) -> int | None:
        return self.roles.user_id

    @property
    def is_owner(self) -> bool:
        return self.roles.user_id is not None and self.roles.user_id == self.space.owner_id

    @property
    def is_member(self) -> bool:
        return self.roles.is_member or self.is_owner

    @property
    def highest_position(self) -> int:
        return self.roles.highest_position

    @property
    def hierarchy_position(self) -> int:
        """Rank for hierarchy checks: owner, then instance admins (D8a), then highest role."""
        return hierarchy_position(
            is_owner=self.is_owner,
            is_instance_admin=self.is_instance_admin,
            highest_role=self.highest_position,
        )

    @property
    def is_timed_out(self) -> bool:
        until = self.roles.timed_out_until
        return until is not None and until > now_ts() and not self.is_owner

    def has(self, permission: str) -> bool:
        return has_permission(self.permissions, permission)

    def require_member(self) -> None:
        if not (self.is_member or self.is_instance_admin):
            raise ForbiddenError(NOT_MEMBER)

    def require(self, permission: str) -> None:
        self.require_member()
        if not self.has(permission):
            raise MissingPermissionsError(permission)

    def require_not_timed_out(self) -> None:
        """D-to: a timed-out member cannot send, react, type or join voice."""
        if self.is_timed_out:
            raise ForbiddenError("you are timed out in this space")

    def require_reader(self) -> None:
        """Reading a space: anyone when it is public, else an authenticated member (API.md
        1.2 "optional" auth): 401 for anonymous callers, 403 for non-members."""
        if self.space.public:
            return
        if self.user_id is None:
            raise UnauthorizedError("authentication required")
        self.require_member()

    def require_outranks_member(self, target_position: int) -> None:
        """HIERARCHY(target): the caller's rank must be strictly above the target's."""
        if not outranks(self.hierarchy_position, target_position):
            raise ForbiddenError(MEMBER_HIERARCHY)

    def require_outranks_role(self, role_position: int) -> None:
        """ROLE-HIERARCHY(role): the caller's rank must be strictly above the role's."""
        if not outranks(self.hierarchy_position, role_position):
            raise ForbiddenError(ROLE_HIERARCHY)

    def require_can_grant(self, names: list[str] | tuple[str, ...] | frozenset[str]) -> None:
        """Nobody grants a permission they lack (D7, G-02) unless they hold administrator."""
        missing = ungrantable(self.permissions, sorted(names))
        if missing:
            raise MissingPermissionsError(missing[0])


@dataclasses.dataclass(frozen=True, slots=True)
class ChannelAccess:
    channel: Channel
    space_access: SpaceAccess
    permissions: frozenset[str]

    @property
    def space(self) -> Space:
        return self.space_access.space

    def has(self, permission: str) -> bool:
        return has_permission(self.permissions, permission)

    def require(self, permission: str) -> None:
        self.space_access.require_member()
        if not self.has(permission):
            raise MissingPermissionsError(permission)

    @property
    def can_view(self) -> bool:
        return self.has("view_channel")

    def require_visible(self) -> None:
        """The channel exists for the caller: readers of the space (members, or anyone for a
        public space) who may view it. A member without `view_channel` gets 403 (API.md 1.11
        CHANNEL(p)); to anonymous and non-member readers of a public space a hidden channel
        is unknown (404, G-06)."""
        self.space_access.require_reader()
        self._require_view()

    def require_visible_member(self) -> None:
        """Like `require_visible`, but only members (and instance admins) qualify."""
        self.space_access.require_member()
        self._require_view()

    def _require_view(self) -> None:
        if self.can_view:
            return
        access = self.space_access
        if access.is_member or access.is_instance_admin:
            raise MissingPermissionsError("view_channel")
        raise NotFoundError("unknown_channel")

    def require_can_grant(self, names: list[str] | tuple[str, ...] | frozenset[str]) -> None:
        """Overwrites may only allow or deny what the caller holds in this channel (G-05)."""
        missing = ungrantable(self.permissions, sorted(names))
        if missing:
            raise MissingPermissionsError(missing[0])


def _principal_parts(principal: Principal | None) -> tuple[int | None, bool]:
    if principal is None:
        return None, False
    return principal.user_id, principal.is_admin


def space_access_for(
    conn: sqlite3.Connection, space: Space, principal: Principal | None
) -> SpaceAccess:
    """Resolve standing in a loaded space. Non-members resolve to @everyone's permissions."""
    user_id, is_admin = _principal_parts(principal)
    roles = load_space_roles(conn, space, user_id)
    permissions = resolve_base_permissions(
        is_owner=user_id is not None and user_id == space.owner_id,
        is_instance_admin=is_admin,
        everyone_permissions=roles.everyone_permissions,
        role_permissions=roles.role_permissions,
    )
    return SpaceAccess(roles, permissions, is_admin)


def space_access(
    conn: sqlite3.Connection, space_id: int, principal: Principal | None
) -> SpaceAccess:
    space = get_space(conn, space_id)
    if space is None:
        raise NotFoundError("unknown_space")
    return space_access_for(conn, space, principal)


def channel_permissions_in(access: SpaceAccess, channel: Channel) -> frozenset[str]:
    """The caller's permissions in one channel of the access's space. Non-members (readers of
    a public space) resolve as @everyone only: member overwrites never apply to them (G-06)."""
    return resolve_channel_permissions(
        access.permissions,
        everyone_role_id=access.space.everyone_role_id,
        member_role_ids=access.roles.member_role_ids,
        user_id=access.user_id if access.roles.is_member else None,
        overwrites=to_resolver_overwrites(channel.permission_overwrites),
    )


def channel_access(
    conn: sqlite3.Connection, channel_id: int, principal: Principal | None
) -> ChannelAccess:
    found = get_channel_and_space(conn, channel_id)
    if found is None:
        raise NotFoundError("unknown_channel")
    channel, space = found
    if space is None:
        raise NotFoundError("unknown_channel")  # DM channels are handled by their own service
    access = space_access_for(conn, space, principal)
    return ChannelAccess(channel, access, channel_permissions_in(access, channel))
