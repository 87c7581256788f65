"""Bans (API.md 3.11): list, read, ban, unban.

Banning needs `ban_members` and HIERARCHY over the target (the owner and oneself are never
banned); the target must be a real user (G-15). A ban ends the membership in the same
transaction and may delete the user's recent messages in the space
(`delete_message_seconds`, CLIENT.md 4.8). Unprivileged callers get 403 before any 404
(CLIENT.md 4.8). Events: ban.create / ban.delete to the space and the target, member.leave
when a member was removed, message.delete_bulk per channel for deleted messages (with the
thread replies that went with them). The messages go through the shared message delete, so
`last_message_id` is refreshed (G-23) and their attachment files are released after the commit.
"""

from __future__ import annotations

import sqlite3
import time

from accord.auth.principal import Principal
from accord.errors import NotFoundError
from accord.events.types import BusItem, Event
from accord.ids import ACCORD_EPOCH_MS
from accord.models.audit_log import AuditLogEntry
from accord.models.bans import Ban
from accord.models.users import User
from accord.services.audit_log import AuditLogService, audit
from accord.services.context import Service
from accord.services.file_cleanup import FileCleanup
from accord.services.members import member_left, target_position
from accord.services.permissions import space_access
from accord.services.spaces import check_range, check_text
from accord.storage import bans as ban_store
from accord.storage import members as member_store
from accord.storage import messages as message_store
from accord.storage import users as user_store
from accord.storage.file_refs import StoredFile
from accord.times import now_ts

REASON_MAX = 512  # D21b
DELETE_MESSAGES_MAX_S = 7 * 24 * 3600


def _ban_event(kind: str, data: dict[str, object], space_id: int, user_id: int) -> Event:
    return Event(type=kind, data=data, space_id=space_id, user_ids=frozenset({user_id}))


class BanService(Service):
    async def list_bans(
        self,
        principal: Principal,
        space_id: int,
        *,
        after: int | None = None,
        before: int | None = None,
        limit: int | None = None,
    ) -> list[Ban]:
        def read(conn: sqlite3.Connection) -> list[Ban]:
            space_access(conn, space_id, principal).require("ban_members")
            return ban_store.list_bans(conn, space_id, after=after, before=before, limit=limit)

        return await self.db.read(read)

    async def get_ban(self, principal: Principal, space_id: int, user_id: int) -> Ban:
        def read(conn: sqlite3.Connection) -> Ban:
            space_access(conn, space_id, principal).require("ban_members")
            ban = ban_store.get_ban(conn, space_id, user_id)
            if ban is None:
                raise NotFoundError("ban not found")
            return ban

        return await self.db.read(read)

    async def ban(
        self,
        principal: Principal,
        space_id: int,
        user_id: int,
        *,
        reason: str | None,
        delete_message_seconds: int | None,
        audit_reason: str | None = None,
    ) -> Ban:
        """PUT /spaces/{id}/bans/{uid}: ban_members, HIERARCHY(target); create or replace.
        The audit entry carries `audit_reason` (X-Audit-Log-Reason), else the ban reason."""
        if reason is not None:
            reason = check_text(reason.strip(), "reason", REASON_MAX) or None
        if delete_message_seconds is not None:
            check_range(delete_message_seconds, "delete_message_seconds", 0, DELETE_MESSAGES_MAX_S)

        def write(
            conn: sqlite3.Connection,
        ) -> tuple[Ban, User | None, dict[int, list[int]], list[StoredFile], AuditLogEntry]:
            access = space_access(conn, space_id, principal)
            access.require("ban_members")
            user = user_store.get_user(conn, user_id)
            if user is None:
                raise NotFoundError("unknown_user")
            access.require_outranks_member(target_position(conn, access, user_id))
            was_member = member_store.remove_member(conn, space_id, user_id)
            ban = ban_store.put_ban(
                conn,
                space_id=space_id,
                user_id=user_id,
                reason=reason,
                banned_by=principal.user_id,
                now=now_ts(),
            )
            deleted: dict[int, list[int]] = {}
            files: list[StoredFile] = []
            if delete_message_seconds:
                since_ms = int(time.time() * 1000) - delete_message_seconds * 1000
                min_id = max(0, since_ms - ACCORD_EPOCH_MS) << 22
                found = ban_store.messages_since(conn, space_id, user_id, min_id)
                for channel_id, ids in found.items():
                    # The shared delete: thread replies cascade and are listed, the channel's
                    # last_message_id is refreshed (G-23), attachment files are collected.
                    gone = message_store.delete_messages(conn, channel_id, ids)
                    deleted[channel_id] = gone.ids
                    files += gone.files
            entry = audit(
                conn,
                self.ctx,
                principal,
                space_id,
                "member_ban_add",
                target_id=user_id,
                target_type="user",
                reason=audit_reason or reason,
                after={"delete_message_seconds": delete_message_seconds or None},
            )
            return ban, user if was_member else None, deleted, files, entry

        ban, removed, deleted, files, entry = await self.db.write(write)
        items: list[BusItem] = []
        if removed is not None:
            items += member_left(space_id, removed, user_id)
        items.append(_ban_event("ban.create", ban.to_wire(), space_id, user_id))
        for channel_id, ids in deleted.items():
            items.append(
                Event(
                    type="message.delete_bulk",
                    data={
                        "ids": [str(i) for i in ids],
                        "channel_id": str(channel_id),
                        "space_id": str(space_id),
                    },
                    space_id=space_id,
                    channel_id=channel_id,
                )
            )
        self.ctx.publish(*items)
        self.ctx.get(AuditLogService).published(entry)
        await self.ctx.get(FileCleanup).release(files)
        return ban

    async def unban(
        self, principal: Principal, space_id: int, user_id: int, *, reason: str | None = None
    ) -> None:
        """DELETE /spaces/{id}/bans/{uid}: ban_members (403 wins over 404); idempotent."""

        def write(conn: sqlite3.Connection) -> AuditLogEntry | None:
            space_access(conn, space_id, principal).require("ban_members")
            if not ban_store.delete_ban(conn, space_id, user_id):
                return None
            return audit(
                conn,
                self.ctx,
                principal,
                space_id,
                "member_ban_remove",
                target_id=user_id,
                target_type="user",
                reason=reason,
            )

        entry = await self.db.write(write)
        if entry is not None:
            self.ctx.get(AuditLogService).published(entry)
            self.ctx.publish(
                _ban_event(
                    "ban.delete",
                    {"space_id": str(space_id), "user_id": str(user_id)},
                    space_id,
                    user_id,
                )
            )
