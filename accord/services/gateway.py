"""What the real-time gateway reads from the database, as plain data it can route with.

The gateway is an entry point and never touches storage itself (STYLE 2); it asks this
service for identities at IDENTIFY, members' roles and a space's role/overwrite data (to decide
`view_channel` for channel-scoped events), and member lists for REQUEST_MEMBERS. Nothing here
publishes events.
"""

from __future__ import annotations

import dataclasses

from accord.auth.principal import Principal
from accord.models.members import Member
from accord.models.spaces import Space
from accord.models.users import User
from accord.permissions import Overwrite, resolve_base_permissions
from accord.services.context import Service
from accord.storage import gateway as gateway_store


@dataclasses.dataclass(frozen=True, slots=True)
class Identity:
    user: User
    spaces: list[Space]  # READY's `space_objects` (D12e, RT-15)

    @property
    def space_ids(self) -> list[int]:
        return [space.id for space in self.spaces]


@dataclasses.dataclass(frozen=True, slots=True)
class SpacePermissions:
    """Everything `view_channel` resolution needs about one space, except members' roles."""

    space_id: int
    owner_id: int
    everyone_permissions: tuple[str, ...]
    role_permissions: dict[int, tuple[str, ...]]
    overwrites: dict[int, list[Overwrite]]  # by channel id; every channel of the space

    def base_permissions(
        self, user_id: int, role_ids: frozenset[int], *, is_admin: bool
    ) -> frozenset[str]:
        return resolve_base_permissions(
            is_owner=user_id == self.owner_id,
            is_instance_admin=is_admin,
            everyone_permissions=self.everyone_permissions,
            role_permissions=[self.role_permissions.get(r, ()) for r in role_ids],
        )


class GatewayStateService(Service):
    async def load_identities(
        self, principals: list[Principal]
    ) -> dict[tuple[int, str], Identity | None]:
        """Users and their spaces for a batch of IDENTIFYs, keyed by (user id, token hash);
        None where the user is gone or the token was revoked after it was resolved."""
        rows = await self.db.read(
            gateway_store.load_identities,
            [(p.user_id, p.kind, p.token_hash) for p in principals],
        )
        return {
            key: Identity(value[0], value[1]) if value is not None else None
            for key, value in rows.items()
        }

    async def member_roles(self, space_id: int, user_ids: list[int]) -> dict[int, frozenset[int]]:
        """Role ids of the given users in a space; users who are not members are absent."""
        return await self.db.read(gateway_store.member_role_ids, space_id, user_ids)

    async def space_permissions(self, space_id: int) -> SpacePermissions | None:
        rows = await self.db.read(gateway_store.space_permission_rows, space_id)
        if rows is None:
            return None
        roles: dict[int, tuple[str, ...]] = rows["roles"]
        return SpacePermissions(
            space_id=space_id,
            owner_id=rows["owner_id"],
            everyone_permissions=roles.get(space_id, ()),  # @everyone's id is the space's
            role_permissions={k: v for k, v in roles.items() if k != space_id},
            overwrites={
                channel_id: [
                    Overwrite(target, kind, frozenset(allow), frozenset(deny))
                    for target, kind, allow, deny in items
                ]
                for channel_id, items in rows["channels"].items()
            },
        )

    async def list_members(
        self, space_id: int, *, query: str, limit: int, user_ids: list[int]
    ) -> tuple[list[tuple[Member, User]], list[int]]:
        return await self.db.read(
            lambda conn: gateway_store.list_members(
                conn, space_id, query=query, limit=limit, user_ids=user_ids
            )
        )
