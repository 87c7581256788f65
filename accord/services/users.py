"""The User resource: reading users, one's spaces, editing one's own profile (API.md 3.4) and
deleting one's own account (G-35).

Avatars and banners arrive as data URIs or bare base64 and go through the ImageService
(D17a): the user row stores the image hash, served at `/cdn/avatars/{id}/{hash}.png` and
`/cdn/banners/{id}/{hash}.png`; null clears them. Sending back the current hash is a no-op.

Deleting an account needs the password (when the user has one) and no owned spaces. The row
is anonymised rather than removed (`deleted-user-<id>`, "Deleted User", no avatar, banner,
bio, password or two-factor), so messages keep an author and `GET /users/{id}` shows the
anonymised user; memberships end (member.leave and the membership notices) and every bearer
token is revoked in the same transaction, closing the user's gateway sessions.
"""

from __future__ import annotations

import sqlite3
import time
from typing import Any

from accord.auth.principal import Principal
from accord.errors import ConflictError, ForbiddenError, NotFoundError, ValidationError
from accord.events.types import BusItem, Event
from accord.models.spaces import Space
from accord.models.users import User
from accord.services.auth import AuthService, validate_display_name, validate_username
from accord.services.context import Context, Service
from accord.services.file_cleanup import FileCleanup
from accord.services.images import ImageService, PreparedImage
from accord.services.members import member_left
from accord.services.mfa import MfaService
from accord.storage import applications as app_store
from accord.storage import file_refs
from accord.storage import members as member_store
from accord.storage import mfa as mfa_store
from accord.storage import users as user_store
from accord.storage.file_refs import StoredFile
from accord.storage.spaces import SPACE_COLUMNS, space_from_row, spaces_owned_by
from accord.times import now_ts

BIO_MAX = 190  # D21b
AVATAR_FIT = 512
BANNER_FIT = 1920


def list_user_spaces(conn: sqlite3.Connection, user_id: int) -> list[Space]:
    columns = ", ".join(f"s.{c.strip()}" for c in SPACE_COLUMNS.split(","))
    rows = conn.execute(
        f"SELECT {columns} FROM spaces s JOIN members m ON m.space_id = s.id"
        " WHERE m.user_id = ? ORDER BY s.id",
        (user_id,),
    )
    return [space_from_row(row) for row in rows]


_CACHE_TTL_S = 5.0
_CACHE_MAX = 20_000


