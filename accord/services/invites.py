"""Invites (API.md 3.12, D-inv, D-inv2, D-inv3, G-19).

max_uses / max_age of 0 or null mean unlimited / never (stored as null). Uses are counted
atomically in the accepting transaction, so concurrent accepts never exceed max_uses. A banned
caller is refused before any use is counted, and a caller who is already a member consumes
none. Listing shows every invite to holders of manage_channels or manage_space and only their
own to others; an invite may be deleted by its inviter or by those permissions. At most 1,000
live invites per space (D23); expired and used-up ones are purged when a new one is made.
"""

from __future__ import annotations

import sqlite3

from accord.auth.principal import Principal
from accord.errors import ForbiddenError, MissingPermissionsError, NotFoundError, ValidationError
from accord.events.types import Event
from accord.models.invites import Invite
from accord.models.members import Member
from accord.models.users import User
from accord.services.context import Service
from accord.services.members import member_joined
from accord.services.permissions import SpaceAccess, channel_access, space_access
from accord.services.spaces import check_range
from accord.storage import bans as ban_store
from accord.storage import invites as invite_store
from accord.storage import members as member_store
from accord.storage import spaces as space_store
from accord.storage import users as user_store
from accord.times import now_ts, ts_after

INVITES_PER_SPACE = 1000  # D23
MAX_USES_MAX = 100_000
MAX_AGE_MAX_S = 365 * 24 * 3600


def _sees_all(access: SpaceAccess) -> bool:
    return access.has("manage_channels") or access.has("manage_space")


def invite_event(kind: str, invite: Invite) -> Event:
    """invite.create (the Invite) / invite.delete ({code, space_id, channel_id?}, D-inv3);
    channel invites are seen only by those who can view the channel."""
    if kind == "invite.create":
        data = invite.to_wire()
    else:
        data = {"code": invite.code, "space_id": str(invite.space_id)}
        if invite.channel_id is not None:
            data["channel_id"] = str(invite.channel_id)
    return Event(type=kind, data=data, space_id=invite.space_id, channel_id=invite.channel_id)


class InviteService(Service):
    async def create_invite(
        self,
        principal: Principal,
        *,
        space_id: int | None = None,
        channel_id: int | None = None,
        max_uses: int | None,
        max_age: int | None,
        temporary: bool,
    ) -> Invite:
        """POST /spaces/{id}/invites or /channels/{id}/invites: create_invites there."""
        if max_uses is not None:
            check_range(max_uses, "max_uses", 0, MAX_USES_MAX)
        if max_age is not None:
            check_range(max_age, "max_age", 0, MAX_AGE_MAX_S)
        uses_cap = max_uses or None  # D-inv: 0 = unlimited
        age = max_age or None

        def write(conn: sqlite3.Connection) -> Invite:
            if channel_id is not None:
                access = channel_access(conn, channel_id, principal)
                access.require_visible_member()
                access.require("create_invites")
                target_space = access.space.id
            else:
                assert space_id is not None
                space_access(conn, space_id, principal).require("create_invites")
                target_space = space_id
            now = now_ts()
            invite_store.purge_dead_invites(conn, target_space, now)
            if invite_store.count_invites(conn, target_space) >= INVITES_PER_SPACE:
                raise ValidationError(
                    f"a space can have at most {INVITES_PER_SPACE} invites", field="max_uses"
                )
            code = invite_store.insert_invite(
                conn,
                space_id=target_space,
                channel_id=channel_id,
                inviter_id=principal.user_id,
                max_uses=uses_cap,
                max_age=age,
                temporary=temporary,
                now=now,
                expires_at=ts_after(age) if age else None,
            )
            invite = invite_store.get_invite(conn, code)
            assert invite is not None
            return invite

        invite = await self.db.write(write)
        self.ctx.publish(invite_event("invite.create", invite))
        return invite

    async def list_invites(
        self,
        principal: Principal,
        *,
        space_id: int | None = None,
        channel_id: int | None = None,
    ) -> list[Invite]:
        """GET /spaces/{id}/invites, /channels/{id}/invites (D-inv2)."""

        def read(conn: sqlite3.Connection) -> list[Invite]:
            if channel_id is not None:
                channel = channel_access(conn, channel_id, principal)
                channel.require_visible_member()
                access = channel.space_access
            else:
                assert space_id is not None
                access = space_access(conn, space_id, principal)
                access.require_member()
            return invite_store.list_invites(
                conn,
                access.space.id,
                channel_id=channel_id,
                inviter_id=None if _sees_all(access) else principal.user_id,
            )

        return await self.db.read(read)

    async def get_invite(self, code: str) -> Invite:
        """GET /invites/{code}: any authenticated caller (the code is the capability)."""
        invite = await self.db.read(invite_store.get_invite, code)
        if invite is None:
            raise NotFoundError("invite not found")
        return invite

    async def delete_invite(self, principal: Principal, code: str) -> None:
        """DELETE /invites/{code}: the inviter, or manage_channels / manage_space (D-inv2)."""

        def write(conn: sqlite3.Connection) -> Invite:
            invite = invite_store.get_invite(conn, code)
            if invite is None:
                raise NotFoundError("invite not found")
            if invite.inviter_id != principal.user_id:
                access = space_access(conn, invite.space_id, principal)
                access.require_member()
                if not _sees_all(access):
                    raise MissingPermissionsError("manage_channels")
            invite_store.delete_invite(conn, code)
            return invite

        invite = await self.db.write(write)
        self.ctx.publish(invite_event("invite.delete", invite))

    async def accept_invite(self, principal: Principal, code: str) -> Invite:
        """POST /invites/{code}/accept: join the invite's space (CLIENT.md 4.9)."""

        def write(conn: sqlite3.Connection) -> tuple[Invite, tuple[Member, User] | None]:
            invite = invite_store.get_invite(conn, code)
            if invite is None:
                raise NotFoundError("invite not found")
            if invite.is_expired(now_ts()):
                raise ValidationError("invite has expired")
            if ban_store.get_ban(conn, invite.space_id, principal.user_id) is not None:
                raise ForbiddenError("you are banned from this space")
            if member_store.get_member(conn, invite.space_id, principal.user_id) is not None:
                return invite, None
            if not invite_store.consume_use(conn, code):
                raise ValidationError("invite has reached max uses")
            space_store.add_member(conn, invite.space_id, principal.user_id, now_ts())
            member = member_store.get_member(conn, invite.space_id, principal.user_id)
            user = user_store.get_user(conn, principal.user_id)
            updated = invite_store.get_invite(conn, code)
            assert member is not None
            assert user is not None
            assert updated is not None
            return updated, (member, user)

        invite, joined = await self.db.write(write)
        if joined is not None:
            self.ctx.publish(*member_joined(*joined))
        return invite
