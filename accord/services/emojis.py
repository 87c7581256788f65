"""Custom emojis of a space (API.md 3.13, CLIENT.md 4.10, G-04, G-29, D17b, D21, D23).

Images are validated by their bytes (PNG, JPEG, GIF or WebP, at most 256 KiB and 128x128),
re-encoded as PNG (animated GIFs are kept too) and written inside the same transaction that
stores the row, after every other check, so a refused request leaves nothing behind.
Names follow D21 and are unique per space; a space holds at most 200 emojis. Events:
`emoji.create`/`emoji.update` `{space_id, emoji}` and `emoji.delete` `{space_id, emoji_id}`.
Every change writes its audit entry in the same transaction.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

from accord.auth.principal import Principal
from accord.errors import NotFoundError, ValidationError
from accord.events.types import Event
from accord.models.audit_log import AuditLogEntry
from accord.models.emojis import (
    EMOJI_IMAGE_MAX_BYTES,
    EMOJI_IMAGE_MAX_DIMENSION,
    EMOJIS_PER_SPACE_MAX,
    Emoji,
    validate_emoji_name,
)
from accord.services.audit_log import AuditLogService, audit
from accord.services.context import Context, Service
from accord.services.file_cleanup import FileCleanup
from accord.services.images import ImageService
from accord.services.permissions import space_access
from accord.storage import emojis as emoji_store
from accord.storage import file_refs
from accord.storage.file_refs import StoredFile
from accord.times import now_ts


def _check_roles(conn: sqlite3.Connection, space_id: int, role_ids: Sequence[int]) -> list[int]:
    unique = list(dict.fromkeys(role_ids))
    if not unique:
        return []
    marks = ",".join("?" * len(unique))
    found = {
        row[0]
        for row in conn.execute(
            f"SELECT id FROM roles WHERE space_id = ? AND id IN ({marks})", (space_id, *unique)
        )
    }
    if len(found) != len(unique):
        raise ValidationError("unknown role", field="roles")
    return unique


def _audited(emoji: Emoji) -> dict[str, Any]:
    return {"name": emoji.name, "roles": [str(r) for r in sorted(emoji.role_ids)]}


def _audit_emoji(
    conn: sqlite3.Connection,
    ctx: Context,
    principal: Principal,
    action: str,
    before: Emoji | None,
    after: Emoji | None,
    reason: str | None,
) -> AuditLogEntry:
    emoji = after or before
    assert emoji is not None
    return audit(
        conn,
        ctx,
        principal,
        emoji.space_id,
        action,
        target_id=emoji.id,
        target_type="emoji",
        reason=reason,
        before=None if before is None else _audited(before),
        after=None if after is None else _audited(after),
    )


def _emoji_event(kind: str, space_id: int, wire: dict[str, Any]) -> Event:
    """emoji.create / emoji.update: the emoji's wire form, seen by the space."""
    return Event(type=kind, data={"space_id": str(space_id), "emoji": wire}, space_id=space_id)


