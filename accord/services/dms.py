"""Who may do what in a channel that holds messages, and direct-message channels.

`load_channel_access` is the one permission check every message, pin, reaction, typing and
upload request runs inside its database hop: for a space channel it resolves roles and
overwrites (G-06/G-07), for a DM channel it admits the participants only (a DM is invisible,
404, to anyone else). `DmService` opens DM and group-DM channels and lists a user's DMs
(API.md 3.4, CLIENT.md 4.2).
"""

from __future__ import annotations

import dataclasses
import sqlite3
from collections.abc import Sequence
from typing import Any

from accord.auth.principal import Principal
from accord.errors import (
    ForbiddenError,
    MissingPermissionsError,
    NotFoundError,
    UnauthorizedError,
    ValidationError,
)
from accord.events.types import Event
from accord.models.channels import Channel
from accord.permissions import has_permission
from accord.services.context import Service
from accord.services.permissions import (
    NOT_MEMBER,
    SpaceAccess,
    channel_permissions_in,
    space_access_for,
)
from accord.storage import dms as dm_store
from accord.storage.permissions import get_channel_and_space
from accord.storage.users import get_users
from accord.times import now_ts

GROUP_DM_MAX_PARTICIPANTS = 10

# What a DM participant may do in a DM channel (no moderation: only their own messages).
DM_PERMISSIONS = frozenset(
    {
        "view_channel",
        "send_messages",
        "read_history",
        "add_reactions",
        "embed_links",
        "attach_files",
        "use_external_emojis",
    }
)


@dataclasses.dataclass(frozen=True, slots=True)
class MessageChannelAccess:
    """The caller's standing in a channel that holds messages (space channel or DM)."""

    channel: Channel
    permissions: frozenset[str]
    is_member: bool  # member of the space / participant of the DM
    can_read_as_public: bool  # non-member reading a public space as @everyone (G-06)
    space: SpaceAccess | None
    participants: tuple[int, ...] = ()

    @property
    def space_id(self) -> int | None:
        return self.channel.space_id

    @property
    def is_dm(self) -> bool:
        return self.channel.space_id is None

    def has(self, permission: str) -> bool:
        return has_permission(self.permissions, permission)

    def require(self, permission: str) -> None:
        if not self.is_member:
            raise ForbiddenError(NOT_MEMBER)
        if not self.has(permission):
            raise MissingPermissionsError(permission)

    def require_readable(self) -> None:
        """G-06/G-07: `view_channel` and `read_history` (members, or anyone in public spaces)."""
        if not (self.is_member or self.can_read_as_public):
            raise ForbiddenError(NOT_MEMBER)
        for permission in ("view_channel", "read_history"):
            if not self.has(permission):
                raise MissingPermissionsError(permission)

    def require_not_timed_out(self) -> None:
        if self.space is not None:
            self.space.require_not_timed_out()

    def audience(self) -> dict[str, Any]:
        """Event routing fields: the space and channel, or the DM's participants."""
        if self.is_dm:
            return {"user_ids": frozenset(self.participants)}
        return {"space_id": self.space_id, "channel_id": self.channel.id}


def load_channel_access(
    conn: sqlite3.Connection, channel_id: int, principal: Principal | None
) -> MessageChannelAccess:
    """Resolve the caller's access to a message channel. 404 unknown_channel if it is none."""
    found = get_channel_and_space(conn, channel_id)
    if found is None:
        raise NotFoundError("unknown_channel")
    channel, space = found
    if space is None:
        if principal is None:
            raise UnauthorizedError("authentication required")
        participants = dm_store.participants(conn, channel.id)
        if principal.user_id not in participants:
            raise NotFoundError("unknown_channel")  # a DM is invisible to outsiders
        return MessageChannelAccess(channel, DM_PERMISSIONS, True, False, None, participants)
    access = space_access_for(conn, space, principal)
    is_member = access.is_member or access.is_instance_admin
    if not is_member and not space.public and principal is None:
        raise UnauthorizedError("authentication required")
    return MessageChannelAccess(
        channel,
        channel_permissions_in(access, channel),
        is_member,
        space.public,
        access,
    )


