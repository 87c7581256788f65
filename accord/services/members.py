"""Membership: listing, search, member edits, timeouts, kicks, leaving, role assignment, and the
events shared by every way of joining or leaving a space.

Authorization fixes of SEED-GAPS G-01: each member field has its own permission (`nickname`
manage_nicknames, or change_nickname for oneself; `mute` mute_members; `deaf` deafen_members;
`roles` manage_roles plus ROLE-HIERARCHY on every role added or removed; `timed_out_until`
moderate_members, D-to), and editing anyone but oneself needs HIERARCHY over them. Roles are
looked up in the path space only (G-04). Lists embed each member's user (CLIENT.md 5 Member) and
load roles and users for a whole page in one query each (G-36).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import sqlite3
from collections.abc import Callable
from typing import Any

from accord.auth.principal import Principal
from accord.errors import ForbiddenError, NotFoundError, ValidationError
from accord.events.types import BusItem, Event, SessionControl
from accord.models.audit_log import AuditLogEntry
from accord.models.members import Member
from accord.models.users import User
from accord.permissions import OWNER_POSITION
from accord.services.audit_log import AuditLogService, audit
from accord.services.context import Context, Service
from accord.services.permissions import SpaceAccess, space_access
from accord.storage import members as member_store
from accord.storage import roles as role_store
from accord.storage import spaces as space_store
from accord.storage import users as user_store
from accord.times import format_ts, parse_ts, utc_now

NICKNAME_MAX = 32  # D21
MAX_TIMEOUT = dt.timedelta(days=28)
MEMBERS_PAGE_MAX = 1000  # D23a
SEARCH_MAX = 100


def member_joined(member: Member, user: User) -> list[BusItem]:
    """member.join (Member plus its user, D-ev) and the notice that lets sessions follow it."""
    return [
        SessionControl(kind="membership_changed", user_id=member.user_id, space_id=member.space_id),
        Event(
            type="member.join",
            data=member.to_wire(user.to_wire(viewer_id=0)),
            space_id=member.space_id,
            user_ids=frozenset({member.user_id}),
        ),
    ]


def member_left(space_id: int, user: User | None, user_id: int) -> list[BusItem]:
    """member.leave to the space and to the user who left, then the membership notice."""
    data: dict[str, Any] = {"space_id": str(space_id), "user_id": str(user_id)}
    if user is not None:
        data["user"] = user.to_wire(viewer_id=0)
    return [
        Event(type="member.leave", data=data, space_id=space_id, user_ids=frozenset({user_id})),
        SessionControl(kind="membership_changed", user_id=user_id, space_id=space_id),
    ]


def member_updated(member: Member, user: User) -> Event:
    """member.update: the REST Member plus a `user` object (D-ev)."""
    return Event(
        type="member.update",
        data=member.to_wire(user.to_wire(viewer_id=0)),
        space_id=member.space_id,
    )


@dataclasses.dataclass(frozen=True, slots=True)
class MemberView:
    """A member with its user, as the API returns them."""

    member: Member
    user: User

    def to_wire(self, viewer_id: int | None) -> dict[str, Any]:
        return self.member.to_wire(self.user.to_wire(viewer_id=viewer_id or 0))


def _views(conn: sqlite3.Connection, members: list[Member]) -> list[MemberView]:
    users = user_store.get_users(conn, [m.user_id for m in members])
    return [MemberView(m, users[m.user_id]) for m in members if m.user_id in users]


def _find_view(conn: sqlite3.Connection, space_id: int, user_id: int) -> MemberView | None:
    member = member_store.get_member(conn, space_id, user_id)
    user = user_store.get_user(conn, user_id)
    if member is None or user is None:
        return None
    return MemberView(member, user)


def _view(conn: sqlite3.Connection, space_id: int, user_id: int) -> MemberView:
    view = _find_view(conn, space_id, user_id)
    if view is None:
        raise NotFoundError("member not found")
    return view


def target_position(conn: sqlite3.Connection, access: SpaceAccess, user_id: int) -> int:
    """A target's rank for HIERARCHY: the owner is above all; non-members count as 0."""
    if user_id == access.space.owner_id:
        return OWNER_POSITION
    return member_store.highest_role_position(conn, access.space.id, user_id)


