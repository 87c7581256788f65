"""The Role resource: list, create, update, reorder, delete (API.md 3.10).

Hardening of SEED-GAPS G-02/G-03/G-04: permission names are validated; nobody grants a
permission they lack (unless administrator or owner); every role touched, and every position a
role is moved to, must be strictly below the caller's highest role; @everyone (id = space id)
never moves from 0 and nothing else goes there; ids are looked up in the path space only;
reorders renumber densely in one transaction. At most 250 roles per space (D23).
"""

from __future__ import annotations

import sqlite3
from typing import Any

from accord.auth.principal import Principal
from accord.errors import ForbiddenError, NotFoundError, ValidationError
from accord.events.types import BusItem, Event, SessionControl
from accord.models.audit_log import AuditLogEntry
from accord.models.channels import Channel
from accord.models.roles import Role
from accord.permissions import reorder_positions, unknown_permissions
from accord.services.audit_log import AuditLogService, audit
from accord.services.context import Context, Service
from accord.services.file_cleanup import FileCleanup
from accord.services.images import ImageService, PreparedImage
from accord.services.permissions import SpaceAccess, space_access
from accord.services.spaces import check_range, clean_name
from accord.storage import channels as channel_store
from accord.storage import file_refs
from accord.storage import roles as role_store
from accord.storage.file_refs import StoredFile
from accord.times import now_ts

ROLES_PER_SPACE = 250  # D23
COLOR_MAX = 0xFFFFFF
ICONS = "role_icons"  # stored image kind (CDN: /cdn/role-icons/{role_id}/{hash}.png)
EMOJI_ICON_MAX = 32


def is_emoji_text(text: str) -> bool:
    """A short run of non-ASCII characters (an emoji with its joiners and selectors): no
    letters, digits, ':' or '/' that a URL or free text would need."""
    return 1 <= len(text) <= EMOJI_ICON_MAX and all(ord(c) > 0x7F for c in text)


def check_permission_names(names: list[str], field: str = "permissions") -> list[str]:
    """The names, deduplicated in order; 400 on the first unknown one (DATA.md 9.2)."""
    unknown = unknown_permissions(names)
    if unknown:
        raise ValidationError(f"unknown permission: {unknown[0]}", field=field)
    return list(dict.fromkeys(names))


def role_event(kind: str, role: Role) -> Event:
    """role.create / role.update: the Role flat plus space_id (D-ev)."""
    return Event(type=kind, data=role.to_wire(space_id=str(role.space_id)), space_id=role.space_id)


def audited_role(role: Role) -> dict[str, Any]:
    """The role fields an audit entry compares."""
    return {
        "name": role.name,
        "color": role.color,
        "hoist": role.hoist,
        "mentionable": role.mentionable,
        "icon": role.icon,
        "position": role.position,
        "permissions": sorted(role.permissions),
    }


def _audit_role(
    conn: sqlite3.Connection,
    ctx: Context,
    principal: Principal,
    action: str,
    before: Role | None,
    after: Role | None,
    reason: str | None,
) -> AuditLogEntry:
    role = after or before
    assert role is not None
    return audit(
        conn,
        ctx,
        principal,
        role.space_id,
        action,
        target_id=role.id,
        target_type="role",
        reason=reason,
        before=None if before is None else audited_role(before),
        after=None if after is None else audited_role(after),
    )


def _channel_updates(channels: list[Channel]) -> list[BusItem]:
    return [
        Event(type="channel.update", data=c.to_wire(), space_id=c.space_id, channel_id=c.id)
        for c in channels
    ]


def _role_fields(changes: dict[str, Any]) -> dict[str, Any]:
    """Checked column values for a role update (PATCH /spaces/{id}/roles/{rid})."""
    fields: dict[str, Any] = {}
    if changes.get("name") is not None:
        fields["name"] = clean_name(changes["name"])
    if changes.get("color") is not None:
        fields["color"] = check_range(changes["color"], "color", 0, COLOR_MAX)
    for flag in ("hoist", "mentionable"):
        if changes.get(flag) is not None:
            fields[flag] = bool(changes[flag])
    if changes.get("permissions") is not None:
        fields["permissions"] = check_permission_names(changes["permissions"])
    return fields


