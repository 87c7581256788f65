"""The Space resource: create, read (by id or slug, public or member), update, delete, join,
and ownership transfer (G-35: the owner hands the space to a current member).

Rules: names 1-100 characters after trimming, description <= 1,024 (D21); slugs validated and
auto-suffixed (D-slug); icon/banner are images stored by ImageService (D17a, null clears);
enum fields are whitelisted and channel references must name a channel of the space (G-25).
Deleting a space is for its owner or an instance admin and removes everything under it in one
transaction. Every change publishes its event; membership changes also publish the
`SessionControl` notices open gateway sessions follow (D12, G-20). Updates and transfers write
their audit entries in the same transaction.
"""

from __future__ import annotations

import functools
import re
import sqlite3
from typing import Any

from accord.auth.principal import Principal
from accord.errors import ForbiddenError, NotFoundError, ValidationError
from accord.events.types import BusItem, Event, SessionControl
from accord.ids import parse_id
from accord.models.audit_log import AuditLogEntry
from accord.models.channels import Channel
from accord.models.members import Member
from accord.models.spaces import Space, slug_error
from accord.models.users import User
from accord.services.audit_log import AuditLogService, audit
from accord.services.context import Service
from accord.services.file_cleanup import FileCleanup
from accord.services.images import ImageService, PreparedImage
from accord.services.members import member_joined
from accord.services.permissions import space_access, space_access_for
from accord.storage import bans as ban_store
from accord.storage import channels as channel_store
from accord.storage import file_refs
from accord.storage import members as member_store
from accord.storage import spaces as space_store
from accord.storage import users as user_store
from accord.storage.file_refs import StoredFile
from accord.times import now_ts

