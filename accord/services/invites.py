"""Invites (API.md 3.12, D-inv, D-inv2, D-inv3, G-19).

max_uses / max_age of 0 or null mean unlimited / never (stored as null). Uses are counted
atomically in the accepting transaction, so concurrent accepts never exceed max_uses. A banned
caller is refused before any use is counted, and a caller who is already a member consumes
none. Listing shows every invite to holders of manage_channels or manage_space and only their
own to others; an invite may be deleted by its inviter or by those permissions. At most 1,000
live invites per space (D23); expired and used-up ones are purged when a new one is made.
An invite can be edited (max_uses, max_age, temporary) by whoever may delete it; max_age
counts from the invite's creation. `GET /invites/{code}` previews the space (name, icon,
description, member count) without joining. Creating, editing and deleting are audited.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from accord.auth.principal import Principal
from accord.errors import ForbiddenError, MissingPermissionsError, NotFoundError, ValidationError
from accord.events.types import Event
from accord.models.audit_log import AuditLogEntry
from accord.models.invites import Invite
from accord.models.members import Member
from accord.models.users import User
from accord.services.audit_log import AuditLogService, audit
from accord.services.context import Service
from accord.services.members import member_joined
from accord.services.permissions import SpaceAccess, channel_access, space_access
from accord.services.spaces import check_range
from accord.storage import bans as ban_store
from accord.storage import invites as invite_store
from accord.storage import members as member_store
from accord.storage import spaces as space_store
from accord.storage import users as user_store
from accord.times import now_ts, parse_ts, ts_after

INVITES_PER_SPACE = 1000  # D23
MAX_USES_MAX = 100_000
MAX_AGE_MAX_S = 365 * 24 * 3600


def _sees_all(access: SpaceAccess) -> bool:
    return access.has("manage_channels") or access.has("manage_space")


def audited_invite(invite: Invite) -> dict[str, Any]:
    return {
        "code": invite.code,
        "channel_id": None if invite.channel_id is None else str(invite.channel_id),
        "max_uses": invite.max_uses,
        "max_age": invite.max_age,
        "temporary": invite.temporary,
    }


def _audit_invite(
    conn: sqlite3.Connection,
    service: Service,
    principal: Principal,
    action: str,
    before: Invite | None,
    after: Invite | None,
    reason: str | None,
) -> AuditLogEntry:
    invite = after or before
    assert invite is not None
    return audit(
        conn,
        service.ctx,
        principal,
        invite.space_id,
        action,
        target_id=invite.code,
        target_type="invite",
        reason=reason,
        before=None if before is None else audited_invite(before),
        after=None if after is None else audited_invite(after),
    )


def _require_invite_manager(conn: sqlite3.Connection, invite: Invite, principal: Principal) -> None:
    """D-inv2: the inviter, or manage_channels / manage_space in the invite's space."""
    if invite.inviter_id != principal.user_id:
        access = space_access(conn, invite.space_id, principal)
        access.require_member()
        if not _sees_all(access):
            raise MissingPermissionsError("manage_channels")


def _check_limits(max_uses: int | None, max_age: int | None) -> None:
    if max_uses is not None:
        check_range(max_uses, "max_uses", 0, MAX_USES_MAX)
    if max_age is not None:
        check_range(max_age, "max_age", 0, MAX_AGE_MAX_S)


def invite_event(kind: str, invite: Invite) -> Event:
    """invite.create / invite.update (the Invite) and invite.delete ({code, space_id,
    channel_id?}, D-inv3); channel invites are seen only by those who can view the channel."""
    if kind in ("invite.create", "invite.update"):
        data = invite.to_wire()
    else:
        data = {"code": invite.code, "space_id": str(invite.space_id)}
        if invite.channel_id is not None:
            data["channel_id"] = str(invite.channel_id)
    return Event(type=kind, data=data, space_id=invite.space_id, channel_id=invite.channel_id)


