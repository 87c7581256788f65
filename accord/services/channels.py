"""The Channel resource of a space and its permission overwrites (API.md 3.5-3.6).

Visibility (G-06, G-07): listing and reading a channel need `view_channel` in that channel;
a channel the caller cannot view does not exist for them (404). Readers of a public space who
are not members resolve as @everyone. Overwrites (G-05): names validated, `administrator`
never allowed, the caller must hold every permission they put in or take out of an overwrite,
role targets must be roles of this space below the caller, member targets members below the
caller. Channel bodies are validated (D21, D-ctype, G-25); `parent_id` must be a category of
the same space (G-04). At most 500 channels per space (D23). Deletion removes the channel's
messages, overwrites, invites and pins and detaches its children in one transaction (G-14).
"""

from __future__ import annotations

import sqlite3
from typing import Any

from accord.auth.principal import Principal
from accord.errors import NotFoundError, ValidationError
from accord.events.types import BusItem, Event, SessionControl
from accord.models.audit_log import AuditLogEntry
from accord.models.channels import CHANNEL_TYPES, Channel, PermissionOverwrite
from accord.models.spaces import Space
from accord.services.audit_log import AuditLogService, audit
from accord.services.context import Context, Service
from accord.services.file_cleanup import FileCleanup
from accord.services.members import target_position
from accord.services.permissions import (
    ChannelAccess,
    SpaceAccess,
    channel_access,
    channel_permissions_in,
    space_access,
    space_access_for,
)
from accord.services.roles import check_permission_names
from accord.services.spaces import check_range, check_text, clean_name
from accord.storage import channels as channel_store
from accord.storage import file_refs
from accord.storage import members as member_store
from accord.storage import roles as role_store
from accord.storage import spaces as space_store
from accord.storage.file_refs import StoredFile
from accord.times import now_ts

CHANNELS_PER_SPACE = 500  # D23
TOPIC_MAX = 1024  # D21
POSITION_MAX = 1_000_000
RATE_LIMIT_MAX = 21_600
BITRATE_RANGE = (8_000, 384_000)
USER_LIMIT_MAX = 99


def validate_channel_fields(changes: dict[str, Any], *, creating: bool) -> dict[str, Any]:
    """Checked column values for the fields present in `changes` (None clears topic, parent,
    bitrate and user_limit on update)."""
    fields: dict[str, Any] = {}
    if changes.get("name") is not None or creating:
        fields["name"] = clean_name(changes.get("name") or "")
    if creating:
        kind = changes.get("type") or "text"
        if kind not in CHANNEL_TYPES:
            raise ValidationError(f"must be one of {', '.join(CHANNEL_TYPES)}", field="type")
        fields["type"] = kind
    if "topic" in changes:
        topic = changes["topic"]
        fields["topic"] = None if topic is None else check_text(topic, "topic", TOPIC_MAX)
    if changes.get("position") is not None:
        fields["position"] = check_range(changes["position"], "position", 0, POSITION_MAX)
    if changes.get("rate_limit") is not None:
        fields["rate_limit"] = check_range(changes["rate_limit"], "rate_limit", 0, RATE_LIMIT_MAX)
    if "bitrate" in changes:
        bitrate = changes["bitrate"]
        fields["bitrate"] = (
            None if bitrate is None else check_range(bitrate, "bitrate", *BITRATE_RANGE)
        )
    if "user_limit" in changes:
        limit = changes["user_limit"]
        fields["user_limit"] = (
            None if limit is None else check_range(limit, "user_limit", 0, USER_LIMIT_MAX)
        )
    for flag in ("nsfw", "archived"):
        if changes.get(flag) is not None:
            fields[flag] = bool(changes[flag])
    if "parent_id" in changes:
        fields["parent_id"] = changes["parent_id"]
    return fields


def _check_parent(
    conn: sqlite3.Connection, space_id: int, parent_id: int | None, *, kind: str, own_id: int = 0
) -> None:
    """A parent must be a category of the same space (G-04); categories have no parent."""
    if parent_id is None:
        return
    if kind == "category":
        raise ValidationError("a category cannot have a parent", field="parent_id")
    parent = channel_store.get_space_channel(conn, space_id, parent_id)
    if parent is None or parent_id == own_id:
        raise NotFoundError("unknown_channel")
    if parent.type != "category":
        raise ValidationError("must be a category channel", field="parent_id")


def channel_event(kind: str, channel: Channel) -> Event:
    """channel.create / channel.update, seen only by those who can view the channel."""
    return Event(
        type=kind, data=channel.to_wire(), space_id=channel.space_id, channel_id=channel.id
    )


_AUDITED_FIELDS = (
    "name",
    "type",
    "topic",
    "position",
    "parent_id",
    "nsfw",
    "rate_limit",
    "bitrate",
    "user_limit",
    "archived",
)