class EmojiService(Service):
    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self.public_url = (ctx.settings.public_url or "").rstrip("/") or None

    def _wire(self, emoji: Emoji) -> dict[str, Any]:
        return emoji.to_wire(self.public_url)

    async def list_emojis(self, principal: Principal, space_id: int) -> list[dict[str, Any]]:
        def read(conn: sqlite3.Connection) -> list[Emoji]:
            space_access(conn, space_id, principal).require_member()
            return emoji_store.list_space_emojis(conn, space_id)

        return [self._wire(e) for e in await self.db.read(read)]

    async def get_emoji(self, principal: Principal, space_id: int, emoji_id: int) -> dict[str, Any]:
        def read(conn: sqlite3.Connection) -> Emoji:
            space_access(conn, space_id, principal).require_member()
            emoji = emoji_store.get_emoji(conn, emoji_id, space_id)
            if emoji is None:
                raise NotFoundError("unknown_emoji")
            return emoji

        return self._wire(await self.db.read(read))

    def _check_create(
        self,
        conn: sqlite3.Connection,
        principal: Principal,
        space_id: int,
        raw_name: str,
        role_ids: Sequence[int],
    ) -> tuple[str, list[int]]:
        """manage_emojis, then the name (API.md 3: permission before body validation)."""
        space_access(conn, space_id, principal).require("manage_emojis")
        name = validate_emoji_name(raw_name)
        if emoji_store.name_taken(conn, space_id, name):
            raise ValidationError("an emoji with this name already exists", field="name")
        if emoji_store.count_space_emojis(conn, space_id) >= EMOJIS_PER_SPACE_MAX:
            raise ValidationError(f"a space can have at most {EMOJIS_PER_SPACE_MAX} emojis")
        return name, _check_roles(conn, space_id, role_ids)

    async def create_emoji(
        self,
        principal: Principal,
        space_id: int,
        *,
        name: str,
        image: str,
        role_ids: Sequence[int] = (),
        reason: str | None = None,
    ) -> dict[str, Any]:
        """POST /spaces/{s}/emojis: manage_emojis."""
        # Permission and name first, so a denied caller never makes us decode an image.
        name, _ = await self.db.read(self._check_create, principal, space_id, name, role_ids)
        images = self.ctx.get(ImageService)
        prepared = await images.prepare(
            image,
            field="image",
            max_bytes=EMOJI_IMAGE_MAX_BYTES,
            max_dimension=EMOJI_IMAGE_MAX_DIMENSION,
        )
        emoji_id = self.ctx.new_id()
        now = now_ts()

        def write(conn: sqlite3.Connection) -> tuple[Emoji, AuditLogEntry]:
            _, roles = self._check_create(conn, principal, space_id, name, role_ids)
            stored = images.save_prepared(prepared, "emojis")
            emoji_store.insert_emoji(
                conn,
                emoji_id=emoji_id,
                space_id=space_id,
                name=name,
                animated=stored.animated,
                creator_id=principal.user_id,
                image_key=stored.key,
                now=now,
            )
            emoji_store.set_emoji_roles(conn, emoji_id, roles)
            found = emoji_store.get_emoji(conn, emoji_id)
            assert found is not None
            entry = _audit_emoji(conn, self.ctx, principal, "emoji_create", None, found, reason)
            return found, entry

        emoji, entry = await self.db.write(write)
        self.ctx.get(AuditLogService).published(entry)
        wire = self._wire(emoji)
        self.ctx.publish(_emoji_event("emoji.create", space_id, wire))
        return wire

    async def update_emoji(
        self,
        principal: Principal,
        space_id: int,
        emoji_id: int,
        *,
        name: str | None,
        role_ids: Sequence[int] | None,
        reason: str | None = None,
    ) -> dict[str, Any]:
        """PATCH /spaces/{s}/emojis/{e}: manage_emojis; name and roles."""
        now = now_ts()

        def write(conn: sqlite3.Connection) -> tuple[Emoji, AuditLogEntry | None]:
            space_access(conn, space_id, principal).require("manage_emojis")
            new_name = validate_emoji_name(name) if name is not None else None
            emoji = emoji_store.get_emoji(conn, emoji_id, space_id)
            if emoji is None:
                raise NotFoundError("unknown_emoji")
            changed = False
            if new_name is not None and new_name != emoji.name:
                if emoji_store.name_taken(conn, space_id, new_name, except_id=emoji_id):
                    raise ValidationError("an emoji with this name already exists", field="name")
                emoji_store.rename_emoji(conn, emoji_id, new_name, now)
                changed = True
            if role_ids is not None:
                roles = _check_roles(conn, space_id, role_ids)
                if tuple(sorted(roles)) != tuple(sorted(emoji.role_ids)):
                    emoji_store.set_emoji_roles(conn, emoji_id, roles)
                    changed = True
            found = emoji_store.get_emoji(conn, emoji_id)
            assert found is not None
            if not changed:
                return found, None
            entry = _audit_emoji(conn, self.ctx, principal, "emoji_update", emoji, found, reason)
            return found, entry

        emoji, entry = await self.db.write(write)
        wire = self._wire(emoji)
        if entry is not None:
            self.ctx.get(AuditLogService).published(entry)
            self.ctx.publish(_emoji_event("emoji.update", space_id, wire))
        return wire

    async def delete_emoji(
        self, principal: Principal, space_id: int, emoji_id: int, *, reason: str | None = None
    ) -> None:
        """DELETE /spaces/{s}/emojis/{e}: manage_emojis; idempotent (G-40), scoped (G-04)."""

        def write(conn: sqlite3.Connection) -> tuple[AuditLogEntry, list[StoredFile]] | None:
            space_access(conn, space_id, principal).require("manage_emojis")
            emoji = emoji_store.get_emoji(conn, emoji_id, space_id)
            if emoji is None or not emoji_store.delete_emoji(conn, space_id, emoji_id):
                return None
            entry = _audit_emoji(conn, self.ctx, principal, "emoji_delete", emoji, None, reason)
            return entry, file_refs.emoji_files(emoji.image_key, emoji.animated)

        done = await self.db.write(write)
        if done is not None:
            entry, files = done
            self.ctx.get(AuditLogService).published(entry)
            self.ctx.publish(
                Event(
                    type="emoji.delete",
                    data={"space_id": str(space_id), "emoji_id": str(emoji_id)},
                    space_id=space_id,
                )
            )
            await self.ctx.get(FileCleanup).release(files)

    async def image_of(self, emoji_id: int) -> tuple[str | None, bool] | None:
        """(image key, animated) for the CDN."""
        return await self.db.read(emoji_store.image_key_of, emoji_id)