def parse_timeout(raw: str | None) -> str | None:
    """`timed_out_until` as stored: a future timestamp within 28 days, or None (D-to)."""
    if raw is None:
        return None
    moment = parse_ts(raw)
    if moment is None:
        raise ValidationError("must be an ISO-8601 timestamp or null", field="timed_out_until")
    now = utc_now()
    if moment <= now:
        return None
    if moment - now > MAX_TIMEOUT:
        raise ValidationError("must be at most 28 days ahead", field="timed_out_until")
    return format_ts(moment)


def _role_update_entry(
    conn: sqlite3.Connection,
    ctx: Context,
    principal: Principal,
    before: Member,
    after: Member,
    reason: str | None,
) -> AuditLogEntry:
    """member_role_update: the member's role ids before and after."""
    return audit(
        conn,
        ctx,
        principal,
        after.space_id,
        "member_role_update",
        target_id=after.user_id,
        target_type="user",
        reason=reason,
        before={"roles": [str(r) for r in sorted(before.roles)]},
        after={"roles": [str(r) for r in sorted(after.roles)]},
    )


def clean_nickname(raw: str | None) -> str | None:
    """A nickname of at most 32 characters; empty or null clears it."""
    if raw is None:
        return None
    nickname = raw.strip()
    if len(nickname) > NICKNAME_MAX:
        raise ValidationError(f"must be at most {NICKNAME_MAX} characters", field="nickname")
    return nickname or None