def audited_channel(channel: Channel) -> dict[str, Any]:
    """The channel fields an audit entry compares (ids as strings, like the wire)."""
    fields = {name: getattr(channel, name) for name in _AUDITED_FIELDS}
    if fields["parent_id"] is not None:
        fields["parent_id"] = str(fields["parent_id"])
    return fields


def _audit_channel(
    conn: sqlite3.Connection,
    ctx: Context,
    principal: Principal,
    action: str,
    before: Channel | None,
    after: Channel | None,
    reason: str | None,
) -> AuditLogEntry:
    channel = after or before
    assert channel is not None
    assert channel.space_id is not None
    return audit(
        conn,
        ctx,
        principal,
        channel.space_id,
        action,
        target_id=channel.id,
        target_type="channel",
        reason=reason,
        before=None if before is None else audited_channel(before),
        after=None if after is None else audited_channel(after),
    )


def _audit_overwrite(
    conn: sqlite3.Connection,
    ctx: Context,
    principal: Principal,
    channel: Channel,
    before: PermissionOverwrite | None,
    after: PermissionOverwrite | None,
    reason: str | None,
) -> AuditLogEntry | None:
    """channel_overwrite_create/update/delete on the channel; the change is the overwrite
    object under `permission_overwrite` (None when there was none)."""
    if before == after:
        return None
    if before is None:
        action = "channel_overwrite_create"
    elif after is None:
        action = "channel_overwrite_delete"
    else:
        action = "channel_overwrite_update"
    assert channel.space_id is not None
    return audit(
        conn,
        ctx,
        principal,
        channel.space_id,
        action,
        target_id=channel.id,
        target_type="channel",
        reason=reason,
        before={"permission_overwrite": None if before is None else before.to_wire()},
        after={"permission_overwrite": None if after is None else after.to_wire()},
    )


def visible_channels(conn: sqlite3.Connection, access: SpaceAccess) -> list[Channel]:
    return [
        channel
        for channel in channel_store.list_channels(conn, access.space.id)
        if "view_channel" in channel_permissions_in(access, channel)
    ]