def audience_of(conn: sqlite3.Connection, channel: Channel) -> dict[str, Any]:
    if channel.space_id is None:
        return {"user_ids": frozenset(dm_store.participants(conn, channel.id))}
    return {"space_id": channel.space_id, "channel_id": channel.id}


def _shares_space(conn: sqlite3.Connection, user_a: int, user_b: int) -> bool:
    row = conn.execute(
        "SELECT 1 FROM members a JOIN members b ON b.space_id = a.space_id"
        " WHERE a.user_id = ? AND b.user_id = ? LIMIT 1",
        (user_a, user_b),
    ).fetchone()
    return row is not None


def dm_wire(
    channel: Channel, participants: Sequence[int], users: dict[int, Any], viewer_id: int
) -> dict[str, Any]:
    """A DM channel as the client reads it: the Channel plus `recipients` (others first)."""
    others = [p for p in participants if p != viewer_id] or list(participants)
    recipients = [users[p].to_wire(viewer_id=viewer_id) for p in others if p in users]
    return channel.to_wire(recipients=recipients)


class DmService(Service):
    async def list_channels(self, principal: Principal) -> list[dict[str, Any]]:
        """GET /users/@me/channels: the caller's DM channels, latest message first."""

        def read(conn: sqlite3.Connection) -> list[dict[str, Any]]:
            found = dm_store.list_user_dm_channels(conn, principal.user_id)
            users = get_users(conn, list({p for _, ps in found for p in ps}))
            return [dm_wire(c, ps, users, principal.user_id) for c, ps in found]

        return await self.db.read(read)

    async def open_channel(
        self, principal: Principal, recipient_ids: Sequence[int]
    ) -> dict[str, Any]:
        """POST /users/@me/channels: one recipient → the (reused) DM; more → a group DM.

        Recipients must exist and share a space with the caller.
        """
        recipients = list(dict.fromkeys(recipient_ids))
        if not recipients:
            raise ValidationError("at least one recipient is required", field="recipients")
        if len(recipients) + 1 > GROUP_DM_MAX_PARTICIPANTS:
            raise ValidationError(
                f"a group DM can have at most {GROUP_DM_MAX_PARTICIPANTS} participants",
                field="recipients",
            )
        me = principal.user_id
        new_id = self.ctx.new_id()
        now = now_ts()

        def write(conn: sqlite3.Connection) -> tuple[dict[str, Any], tuple[int, ...], bool]:
            users = get_users(conn, [me, *recipients])
            for user_id in recipients:
                if user_id not in users or users[user_id].deleted:
                    raise NotFoundError("unknown_user")
                if user_id != me and not _shares_space(conn, me, user_id):
                    raise ForbiddenError("you do not share a space with this user")
            created = False
            if len(recipients) == 1:
                channel_id = dm_store.find_dm(conn, me, recipients[0])
                if channel_id is None:
                    channel_id = new_id
                    dm_store.create_dm_channel(
                        conn,
                        channel_id=channel_id,
                        type="dm",
                        owner_id=None,
                        user_ids=[me, recipients[0]],
                        now=now,
                    )
                    created = True
            else:
                channel_id = new_id
                dm_store.create_dm_channel(
                    conn,
                    channel_id=channel_id,
                    type="group_dm",
                    owner_id=me,
                    user_ids=[me, *recipients],
                    now=now,
                )
                created = True
            channel = dm_store.get_dm_channel(conn, channel_id)
            assert channel is not None
            participants = dm_store.participants(conn, channel_id)
            return dm_wire(channel, participants, users, me), participants, created

        wire, participants, created = await self.db.write(write)
        if created:
            self.ctx.publish(
                Event(type="channel.create", data=wire, user_ids=frozenset(participants))
            )
        return wire