class MemberService(Service):
    async def list_members(
        self, principal: Principal, space_id: int, *, after: int, limit: int
    ) -> tuple[list[MemberView], bool]:
        """GET /spaces/{id}/members: a page by user id and whether more follow (D23a)."""
        limit = max(1, min(limit, MEMBERS_PAGE_MAX))

        def read(conn: sqlite3.Connection) -> tuple[list[MemberView], bool]:
            space_access(conn, space_id, principal).require_member()
            members = member_store.list_members(conn, space_id, after=after, limit=limit + 1)
            return _views(conn, members[:limit]), len(members) > limit

        return await self.db.read(read)

    async def search(
        self, principal: Principal, space_id: int, query: str, *, limit: int
    ) -> list[MemberView]:
        """GET /spaces/{id}/members/search: substring of username, display name or nickname."""
        limit = max(1, min(limit, SEARCH_MAX))

        def read(conn: sqlite3.Connection) -> list[MemberView]:
            space_access(conn, space_id, principal).require_member()
            return _views(conn, member_store.search_members(conn, space_id, query, limit=limit))

        return await self.db.read(read)

    async def get_member(self, principal: Principal, space_id: int, user_id: int) -> MemberView:
        def read(conn: sqlite3.Connection) -> MemberView:
            space_access(conn, space_id, principal).require_member()
            return _view(conn, space_id, user_id)

        return await self.db.read(read)

    async def update_member(
        self,
        principal: Principal,
        space_id: int,
        user_id: int,
        changes: dict[str, Any],
        *,
        reason: str | None = None,
    ) -> MemberView:
        """PATCH /spaces/{id}/members/{uid} (and @me). `changes` holds the fields sent:
        nickname (None clears), mute, deaf, roles (role ids, replaces the set),
        timed_out_until (None clears).

        Order (API.md 3): membership of the caller; the permission of each field whose value
        differs from the target's (a client may send the whole member object, so unchanged
        fields need nothing); the target is a member (404); the values; the hierarchy."""
        wanted_roles: list[int] | None = changes.get("roles")
        normalizers: dict[str, Callable[[Any], Any]] = {
            "nickname": clean_nickname,
            "mute": bool,
            "deaf": bool,
            "timed_out_until": parse_timeout,
        }
        sent = {
            name: changes[name]
            for name in normalizers
            if name in changes and (name not in ("mute", "deaf") or changes[name] is not None)
        }

        def write(
            conn: sqlite3.Connection,
        ) -> tuple[MemberView, bool, bool, list[AuditLogEntry]]:
            access = space_access(conn, space_id, principal)
            access.require_member()
            current = _find_view(conn, space_id, user_id)
            is_self = user_id == principal.user_id

            def changes_value(name: str) -> bool:
                if current is None:
                    return True
                try:
                    value = normalizers[name](sent[name])
                except ValidationError:
                    return True
                return bool(value != getattr(current.member, name))

            changing = {name for name in sent if changes_value(name)}
            roles_changing = wanted_roles is not None and (
                current is None or set(wanted_roles) - {space_id} != set(current.member.roles)
            )
            if "nickname" in changing and not access.has("manage_nicknames"):
                access.require("change_nickname" if is_self else "manage_nicknames")
            if "mute" in changing:
                access.require("mute_members")
            if "deaf" in changing:
                access.require("deafen_members")
            if "timed_out_until" in changing:
                access.require("moderate_members")
            if roles_changing:
                access.require("manage_roles")
            if current is None:
                raise NotFoundError("member not found")
            fields = {name: normalizers[name](sent[name]) for name in changing}
            new_roles: tuple[int, ...] | None = None
            if roles_changing and wanted_roles is not None:
                new_roles = self._checked_role_set(conn, access, current.member.roles, wanted_roles)
            touches_target = bool(fields) or new_roles is not None
            if touches_target and (not is_self or "timed_out_until" in fields):
                access.require_outranks_member(target_position(conn, access, user_id))
            if fields:
                member_store.update_member(conn, space_id, user_id, fields)
            roles_changed = new_roles is not None and set(new_roles) != set(current.member.roles)
            if roles_changed and new_roles is not None:
                member_store.set_member_roles(conn, space_id, user_id, new_roles)
            view = _view(conn, space_id, user_id)
            entries = self._audit_update(conn, principal, current.member, view.member, reason)
            return view, view.member != current.member, roles_changed, entries

        view, changed, roles_changed, entries = await self.db.write(write)
        if changed:
            self.ctx.publish(member_updated(view.member, view.user))
        if roles_changed:
            self.ctx.publish(SessionControl(kind="permissions_changed", space_id=space_id))
        self.ctx.get(AuditLogService).published(*entries)
        return view

    def _audit_update(
        self,
        conn: sqlite3.Connection,
        principal: Principal,
        before: Member,
        after: Member,
        reason: str | None,
    ) -> list[AuditLogEntry]:
        """member_timeout, member_role_update and (for edits of someone else) member_update
        entries for what actually changed."""
        entries: list[AuditLogEntry] = []

        def record(action: str, old: dict[str, Any], new: dict[str, Any]) -> None:
            entries.append(
                audit(
                    conn,
                    self.ctx,
                    principal,
                    after.space_id,
                    action,
                    target_id=after.user_id,
                    target_type="user",
                    reason=reason,
                    before=old,
                    after=new,
                )
            )

        if before.timed_out_until != after.timed_out_until:
            record(
                "member_timeout",
                {"timed_out_until": before.timed_out_until},
                {"timed_out_until": after.timed_out_until},
            )
        if set(before.roles) != set(after.roles):
            entries.append(_role_update_entry(conn, self.ctx, principal, before, after, reason))
        if after.user_id != principal.user_id:
            fields = ("nickname", "mute", "deaf")
            old = {name: getattr(before, name) for name in fields}
            new = {name: getattr(after, name) for name in fields}
            if old != new:
                record("member_update", old, new)
        return entries

    @staticmethod
    def _checked_role_set(
        conn: sqlite3.Connection,
        access: SpaceAccess,
        current: tuple[int, ...],
        wanted: list[int],
    ) -> tuple[int, ...]:
        """The new role set: roles of this space only (404 otherwise), @everyone dropped, and
        every role added or removed strictly below the caller (ROLE-HIERARCHY)."""
        space_roles = {role.id: role for role in role_store.list_roles(conn, access.space.id)}
        result: list[int] = []
        for role_id in wanted:
            role = space_roles.get(role_id)
            if role is None:
                raise NotFoundError("unknown_role")
            if not role.is_everyone and role_id not in result:
                result.append(role_id)
        for role_id in set(result) ^ set(current):
            role = space_roles.get(role_id)
            if role is not None:
                access.require_outranks_role(role.position)
        return tuple(sorted(result))

    async def kick(
        self, principal: Principal, space_id: int, user_id: int, *, reason: str | None = None
    ) -> None:
        """DELETE /spaces/{id}/members/{uid}: kick_members, then HIERARCHY; idempotent."""

        def write(conn: sqlite3.Connection) -> tuple[User | None, AuditLogEntry] | None:
            access = space_access(conn, space_id, principal)
            access.require("kick_members")
            access.require_outranks_member(target_position(conn, access, user_id))
            if not member_store.remove_member(conn, space_id, user_id):
                return None
            entry = audit(
                conn,
                self.ctx,
                principal,
                space_id,
                "member_kick",
                target_id=user_id,
                target_type="user",
                reason=reason,
            )
            return user_store.get_user(conn, user_id), entry

        kicked = await self.db.write(write)
        if kicked is not None:
            user, entry = kicked
            self.ctx.publish(*member_left(space_id, user, user_id))
            self.ctx.get(AuditLogService).published(entry)

    async def leave(self, principal: Principal, space_id: int) -> None:
        """DELETE /spaces/{id}/members/@me: leave a space (G-35). The owner cannot leave."""

        def write(conn: sqlite3.Connection) -> User | None:
            space = space_store.get_space(conn, space_id)
            if space is None:
                raise NotFoundError("unknown_space")
            if space.owner_id == principal.user_id:
                raise ForbiddenError("the owner cannot leave their space: transfer ownership first")
            if not member_store.remove_member(conn, space_id, principal.user_id):
                raise ForbiddenError("you are not a member of this space")
            return user_store.get_user(conn, principal.user_id)

        user = await self.db.write(write)
        self.ctx.publish(*member_left(space_id, user, principal.user_id))

    async def set_role(
        self,
        principal: Principal,
        space_id: int,
        user_id: int,
        role_id: int,
        *,
        assign: bool,
        reason: str | None = None,
    ) -> None:
        """PUT/DELETE /spaces/{id}/members/{uid}/roles/{rid}: manage_roles, the role in this
        space and below the caller, HIERARCHY over the target unless it is the caller."""

        def write(conn: sqlite3.Connection) -> tuple[MemberView, AuditLogEntry] | None:
            access = space_access(conn, space_id, principal)
            access.require("manage_roles")
            role = role_store.get_role(conn, space_id, role_id)
            if role is None:
                raise NotFoundError("unknown_role")
            if role.is_everyone:
                raise ValidationError("cannot assign or remove the @everyone role", field="role_id")
            access.require_outranks_role(role.position)
            member = member_store.get_member(conn, space_id, user_id)
            if member is None:
                if assign:
                    raise NotFoundError("member not found")
                return None
            if user_id != principal.user_id:
                access.require_outranks_member(target_position(conn, access, user_id))
            if assign:
                if role_id in member.roles:
                    return None
                space_store.assign_role(conn, space_id, user_id, role_id)
            elif not member_store.unassign_role(conn, space_id, user_id, role_id):
                return None
            view = _view(conn, space_id, user_id)
            entry = _role_update_entry(conn, self.ctx, principal, member, view.member, reason)
            return view, entry

        done = await self.db.write(write)
        if done is not None:
            view, entry = done
            self.ctx.publish(
                member_updated(view.member, view.user),
                SessionControl(kind="permissions_changed", space_id=space_id),
            )
            self.ctx.get(AuditLogService).published(entry)