class ChannelService(Service):
    async def list_channels(self, principal: Principal | None, space_id: int) -> list[Channel]:
        """GET /spaces/{id}/channels: the channels the caller can view, by position."""

        def read(conn: sqlite3.Connection) -> list[Channel]:
            space = space_store.get_space(conn, space_id)
            if space is None:
                raise NotFoundError("unknown_space")
            access = space_access_for(conn, space, principal)
            access.require_reader()
            return visible_channels(conn, access)

        return await self.db.read(read)

    async def require_permission(
        self, principal: Principal, channel_id: int, permission: str
    ) -> None:
        """CHANNEL(permission) alone: routes run it before rejecting an invalid body, so a
        caller without the permission gets 403 rather than 400/422/404 (API.md 3.6)."""

        def read(conn: sqlite3.Connection) -> None:
            access = channel_access(conn, channel_id, principal)
            access.require_visible_member()
            access.require(permission)

        await self.db.read(read)

    async def get_channel(self, principal: Principal | None, channel_id: int) -> Channel:
        def read(conn: sqlite3.Connection) -> Channel:
            access = channel_access(conn, channel_id, principal)
            access.require_visible()
            return access.channel

        return await self.db.read(read)

    async def create_channel(
        self,
        principal: Principal,
        space_id: int,
        changes: dict[str, Any],
        *,
        reason: str | None = None,
    ) -> Channel:
        """POST /spaces/{id}/channels: manage_channels, then the fields."""

        def write(conn: sqlite3.Connection) -> tuple[Channel, AuditLogEntry]:
            access = space_access(conn, space_id, principal)
            access.require("manage_channels")
            fields = validate_channel_fields(changes, creating=True)
            fields.pop("archived", None)
            _check_parent(conn, space_id, fields.get("parent_id"), kind=fields["type"])
            if channel_store.count_channels(conn, space_id) >= CHANNELS_PER_SPACE:
                raise ValidationError(
                    f"a space can have at most {CHANNELS_PER_SPACE} channels", field="name"
                )
            channel = channel_store.insert_channel(
                conn, channel_id=self.ctx.new_id(), space_id=space_id, now=now_ts(), **fields
            )
            entry = _audit_channel(
                conn, self.ctx, principal, "channel_create", None, channel, reason
            )
            return channel, entry

        channel, entry = await self.db.write(write)
        self.ctx.publish(channel_event("channel.create", channel))
        self.ctx.get(AuditLogService).published(entry)
        return channel

    async def update_channel(
        self,
        principal: Principal,
        channel_id: int,
        changes: dict[str, Any],
        *,
        reason: str | None = None,
    ) -> Channel:
        """PATCH /channels/{id}: manage_channels in the channel, then the fields; `type`
        cannot change."""

        def write(conn: sqlite3.Connection) -> tuple[Channel, AuditLogEntry | None, bool]:
            access = channel_access(conn, channel_id, principal)
            access.require_visible_member()
            access.require("manage_channels")
            fields = validate_channel_fields(changes, creating=False)
            if "parent_id" in fields:
                _check_parent(
                    conn,
                    access.space.id,
                    fields["parent_id"],
                    kind=access.channel.type,
                    own_id=channel_id,
                )
            if fields:
                channel_store.update_channel(conn, channel_id, fields, now_ts())
            channel = channel_store.get_channel(conn, channel_id)
            assert channel is not None
            entry = None
            if audited_channel(access.channel) != audited_channel(channel):
                entry = _audit_channel(
                    conn, self.ctx, principal, "channel_update", access.channel, channel, reason
                )
            return channel, entry, bool(fields)

        channel, entry, updated = await self.db.write(write)
        if updated:
            self.ctx.publish(channel_event("channel.update", channel))
        self.ctx.get(AuditLogService).published(entry)
        return channel

    async def delete_channel(
        self, principal: Principal, channel_id: int, *, reason: str | None = None
    ) -> None:
        """DELETE /channels/{id}: manage_channels; children are detached (API.md 3.6)."""

        def write(
            conn: sqlite3.Connection,
        ) -> tuple[Channel, list[Channel], Space | None, AuditLogEntry, list[StoredFile]]:
            access = channel_access(conn, channel_id, principal)
            access.require_visible_member()
            access.require("manage_channels")
            space_id = access.space.id
            files = file_refs.channel_files(conn, channel_id)  # released after the commit
            children, cleared = channel_store.delete_channel(conn, space_id, channel_id)
            detached = channel_store.channels_by_ids(conn, space_id, children)
            space = space_store.get_space(conn, space_id) if cleared else None
            entry = _audit_channel(
                conn, self.ctx, principal, "channel_delete", access.channel, None, reason
            )
            return access.channel, detached, space, entry, files

        channel, detached, space, entry, files = await self.db.write(write)
        items: list[BusItem] = [
            Event(type="channel.delete", data=channel.to_wire(), space_id=channel.space_id)
        ]
        items += [channel_event("channel.update", child) for child in detached]
        if space is not None:
            items.append(Event(type="space.update", data=space.to_wire(), space_id=space.id))
        self.ctx.publish(*items)
        self.ctx.get(AuditLogService).published(entry)
        await self.ctx.get(FileCleanup).release(files)

    async def reorder(
        self,
        principal: Principal,
        space_id: int,
        requested: list[dict[str, Any]],
        *,
        reason: str | None = None,
    ) -> list[Channel]:
        """PATCH /spaces/{id}/channels: [{id, position, parent_id?}], all in this space."""

        def write(
            conn: sqlite3.Connection,
        ) -> tuple[list[Channel], list[Channel], list[AuditLogEntry]]:
            access = space_access(conn, space_id, principal)
            access.require("manage_channels")
            wanted: dict[int, dict[str, Any]] = {}
            for item in requested:
                if item["id"] in wanted:
                    raise ValidationError("a channel is listed twice", field="id")
                fields = {"position": check_range(item["position"], "position", 0, POSITION_MAX)}
                if "parent_id" in item:
                    fields["parent_id"] = item["parent_id"]
                wanted[item["id"]] = fields
            current = {c.id: c for c in channel_store.list_channels(conn, space_id)}
            changes: dict[int, dict[str, Any]] = {}
            for channel_id, fields in wanted.items():
                channel = current.get(channel_id)
                if channel is None:
                    raise NotFoundError("unknown_channel")
                if "parent_id" in fields:
                    _check_parent(
                        conn, space_id, fields["parent_id"], kind=channel.type, own_id=channel_id
                    )
                diff = {k: v for k, v in fields.items() if getattr(channel, k) != v}
                if diff:
                    changes[channel_id] = diff
            channel_store.set_channel_positions(conn, changes, now_ts())
            moved = channel_store.channels_by_ids(conn, space_id, list(changes))
            entries = [
                _audit_channel(
                    conn, self.ctx, principal, "channel_update", current[c.id], c, reason
                )
                for c in moved
            ]
            return visible_channels(conn, access), moved, entries

        channels, moved, entries = await self.db.write(write)
        self.ctx.get(AuditLogService).published(*entries)
        if moved:
            self.ctx.publish(
                Event(
                    type="channel.reorder",
                    data={
                        "space_id": str(space_id),
                        "channels": [
                            {
                                "id": str(c.id),
                                "position": c.position,
                                "parent_id": None if c.parent_id is None else str(c.parent_id),
                            }
                            for c in moved
                        ],
                    },
                    space_id=space_id,
                ),
                *(channel_event("channel.update", c) for c in moved),
            )
        return channels

    # -- permission overwrites ----------------------------------------------------------------

    async def list_overwrites(
        self, principal: Principal, channel_id: int
    ) -> tuple[PermissionOverwrite, ...]:
        """GET /channels/{id}/permissions (and /overwrites): manage_roles in the channel."""

        def read(conn: sqlite3.Connection) -> tuple[PermissionOverwrite, ...]:
            access = channel_access(conn, channel_id, principal)
            access.require_visible_member()
            access.require("manage_roles")
            return access.channel.permission_overwrites

        return await self.db.read(read)

    async def put_overwrite(
        self,
        principal: Principal,
        channel_id: int,
        target_id: int,
        *,
        kind: str,
        allow: list[str],
        deny: list[str],
        reason: str | None = None,
    ) -> PermissionOverwrite:
        """PUT /channels/{id}/permissions/{target}: create or replace one overwrite."""

        def write(
            conn: sqlite3.Connection,
        ) -> tuple[PermissionOverwrite, Channel, AuditLogEntry | None]:
            access = channel_access(conn, channel_id, principal)
            access.require_visible_member()
            access.require("manage_roles")
            if kind not in ("role", "member", "user"):
                raise ValidationError("type must be 'role' or 'member'", field="type")
            stored_kind = "role" if kind == "role" else "member"  # D-ow
            allowed = check_permission_names(allow, "allow")
            denied = check_permission_names(deny, "deny")
            if "administrator" in allowed or "administrator" in denied:
                raise ValidationError("overwrites cannot contain administrator", field="allow")
            overwrite = PermissionOverwrite(target_id, stored_kind, tuple(allowed), tuple(denied))
            previous = _find_overwrite(access.channel, target_id)
            _check_overwrite_target(conn, access, overwrite)
            before = set() if previous is None else {*previous.allow, *previous.deny}
            access.require_can_grant(frozenset({*allowed, *denied}) - before)
            channel_store.put_overwrite(conn, channel_id, overwrite)
            channel = channel_store.get_channel(conn, channel_id)
            assert channel is not None
            entry = _audit_overwrite(
                conn, self.ctx, principal, channel, previous, overwrite, reason
            )
            return overwrite, channel, entry

        overwrite, channel, entry = await self.db.write(write)
        self._overwrites_changed(channel)
        self.ctx.get(AuditLogService).published(entry)
        return overwrite

    async def delete_overwrite(
        self, principal: Principal, channel_id: int, target_id: int, *, reason: str | None = None
    ) -> None:
        """DELETE /channels/{id}/permissions/{target}: idempotent."""

        def write(conn: sqlite3.Connection) -> tuple[Channel, AuditLogEntry | None] | None:
            access = channel_access(conn, channel_id, principal)
            access.require_visible_member()
            access.require("manage_roles")
            previous = _find_overwrite(access.channel, target_id)
            if previous is None:
                return None
            _check_overwrite_target(conn, access, previous, deleting=True)
            access.require_can_grant(frozenset({*previous.allow, *previous.deny}))
            channel_store.delete_overwrite(conn, channel_id, target_id)
            channel = channel_store.get_channel(conn, channel_id)
            assert channel is not None
            entry = _audit_overwrite(conn, self.ctx, principal, channel, previous, None, reason)
            return channel, entry

        done = await self.db.write(write)
        if done is not None:
            channel, entry = done
            self._overwrites_changed(channel)
            self.ctx.get(AuditLogService).published(entry)

    def _overwrites_changed(self, channel: Channel) -> None:
        assert channel.space_id is not None
        self.ctx.publish(
            SessionControl(kind="permissions_changed", space_id=channel.space_id),
            channel_event("channel.update", channel),
        )


def _find_overwrite(channel: Channel, target_id: int) -> PermissionOverwrite | None:
    for overwrite in channel.permission_overwrites:
        if overwrite.target_id == target_id:
            return overwrite
    return None


def _check_overwrite_target(
    conn: sqlite3.Connection,
    access: ChannelAccess,
    overwrite: PermissionOverwrite,
    *,
    deleting: bool = False,
) -> None:
    """The target is a role of this space below the caller, or a member below the caller
    (oneself excepted). A stale target (role or member gone) may still be deleted."""
    space_access_ = access.space_access
    space_id = access.space.id
    if overwrite.type == "role":
        role = role_store.get_role(conn, space_id, overwrite.target_id)
        if role is None:
            if deleting:
                return
            raise NotFoundError("unknown_role")
        space_access_.require_outranks_role(role.position)
        return
    if member_store.get_member(conn, space_id, overwrite.target_id) is None:
        if deleting:
            return
        raise NotFoundError("member not found")
    if overwrite.target_id != space_access_.user_id:
        space_access_.require_outranks_member(
            target_position(conn, space_access_, overwrite.target_id)
        )