def _expiry(created_at: str, max_age: int | None) -> str | None:
    """created_at + max_age seconds (None: never expires)."""
    if max_age is None:
        return None
    return ts_after(max_age, start=parse_ts(created_at))


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
        reason: str | None = None,
    ) -> Invite:
        """POST /spaces/{id}/invites or /channels/{id}/invites: create_invites there."""
        _check_limits(max_uses, max_age)
        uses_cap = max_uses or None  # D-inv: 0 = unlimited
        age = max_age or None

        def write(conn: sqlite3.Connection) -> tuple[Invite, AuditLogEntry]:
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
            entry = _audit_invite(conn, self, principal, "invite_create", None, invite, reason)
            return invite, entry

        invite, entry = await self.db.write(write)
        self.ctx.publish(invite_event("invite.create", invite))
        self.ctx.get(AuditLogService).published(entry)
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
        """The invite by code (any authenticated caller: the code is the capability)."""
        invite = await self.db.read(invite_store.get_invite, code)
        if invite is None:
            raise NotFoundError("invite not found")
        return invite

    async def preview_invite(self, code: str) -> dict[str, Any]:
        """GET /invites/{code}: the Invite plus a preview of its space (`space` with id, name,
        icon, description, member_count) and its inviter, without joining (G-35)."""

        def read(conn: sqlite3.Connection) -> dict[str, Any]:
            invite = invite_store.get_invite(conn, code)
            if invite is None:
                raise NotFoundError("invite not found")
            space = space_store.get_space(conn, invite.space_id)
            if space is None:
                raise NotFoundError("invite not found")
            count = member_store.count_members(conn, space.id)
            preview: dict[str, Any] = {
                "id": str(space.id),
                "name": space.name,
                "slug": space.slug,
                "icon": space.icon,
                "banner": space.banner,
                "description": space.description,
                "public": space.public,
                "features": ["public"] if space.public else [],
                "member_count": count,
                "approximate_member_count": count,
            }
            extra: dict[str, Any] = {"space": preview, "approximate_member_count": count}
            inviter = user_store.get_user(conn, invite.inviter_id) if invite.inviter_id else None
            if inviter is not None:
                extra["inviter"] = inviter.to_wire(viewer_id=0)
            return invite.to_wire(**extra)

        return await self.db.read(read)

    async def update_invite(
        self,
        principal: Principal,
        code: str,
        *,
        max_uses: int | None,
        max_age: int | None,
        temporary: bool | None,
        changes: frozenset[str],
        reason: str | None = None,
    ) -> Invite:
        """PATCH /invites/{code}: the inviter, or manage_channels / manage_space (D-inv2).
        `changes` names the fields sent; 0 or null means unlimited / never (D-inv), and
        max_age counts from the invite's creation."""
        _check_limits(max_uses, max_age)

        def write(conn: sqlite3.Connection) -> tuple[Invite, AuditLogEntry | None]:
            invite = invite_store.get_invite(conn, code)
            if invite is None:
                raise NotFoundError("invite not found")
            _require_invite_manager(conn, invite, principal)
            fields: dict[str, Any] = {}
            if "max_uses" in changes:
                fields["max_uses"] = max_uses or None
            if "max_age" in changes:
                age = max_age or None
                fields["max_age"] = age
                fields["expires_at"] = _expiry(invite.created_at, age)
            if "temporary" in changes and temporary is not None:
                fields["temporary"] = temporary
            invite_store.update_invite(conn, code, fields)
            updated = invite_store.get_invite(conn, code)
            assert updated is not None
            if audited_invite(invite) == audited_invite(updated):
                return updated, None
            entry = _audit_invite(conn, self, principal, "invite_update", invite, updated, reason)
            return updated, entry

        invite, entry = await self.db.write(write)
        if entry is not None:
            self.ctx.publish(invite_event("invite.update", invite))
            self.ctx.get(AuditLogService).published(entry)
        return invite

    async def delete_invite(
        self, principal: Principal, code: str, *, reason: str | None = None
    ) -> None:
        """DELETE /invites/{code}: the inviter, or manage_channels / manage_space (D-inv2)."""

        def write(conn: sqlite3.Connection) -> tuple[Invite, AuditLogEntry]:
            invite = invite_store.get_invite(conn, code)
            if invite is None:
                raise NotFoundError("invite not found")
            _require_invite_manager(conn, invite, principal)
            invite_store.delete_invite(conn, code)
            entry = _audit_invite(conn, self, principal, "invite_delete", invite, None, reason)
            return invite, entry

        invite, entry = await self.db.write(write)
        self.ctx.publish(invite_event("invite.delete", invite))
        self.ctx.get(AuditLogService).published(entry)

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