class UserService(Service):
    """Users by id, with a short-lived cache: every change made by this process calls
    `forget`, so the TTL only bounds staleness after out-of-process edits (the admin CLI)."""

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self._cache: dict[int, tuple[User, float]] = {}

    async def get_user(self, user_id: int) -> User:
        cached = self._cache.get(user_id)
        now = time.monotonic()
        if cached is not None and now - cached[1] < _CACHE_TTL_S:
            return cached[0]
        user = await self.db.read(user_store.get_user, user_id)
        if user is None:
            raise NotFoundError("unknown_user")
        if len(self._cache) >= _CACHE_MAX:
            self._cache.clear()
        self._cache[user_id] = (user, now)
        return user

    async def delete_account(
        self, principal: Principal, password: str | None, code: str | None = None
    ) -> None:
        """DELETE /users/@me: anonymise the caller's account (see the module docstring).

        With two-factor auth on, `code` (TOTP or a backup code) is required as well. The bots
        of the user's applications lose their tokens (their sessions close): nobody is left
        who could manage them.
        """
        if principal.kind != "bearer":
            raise ForbiddenError("bot accounts belong to their application")
        stored = await self.db.read(user_store.get_password_hash, principal.user_id)
        if stored is not None:
            if password is None:
                raise ValidationError("required to delete your account", field="password")
            auth = self.ctx.get(AuthService)
            if not await auth.verify_password(stored, password):
                raise ForbiddenError("password is incorrect")
        mfa = self.ctx.get(MfaService)

        def write(
            conn: sqlite3.Connection,
        ) -> tuple[User, list[int], list[str], list[StoredFile]]:
            owned = spaces_owned_by(conn, principal.user_id)
            if owned:
                raise ValidationError(
                    f"you own {len(owned)} space(s): transfer ownership or delete them first"
                )
            found = mfa_store.get_mfa(conn, principal.user_id)
            if found is not None and found[1]:
                if code is None:
                    raise ValidationError("two-factor code required", field="code")
                if not mfa.consume_code(conn, principal.user_id, code):
                    raise ForbiddenError("invalid two-factor code")
            before = user_store.get_user(conn, principal.user_id)
            assert before is not None
            dropped = file_refs.image_files("avatars", before.avatar)
            dropped += file_refs.image_files("banners", before.banner)
            left = member_store.remove_user_memberships(conn, principal.user_id)
            mfa_store.delete_mfa(conn, principal.user_id)
            user_store.anonymise_user(conn, principal.user_id, now_ts())
            hashes = user_store.delete_user_tokens(conn, principal.user_id)
            hashes += app_store.revoke_owned_bot_tokens(conn, principal.user_id)
            user = user_store.get_user(conn, principal.user_id)
            assert user is not None
            return user, left, hashes, dropped

        user, left, hashes, dropped = await self.db.write(write)
        self.forget(user.id)
        auth = self.ctx.get(AuthService)
        auth.forget_user(user.id)
        items: list[BusItem] = [
            Event(
                type="user.update",
                data=user.to_wire(viewer_id=0),
                space_ids=frozenset(left),
            )
        ]
        for space_id in left:
            items += member_left(space_id, user, user.id)
        self.ctx.publish(*items)
        auth.forget_tokens(hashes)
        await self.ctx.get(FileCleanup).release(dropped)

    def forget(self, user_id: int) -> None:
        """Drop a cached user after changing it."""
        self._cache.pop(user_id, None)

    async def list_spaces(self, user_id: int) -> list[Space]:
        """GET /users/@me/spaces: every space the user is a member of."""
        return await self.db.read(list_user_spaces, user_id)

    async def update_me(self, user_id: int, changes: dict[str, Any]) -> User:
        """Apply a validated profile change and publish user.update (D12d).

        `changes` holds only fields the client sent; None clears avatar, banner, accent_color
        and bio (D17a) and is ignored for the others.
        """
        fields: dict[str, Any] = {}
        if changes.get("username") is not None:
            fields["username"] = validate_username(changes["username"])
        if changes.get("display_name") is not None:
            fields["display_name"] = validate_display_name(changes["display_name"])
        if "bio" in changes:
            bio = changes["bio"]
            if bio is not None and len(bio) > BIO_MAX:
                raise ValidationError(f"must be at most {BIO_MAX} characters", field="bio")
            fields["bio"] = bio
        if "accent_color" in changes:
            color = changes["accent_color"]
            if color is not None and not 0 <= color <= 0xFFFFFFFF:
                raise ValidationError("must be between 0 and 4294967295", field="accent_color")
            fields["accent_color"] = color
        current = await self.get_user(user_id)
        images = self.ctx.get(ImageService)
        prepared: dict[str, PreparedImage] = {}
        for image_field, fit in (("avatar", AVATAR_FIT), ("banner", BANNER_FIT)):
            if image_field not in changes:
                continue
            value = changes[image_field]
            if value is None:
                fields[image_field] = None
            elif value != getattr(current, image_field):
                prepared[image_field] = await images.prepare(value, field=image_field, fit=fit)

        def write(conn: sqlite3.Connection) -> tuple[User, list[int], list[StoredFile]]:
            if "username" in fields and user_store.username_taken(
                conn, fields["username"], except_id=user_id
            ):
                raise ConflictError("username already taken")
            before = user_store.get_user(conn, user_id)
            if before is None:
                raise NotFoundError("unknown_user")
            # Image files are written last, inside the transaction (nothing left on refusal).
            for image_field, image in prepared.items():
                fields[image_field] = images.save_prepared(image, f"{image_field}s").hash
            replaced: list[StoredFile] = []
            for image_field in ("avatar", "banner"):
                old = getattr(before, image_field)
                if image_field in fields and fields[image_field] != old:
                    replaced += file_refs.image_files(f"{image_field}s", old)
            user_store.update_user(conn, user_id, fields, now_ts())
            user = user_store.get_user(conn, user_id)
            assert user is not None
            return user, member_store.space_ids_of_user(conn, user_id), replaced

        if not fields and not prepared:
            return current
        user, space_ids, replaced = await self.db.write(write)
        self.forget(user_id)
        self.ctx.publish(
            Event(
                type="user.update",
                data=user.to_wire(viewer_id=0),
                space_ids=frozenset(space_ids),
                user_ids=frozenset({user_id}),
            )
        )
        await self.ctx.get(FileCleanup).release(replaced)
        return user