NAME_MAX = 100
DESCRIPTION_MAX = 1024
VERIFICATION_LEVELS = ("none", "low", "medium", "high", "very_high")
DEFAULT_NOTIFICATIONS = ("all", "only_mentions")
AFK_TIMEOUT_RANGE = (60, 3600)
_IMAGE_KINDS = {"icon": "icons", "banner": "banners"}  # field -> file kind (D17a)
_LOCALE = re.compile(r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$")


def clean_name(value: str, field: str = "name", max_length: int = NAME_MAX) -> str:
    """A trimmed name of 1..max characters (D21, D21b)."""
    name = value.strip()
    if not name:
        raise ValidationError("must not be empty", field=field)
    if len(name) > max_length:
        raise ValidationError(f"must be at most {max_length} characters", field=field)
    return name


def check_text(value: str, field: str, max_length: int) -> str:
    """Free text bounded in length (D21b); kept as sent."""
    if len(value) > max_length:
        raise ValidationError(f"must be at most {max_length} characters", field=field)
    return value


def check_range(value: int, field: str, low: int, high: int) -> int:
    if not low <= value <= high:
        raise ValidationError(f"must be between {low} and {high}", field=field)
    return value


def check_slug(slug: str) -> str:
    problem = slug_error(slug)
    if problem is not None:
        raise ValidationError(problem, field="slug")
    return slug


_NOT_AUDITED = frozenset({"id", "owner_id", "created_at", "features"})


def audited_space(space: Space) -> dict[str, Any]:
    """The space fields a space_update entry compares (ownership has its own action)."""
    return {k: v for k, v in space.to_wire().items() if k not in _NOT_AUDITED}


def space_deleted_items(space_id: int, member_ids: list[int]) -> list[BusItem]:
    """space.delete for the space and each former member, and the notices sessions follow."""
    members = frozenset(member_ids)
    items: list[BusItem] = [
        Event(type="space.delete", data={"id": str(space_id)}, space_id=space_id, user_ids=members),
        SessionControl(kind="space_deleted", space_id=space_id),
    ]
    items += [
        SessionControl(kind="membership_changed", user_id=user_id, space_id=space_id)
        for user_id in member_ids
    ]
    return items


def _space_fields(changes: dict[str, Any]) -> dict[str, Any]:
    """Checked column values for PATCH /spaces/{id} (images and references aside)."""
    fields: dict[str, Any] = {}
    if changes.get("name") is not None:
        fields["name"] = clean_name(changes["name"])
    if changes.get("slug") is not None:
        fields["slug"] = check_slug(changes["slug"])
    if changes.get("description") is not None:
        fields["description"] = check_text(changes["description"], "description", DESCRIPTION_MAX)
    if changes.get("verification_level") is not None:
        fields["verification_level"] = _choice(
            changes["verification_level"], "verification_level", VERIFICATION_LEVELS
        )
    if changes.get("default_notifications") is not None:
        fields["default_notifications"] = _choice(
            changes["default_notifications"], "default_notifications", DEFAULT_NOTIFICATIONS
        )
    if changes.get("afk_timeout") is not None:
        fields["afk_timeout"] = check_range(
            changes["afk_timeout"], "afk_timeout", *AFK_TIMEOUT_RANGE
        )
    if changes.get("preferred_locale") is not None:
        locale = changes["preferred_locale"]
        if len(locale) > 35 or _LOCALE.match(locale) is None:
            raise ValidationError("must be a locale such as en-US", field="preferred_locale")
        fields["preferred_locale"] = locale
    if changes.get("public") is not None:
        fields["public"] = changes["public"]
    return fields


class SpaceService(Service):
    async def list_public(
        self, *, after: int | None = None, limit: int | None = None
    ) -> list[Space]:
        """GET /spaces/public: every public space by id, or a page of them (G-37)."""
        return await self.db.read(
            functools.partial(space_store.list_public_spaces, after=after, limit=limit)
        )

    async def require_permission(
        self, principal: Principal, space_id: int, permission: str
    ) -> None:
        """SPACE(permission) alone: routes run it before rejecting an invalid body, so a caller
        without the permission gets 403 rather than 400/422 (API.md 3, evaluation order)."""

        def read(conn: sqlite3.Connection) -> None:
            space_access(conn, space_id, principal).require(permission)

        await self.db.read(read)

    async def create_space(
        self,
        principal: Principal,
        *,
        name: str,
        slug: str | None,
        description: str | None,
        public: bool,
    ) -> Space:
        """POST /spaces: the space with @everyone, Moderator, Admin, #general; caller = owner."""
        name = clean_name(name)
        if slug is not None:
            check_slug(slug)
        if description is not None:
            check_text(description, "description", DESCRIPTION_MAX)

        def write(conn: sqlite3.Connection) -> tuple[Space, list[Channel]]:
            return space_store.create_space(
                conn,
                new_id=self.ctx.new_id,
                owner_id=principal.user_id,
                name=name,
                now=now_ts(),
                slug=slug,
                description=description,
                public=public,
            )

        space, _channels = await self.db.write(write)
        self.ctx.publish(
            SessionControl(kind="membership_changed", user_id=principal.user_id, space_id=space.id),
            Event(
                type="space.create",
                data=space.to_wire(),
                space_id=space.id,
                user_ids=frozenset({principal.user_id}),
            ),
        )
        return space

    async def get_space(self, principal: Principal | None, id_or_slug: str) -> Space:
        """GET /spaces/{id_or_slug}: by id first, then by slug; public or member (API.md 3.5)."""

        def read(conn: sqlite3.Connection) -> Space:
            space_id = parse_id(id_or_slug)
            space = space_store.get_space(conn, space_id) if space_id is not None else None
            if space is None:
                space = space_store.get_space_by_slug(conn, id_or_slug)
            if space is None:
                raise NotFoundError("unknown_space")
            space_access_for(conn, space, principal).require_reader()
            return space

        return await self.db.read(read)

    async def update_space(
        self,
        principal: Principal,
        space_id: int,
        changes: dict[str, Any],
        *,
        reason: str | None = None,
    ) -> Space:
        """PATCH /spaces/{id}: manage_space. `changes` holds only the fields sent; None clears
        icon, banner and the channel references. `owner_id` transfers ownership (the owner
        only), in the same transaction as the other changes."""
        references: dict[str, int | None] = {
            name: changes[name]
            for name in ("afk_channel_id", "system_channel_id", "rules_channel_id")
            if name in changes
        }
        images = {name: changes[name] for name in ("icon", "banner") if name in changes}
        new_owner: int | None = changes.get("owner_id")

        def check(conn: sqlite3.Connection) -> tuple[Space, dict[str, Any]]:
            access = space_access(conn, space_id, principal)
            access.require("manage_space")
            fields = _space_fields(changes)  # after the permission (API.md 3)
            _check_channel_references(conn, space_id, references)
            if new_owner is not None:
                _check_transfer(conn, access.space, principal, new_owner)
            return access.space, fields

        current, fields = await self.db.read(check)
        image_service = self.ctx.get(ImageService)
        prepared: dict[str, PreparedImage] = {}
        for name, raw in images.items():
            if raw is None or raw == getattr(current, name):
                fields[name] = raw
            else:
                prepared[name] = await image_service.prepare(raw, field=name)
        fields.update(references)

        def write(
            conn: sqlite3.Connection,
        ) -> tuple[Space, list[AuditLogEntry], list[StoredFile]]:
            access = space_access(conn, space_id, principal)
            access.require("manage_space")
            _check_channel_references(conn, space_id, references)
            # Image files are written inside the transaction (D17: nothing left on refusal,
            # and no cleanup can remove a file between its write and the row naming it).
            for name, image in prepared.items():
                fields[name] = image_service.save_prepared(image, _IMAGE_KINDS[name]).hash
            replaced: list[StoredFile] = []
            for name, kind in _IMAGE_KINDS.items():
                old = getattr(access.space, name)
                if name in fields and fields[name] != old:
                    replaced += file_refs.image_files(kind, old)
            if "slug" in fields:
                fields["slug"] = space_store.unique_slug(conn, fields["slug"], except_id=space_id)
            now = now_ts()
            entries: list[AuditLogEntry] = []
            if fields:
                space_store.update_space(conn, space_id, fields, now)
                updated = space_store.get_space(conn, space_id)
                assert updated is not None
                before, after = audited_space(access.space), audited_space(updated)
                if before != after:
                    entries.append(
                        audit(
                            conn,
                            self.ctx,
                            principal,
                            space_id,
                            "space_update",
                            target_id=space_id,
                            target_type="space",
                            reason=reason,
                            before=before,
                            after=after,
                        )
                    )
            if new_owner is not None:
                _check_transfer(conn, access.space, principal, new_owner)
                transfer = self._transfer(conn, access.space, principal, new_owner, reason, now)
                if transfer is not None:
                    entries.append(transfer)
            space = space_store.get_space(conn, space_id)
            assert space is not None
            return space, entries, replaced

        if not fields and not prepared and (new_owner is None or new_owner == current.owner_id):
            return current
        space, entries, replaced = await self.db.write(write)
        self.ctx.publish(Event(type="space.update", data=space.to_wire(), space_id=space.id))
        if any(entry.action_type == "owner_transfer" for entry in entries):
            self.ctx.publish(SessionControl(kind="permissions_changed", space_id=space_id))
        self.ctx.get(AuditLogService).published(*entries)
        await self.ctx.get(FileCleanup).release(replaced)
        return space

    async def transfer_ownership(
        self, principal: Principal, space_id: int, new_owner_id: int, *, reason: str | None = None
    ) -> Space:
        """POST /spaces/{id}/transfer: the owner hands the space to a current member (G-35).
        The new owner holds every permission implicitly; the old owner keeps their roles."""

        def write(conn: sqlite3.Connection) -> tuple[Space, AuditLogEntry | None]:
            space = space_store.get_space(conn, space_id)
            if space is None:
                raise NotFoundError("unknown_space")
            _check_transfer(conn, space, principal, new_owner_id)
            entry = self._transfer(conn, space, principal, new_owner_id, reason, now_ts())
            updated = space_store.get_space(conn, space_id)
            assert updated is not None
            return updated, entry

        space, entry = await self.db.write(write)
        if entry is not None:
            self.ctx.publish(
                Event(type="space.update", data=space.to_wire(), space_id=space.id),
                SessionControl(kind="permissions_changed", space_id=space_id),
            )
            self.ctx.get(AuditLogService).published(entry)
        return space

    def _transfer(
        self,
        conn: sqlite3.Connection,
        space: Space,
        principal: Principal,
        new_owner_id: int,
        reason: str | None,
        now: str,
    ) -> AuditLogEntry | None:
        """Set the owner (checked by `_check_transfer`) and record owner_transfer; None when
        the owner does not change."""
        if new_owner_id == space.owner_id:
            return None
        space_store.set_owner(conn, space.id, new_owner_id, now)
        return audit(
            conn,
            self.ctx,
            principal,
            space.id,
            "owner_transfer",
            target_id=new_owner_id,
            target_type="user",
            reason=reason,
            before={"owner_id": str(space.owner_id)},
            after={"owner_id": str(new_owner_id)},
        )

    async def delete_space(self, principal: Principal, space_id: int) -> None:
        """DELETE /spaces/{id}: the owner or an instance admin (API.md 3.5)."""

        def write(conn: sqlite3.Connection) -> tuple[list[int], list[StoredFile]]:
            space = space_store.get_space(conn, space_id)
            if space is None:
                raise NotFoundError("unknown_space")
            if space.owner_id != principal.user_id and not principal.is_admin:
                raise ForbiddenError("you do not own this space")
            members = member_store.member_user_ids(conn, space_id)
            files = file_refs.space_files(conn, space_id)  # released after the commit
            space_store.delete_space(conn, space_id)
            return members, files

        members, files = await self.db.write(write)
        self.ctx.publish(*space_deleted_items(space_id, members))
        await self.ctx.get(FileCleanup).release(files)

    async def join_public(self, principal: Principal, space_id: int) -> None:
        """POST /spaces/{id}/join: public spaces only, not when banned; idempotent."""

        def write(conn: sqlite3.Connection) -> tuple[Member, User] | None:
            space = space_store.get_space(conn, space_id)
            if space is None:
                raise NotFoundError("unknown_space")
            if not space.public:
                raise ForbiddenError("this space is not public")
            if ban_store.get_ban(conn, space_id, principal.user_id) is not None:
                raise ForbiddenError("you are banned from this space")
            if not space_store.add_member(conn, space_id, principal.user_id, now_ts()):
                return None
            member = member_store.get_member(conn, space_id, principal.user_id)
            user = user_store.get_user(conn, principal.user_id)
            assert member is not None
            assert user is not None
            return member, user

        joined = await self.db.write(write)
        if joined is not None:
            self.ctx.publish(*member_joined(*joined))


def _check_transfer(
    conn: sqlite3.Connection, space: Space, principal: Principal, new_owner_id: int
) -> None:
    """Only the owner transfers a space, and only to a current member (or to themselves, a
    no-op)."""
    if space.owner_id != principal.user_id:
        raise ForbiddenError("only the owner can transfer ownership of this space")
    if new_owner_id != space.owner_id and not space_store.is_member(conn, space.id, new_owner_id):
        raise ValidationError("the new owner must be a member of this space", field="owner_id")


def _choice(value: str, field: str, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise ValidationError(f"must be one of {', '.join(allowed)}", field=field)
    return value


def _check_channel_references(
    conn: sqlite3.Connection, space_id: int, references: dict[str, int | None]
) -> None:
    """afk_channel_id must be a voice channel of the space; system/rules a text channel."""
    for field, channel_id in references.items():
        if channel_id is None:
            continue
        channel = channel_store.get_space_channel(conn, space_id, channel_id)
        if channel is None:
            raise ValidationError("unknown channel", field=field)
        wanted = ("voice", "stage") if field == "afk_channel_id" else ("text", "announcement")
        if channel.type not in wanted:
            raise ValidationError(f"must be a {wanted[0]} channel", field=field)
