"""Reactions on messages (API.md 3.8, CLIENT.md 4.11, D-react).

Reactions are only ever made on messages of the path channel (G-04): an unknown or deleted
message is `404 unknown_message`. Adding needs `add_reactions` (and not being timed out,
D-to); a custom emoji must exist, be usable by the caller (its role restriction) and, from
another space, needs `use_external_emojis`. Removing one's own reaction needs only access to
the channel; removing others' or clearing needs `manage_messages`. Each change publishes
`reaction.*` with `{channel_id, message_id, user_id, emoji: {id, name}, space_id}`.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from accord.auth.principal import Principal
from accord.errors import ForbiddenError, NotFoundError, ValidationError
from accord.events.types import Event
from accord.models.messages import REACTIONS_PER_MESSAGE_MAX, ReactionEmoji, parse_reaction_emoji
from accord.services.context import Service
from accord.services.dms import MessageChannelAccess, load_channel_access
from accord.storage import emojis as emoji_store
from accord.storage import messages as message_store
from accord.storage import reactions as reaction_store
from accord.times import now_ts

REACTION_USERS_DEFAULT = 25
REACTION_USERS_MAX = 100


def _require_message(conn: sqlite3.Connection, channel_id: int, message_id: int) -> None:
    if not message_store.message_exists_in(conn, channel_id, message_id):
        raise NotFoundError("unknown_message")


def _resolve_custom(
    conn: sqlite3.Connection, access: MessageChannelAccess, emoji: ReactionEmoji
) -> ReactionEmoji:
    """A custom emoji the caller may use, with its current name."""
    assert emoji.id is not None
    found = emoji_store.get_emoji(conn, emoji.id)
    if found is None:
        raise NotFoundError("unknown_emoji")
    if found.space_id != access.space_id:
        access.require("use_external_emojis")
    elif found.role_ids and access.space is not None:
        space = access.space
        allowed = space.is_owner or space.is_instance_admin or space.has("administrator")
        if not allowed and not set(found.role_ids) & space.roles.member_role_ids:
            raise ForbiddenError("you cannot use this emoji")
    return ReactionEmoji(key=emoji.key, name=found.name, id=found.id)


class ReactionService(Service):
    def _event(
        self,
        kind: str,
        access: MessageChannelAccess,
        message_id: int,
        *,
        user_id: int | None = None,
        emoji: ReactionEmoji | None = None,
    ) -> None:
        data: dict[str, Any] = {
            "channel_id": str(access.channel.id),
            "message_id": str(message_id),
            "space_id": None if access.space_id is None else str(access.space_id),
        }
        if user_id is not None:
            data["user_id"] = str(user_id)
        if emoji is not None:
            data["emoji"] = emoji.to_wire()
        self.ctx.publish(Event(type=kind, data=data, **access.audience()))

    async def add(
        self, principal: Principal, channel_id: int, message_id: int, raw_emoji: str
    ) -> None:
        """PUT …/reactions/{emoji}/@me (idempotent)."""
        parsed = parse_reaction_emoji(raw_emoji)
        now = now_ts()

        def write(conn: sqlite3.Connection) -> tuple[MessageChannelAccess, ReactionEmoji, bool]:
            access = load_channel_access(conn, channel_id, principal)
            access.require("view_channel")
            access.require("read_history")
            access.require("add_reactions")
            access.require_not_timed_out()
            _require_message(conn, channel_id, message_id)
            emoji = _resolve_custom(conn, access, parsed) if parsed.id is not None else parsed
            if (
                not reaction_store.has_emoji(conn, message_id, emoji.key)
                and reaction_store.count_emojis(conn, message_id) >= REACTIONS_PER_MESSAGE_MAX
            ):
                raise ValidationError(
                    f"a message can have at most {REACTIONS_PER_MESSAGE_MAX} different reactions",
                    field="emoji",
                )
            added = reaction_store.add_reaction(conn, message_id, emoji, principal.user_id, now)
            return access, emoji, added

        access, emoji, added = await self.db.write(write)
        if added:
            self._event("reaction.add", access, message_id, user_id=principal.user_id, emoji=emoji)

    async def remove(
        self,
        principal: Principal,
        channel_id: int,
        message_id: int,
        raw_emoji: str,
        user_id: int | None = None,
    ) -> None:
        """DELETE …/reactions/{emoji}/@me, or …/{user_id} (manage_messages for others)."""
        emoji = parse_reaction_emoji(raw_emoji)
        target = principal.user_id if user_id is None else user_id

        def write(conn: sqlite3.Connection) -> tuple[MessageChannelAccess, bool, str]:
            access = load_channel_access(conn, channel_id, principal)
            access.require("view_channel")
            if target != principal.user_id:
                access.require("manage_messages")
            _require_message(conn, channel_id, message_id)
            name = conn.execute(
                "SELECT emoji_name FROM reactions WHERE message_id = ? AND emoji_key = ? LIMIT 1",
                (message_id, emoji.key),
            ).fetchone()
            removed = reaction_store.remove_reaction(conn, message_id, emoji.key, target)
            return access, removed, name[0] if name else emoji.name

        access, removed, name = await self.db.write(write)
        if removed:
            shown = ReactionEmoji(emoji.key, name, emoji.id)
            self._event("reaction.remove", access, message_id, user_id=target, emoji=shown)

    async def list_users(
        self,
        principal: Principal,
        channel_id: int,
        message_id: int,
        raw_emoji: str,
        *,
        after: int,
        limit: int,
    ) -> list[dict[str, Any]]:
        """GET …/reactions/{emoji}: User objects by id, after `after` (D-react)."""
        emoji = parse_reaction_emoji(raw_emoji)

        def read(conn: sqlite3.Connection) -> list[dict[str, Any]]:
            load_channel_access(conn, channel_id, principal).require_readable()
            _require_message(conn, channel_id, message_id)
            users = reaction_store.users_for(conn, message_id, emoji.key, after=after, limit=limit)
            return [u.to_wire(viewer_id=principal.user_id) for u in users]

        return await self.db.read(read)

    async def clear(
        self,
        principal: Principal,
        channel_id: int,
        message_id: int,
        raw_emoji: str | None = None,
    ) -> None:
        """DELETE …/reactions[/{emoji}]: manage_messages."""
        emoji = parse_reaction_emoji(raw_emoji) if raw_emoji is not None else None

        def write(conn: sqlite3.Connection) -> tuple[MessageChannelAccess, int, str | None]:
            access = load_channel_access(conn, channel_id, principal)
            access.require("view_channel")
            access.require("manage_messages")
            _require_message(conn, channel_id, message_id)
            if emoji is None:
                return access, reaction_store.clear_all(conn, message_id), None
            name = conn.execute(
                "SELECT emoji_name FROM reactions WHERE message_id = ? AND emoji_key = ? LIMIT 1",
                (message_id, emoji.key),
            ).fetchone()
            removed = reaction_store.clear_emoji(conn, message_id, emoji.key)
            return access, removed, name[0] if name else None

        access, removed, name = await self.db.write(write)
        if not removed:
            return
        if emoji is None:
            self._event("reaction.clear", access, message_id)
        else:
            shown = ReactionEmoji(emoji.key, name or emoji.name, emoji.id)
            self._event("reaction.clear_emoji", access, message_id, emoji=shown)