class RoleService(Service):
    async def list_roles(self, principal: Principal, space_id: int) -> list[Role]:
        def read(conn: sqlite3.Connection) -> list[Role]:
            space_access(conn, space_id, principal).require_member()
            return role_store.list_roles(conn, space_id)

        return await self.db.read(read)

    async def create_role(
        self,
        principal: Principal,
        space_id: int,
        *,
        name: str,
        color: int | None,
        hoist: bool | None,
        permissions: list[str] | None,
        mentionable: bool | None,
        reason: str | None = None,
    ) -> Role:
        """POST /spaces/{id}/roles: manage_roles, then the fields; placed above every role
        (G-40)."""

        def write(conn: sqlite3.Connection) -> tuple[Role, AuditLogEntry]:
            access = space_access(conn, space_id, principal)
            access.require("manage_roles")
            clean = clean_name(name)
            checked_color = check_range(color or 0, "color", 0, COLOR_MAX)
            names = check_permission_names(permissions or [])
            access.require_can_grant(names)
            if role_store.count_roles(conn, space_id) >= ROLES_PER_SPACE:
                raise ValidationError(
                    f"a space can have at most {ROLES_PER_SPACE} roles", field="name"
                )
            role = role_store.create_role(
                conn,
                role_id=self.ctx.new_id(),
                space_id=space_id,
                name=clean,
                permissions=names,
                color=checked_color,
                hoist=bool(hoist),
                mentionable=bool(mentionable),
                now=now_ts(),
            )
            return role, _audit_role(conn, self.ctx, principal, "role_create", None, role, reason)

        role, entry = await self.db.write(write)
        self.ctx.publish(
            role_event("role.create", role),
            SessionControl(kind="permissions_changed", space_id=space_id),
        )
        self.ctx.get(AuditLogService).published(entry)
        return role

    async def update_role(
        self,
        principal: Principal,
        space_id: int,
        role_id: int,
        changes: dict[str, Any],
        *,
        reason: str | None = None,
    ) -> Role:
        """PATCH /spaces/{id}/roles/{rid}: manage_roles and ROLE-HIERARCHY(role). `changes`
        holds the fields sent (None for icon clears it). The fields are checked after the
        permission, the role's existence and the hierarchy (API.md 3.10)."""
        position: int | None = changes.get("position")
        images = self.ctx.get(ImageService)
        icon: str | None = changes.get("icon")
        prepared: PreparedImage | None = None
        if icon is not None:
            # G-25: an icon is an uploaded image (a data URI, stored and served by the CDN) or
            # an emoji, never a URL to anywhere; the current value is accepted unchanged.
            # Checked after the permission, like every field.
            _, current = await self.db.read(_editable_role, principal, space_id, role_id)
            if icon != current.icon:
                if icon.startswith("data:"):
                    prepared = await images.prepare(icon, field="icon", max_bytes=256 * 1024)
                elif not is_emoji_text(icon):
                    raise ValidationError("must be an image (data URI) or an emoji", field="icon")

        def write(
            conn: sqlite3.Connection,
        ) -> tuple[list[Role], list[AuditLogEntry], list[StoredFile]]:
            access, role = _editable_role(conn, principal, space_id, role_id)
            before = {r.id: r for r in role_store.list_roles(conn, space_id)}
            fields = _role_fields(changes)
            if role.is_everyone and "name" in fields and fields["name"] != role.name:
                raise ValidationError("the @everyone role cannot be renamed", field="name")
            if "permissions" in fields:
                access.require_can_grant(
                    frozenset(fields["permissions"]) - frozenset(role.permissions)
                )
            replaced: list[StoredFile] = []
            if "icon" in changes:
                # Written inside the transaction: a refused change leaves no file (D17).
                stored = None if prepared is None else images.save_prepared(prepared, ICONS)
                fields["icon"] = icon if stored is None else stored.hash
                if fields["icon"] != role.icon:
                    replaced = file_refs.image_files(ICONS, role.icon)
            now = now_ts()
            role_store.update_role(conn, role_id, fields, now)
            moved: set[int] = set()
            if position is not None and position != role.position:
                moved = _apply_positions(conn, access, {role_id: position}, now)
            updated = {r.id: r for r in role_store.list_roles(conn, space_id)}
            changed = [updated[role_id]] if fields or role_id in moved else []
            changed += [updated[i] for i in sorted(moved - {role_id})]
            entries = _audit_roles(conn, self.ctx, principal, before, changed, reason)
            return changed, entries, replaced

        changed, entries, replaced = await self.db.write(write)
        await self.ctx.get(FileCleanup).release(replaced)
        if not changed:
            return await self._get(principal, space_id, role_id)
        self.ctx.publish(
            *(role_event("role.update", r) for r in changed),
            SessionControl(kind="permissions_changed", space_id=space_id),
        )
        self.ctx.get(AuditLogService).published(*entries)
        return changed[0]

    async def _get(self, principal: Principal, space_id: int, role_id: int) -> Role:
        def read(conn: sqlite3.Connection) -> Role:
            space_access(conn, space_id, principal).require_member()
            role = role_store.get_role(conn, space_id, role_id)
            if role is None:
                raise NotFoundError("unknown_role")
            return role

        return await self.db.read(read)

    async def reorder(
        self,
        principal: Principal,
        space_id: int,
        requested: list[tuple[int, int]],
        *,
        reason: str | None = None,
    ) -> list[Role]:
        """PATCH /spaces/{id}/roles: [{id, position}] applied atomically and renumbered."""

        def write(
            conn: sqlite3.Connection,
        ) -> tuple[list[Role], list[Role], list[AuditLogEntry]]:
            access = space_access(conn, space_id, principal)
            access.require("manage_roles")
            wanted: dict[int, int] = {}
            for role_id, position in requested:
                if role_id in wanted:
                    raise ValidationError("a role is listed twice", field="id")
                wanted[role_id] = position
            before = {r.id: r for r in role_store.list_roles(conn, space_id)}
            moved = _apply_positions(conn, access, wanted, now_ts()) if wanted else set()
            roles = role_store.list_roles(conn, space_id)
            changed = [r for r in roles if r.id in moved]
            entries = _audit_roles(conn, self.ctx, principal, before, changed, reason)
            return roles, changed, entries

        roles, moved, entries = await self.db.write(write)
        if moved:
            self.ctx.publish(
                *(role_event("role.update", r) for r in moved),
                SessionControl(kind="permissions_changed", space_id=space_id),
            )
            self.ctx.get(AuditLogService).published(*entries)
        return roles

    async def delete_role(
        self, principal: Principal, space_id: int, role_id: int, *, reason: str | None = None
    ) -> None:
        """DELETE /spaces/{id}/roles/{rid}: manage_roles, not @everyone, ROLE-HIERARCHY."""

        def write(
            conn: sqlite3.Connection,
        ) -> tuple[list[Channel], AuditLogEntry, list[StoredFile]]:
            access = space_access(conn, space_id, principal)
            access.require("manage_roles")
            role = role_store.get_role(conn, space_id, role_id)
            if role is None:
                raise NotFoundError("unknown_role")
            if role.is_everyone:
                raise ForbiddenError("cannot delete the @everyone role")
            access.require_outranks_role(role.position)
            touched = role_store.delete_role(conn, space_id, role_id)
            entry = _audit_role(conn, self.ctx, principal, "role_delete", role, None, reason)
            channels = channel_store.channels_by_ids(conn, space_id, touched) if touched else []
            return channels, entry, file_refs.image_files(ICONS, role.icon)

        channels, entry, files = await self.db.write(write)
        await self.ctx.get(FileCleanup).release(files)
        self.ctx.publish(
            Event(
                type="role.delete",
                data={"space_id": str(space_id), "role_id": str(role_id), "id": str(role_id)},
                space_id=space_id,
            ),
            *_channel_updates(channels),
            SessionControl(kind="permissions_changed", space_id=space_id),
        )
        self.ctx.get(AuditLogService).published(entry)


def _editable_role(
    conn: sqlite3.Connection, principal: Principal, space_id: int, role_id: int
) -> tuple[SpaceAccess, Role]:
    """The caller's standing and the role, if it may edit it (manage_roles and above it)."""
    access = space_access(conn, space_id, principal)
    access.require("manage_roles")
    role = role_store.get_role(conn, space_id, role_id)
    if role is None:
        raise NotFoundError("unknown_role")
    access.require_outranks_role(role.position)
    return access, role


def _audit_roles(
    conn: sqlite3.Connection,
    ctx: Context,
    principal: Principal,
    before: dict[int, Role],
    changed: list[Role],
    reason: str | None,
) -> list[AuditLogEntry]:
    """role_update entries for roles whose audited fields changed."""
    return [
        _audit_role(conn, ctx, principal, "role_update", before[role.id], role, reason)
        for role in changed
        if role.id in before and audited_role(before[role.id]) != audited_role(role)
    ]


def _apply_positions(
    conn: sqlite3.Connection, access: SpaceAccess, wanted: dict[int, int], now: str
) -> set[int]:
    """Validate and apply requested role positions; returns ids whose position changed."""
    space_id = access.space.id
    roles = {r.id: r for r in role_store.list_roles(conn, space_id)}
    for role_id, position in wanted.items():
        role = roles.get(role_id)
        if role is None:
            raise NotFoundError("unknown_role")
        if role.is_everyone:
            if position != 0:
                raise ValidationError("the @everyone role cannot be moved", field="position")
            continue
        if position <= 0:
            raise ValidationError("only @everyone can be at position 0", field="position")
        if position != role.position:
            access.require_outranks_role(role.position)
            access.require_outranks_role(position)
    current = {r.id: r.position for r in roles.values()}
    final = reorder_positions(current, wanted, everyone_id=space_id)
    changes = {i: p for i, p in final.items() if p != current[i]}
    role_store.set_role_positions(conn, changes, now)
    return set(changes)
