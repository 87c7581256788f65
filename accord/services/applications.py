"""Applications, their bot users and tokens, and application commands (API.md 3.16-3.17,
CLIENT.md 4.13, G-09, G-15, G-34, D10a, D21b).

Only users (not bots) create applications; each gets a bot user whose username cannot
collide (G-15) and a `Bot` token. A token reset revokes the old tokens at once, including
gateway sessions opened with them (`AuthService.forget_tokens`, D10a). Commands are stored
for real; the application's owner or its own bot manage them.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

from accord.auth.principal import Principal
from accord.auth.tokens import hash_token, new_token
from accord.errors import ForbiddenError, NotFoundError, ValidationError
from accord.events.types import Event
from accord.models.applications import (
    COMMANDS_PER_SCOPE_MAX,
    Application,
    Command,
    CommandSpec,
    validate_app_description,
    validate_app_name,
)
from accord.services.auth import AuthService
from accord.services.context import Service
from accord.services.file_cleanup import FileCleanup
from accord.services.images import ImageService
from accord.storage import applications as app_store
from accord.storage import file_refs
from accord.storage import spaces as space_store
from accord.storage.file_refs import StoredFile
from accord.storage.users import username_taken
from accord.times import now_ts

APP_NOT_FOUND = "application not found"
USERNAME_MAX_BYTES = 32


def _fit(text: str, max_bytes: int) -> str:
    while len(text.encode("utf-8")) > max_bytes:
        text = text[:-1]
    return text


def bot_username(conn: sqlite3.Connection, app_name: str) -> str:
    """`<name> Bot`, shortened to the username limit and suffixed until free (G-15)."""
    base = _fit(app_name, USERNAME_MAX_BYTES - len(" Bot")).rstrip() + " Bot"
    candidate, n = base, 2
    while username_taken(conn, candidate):
        suffix = f" {n}"
        candidate = _fit(base, USERNAME_MAX_BYTES - len(suffix)) + suffix
        n += 1
    return candidate


def _owned(conn: sqlite3.Connection, app_id: int, principal: Principal) -> Application:
    """An application the caller owns; 404 otherwise (others' apps are not revealed)."""
    app = app_store.get_application(conn, app_id)
    if app is None or app.owner_id != principal.user_id:
        raise NotFoundError(APP_NOT_FOUND)
    return app


def managed_app(conn: sqlite3.Connection, app_id: int, principal: Principal) -> Application:
    """An application the caller may manage commands of: its owner or its own bot."""
    app = app_store.get_application(conn, app_id)
    if app is None:
        raise NotFoundError(APP_NOT_FOUND)
    if app.owner_id != principal.user_id and principal.application_id != app.id:
        raise ForbiddenError("you do not own this application")
    return app


def _space_scope(conn: sqlite3.Connection, app: Application, space_id: int | None) -> None:
    if space_id is None:
        return
    if space_store.get_space(conn, space_id) is None:
        raise NotFoundError("unknown_space")
    if app.bot_user_id is None or not space_store.is_member(conn, space_id, app.bot_user_id):
        raise ForbiddenError("the application's bot is not a member of this space")


class ApplicationService(Service):
    def _me_app_id(self, conn: sqlite3.Connection, principal: Principal) -> int:
        if principal.is_bot and principal.application_id is not None:
            return principal.application_id
        found = app_store.first_application_of(conn, principal.user_id)
        if found is None:
            raise NotFoundError(APP_NOT_FOUND)
        return found[0]

    async def create(
        self, principal: Principal, name: str, description: str
    ) -> tuple[Application, str]:
        """POST /applications: users only (G-09). Returns (application, raw bot token)."""
        if principal.is_bot:
            raise ForbiddenError("bots cannot create applications")
        name = validate_app_name(name)
        description = validate_app_description(description)
        token = new_token()
        now = now_ts()

        def write(conn: sqlite3.Connection) -> Application:
            app_id, _ = app_store.create_application(
                conn,
                new_id=self.ctx.new_id,
                owner_id=principal.user_id,
                name=name,
                description=description,
                bot_username=bot_username(conn, name),
                token_hash=hash_token(token),
                now=now,
            )
            app = app_store.get_application(conn, app_id)
            assert app is not None
            return app

        return await self.db.write(write), token

    async def list_owned(self, principal: Principal) -> list[Application]:
        return await self.db.read(app_store.list_owned_applications, principal.user_id)

    async def get(self, principal: Principal, app_id: int | None) -> Application:
        """An owned application by id, or with None the caller's `@me` application (the
        oldest one a user owns; a bot's own)."""

        def read(conn: sqlite3.Connection) -> Application:
            if app_id is None:
                app = app_store.get_application(conn, self._me_app_id(conn, principal))
                if app is None:
                    raise NotFoundError(APP_NOT_FOUND)
                return app
            if principal.is_bot and principal.application_id == app_id:
                app = app_store.get_application(conn, app_id)
                if app is not None:
                    return app
            return _owned(conn, app_id, principal)

        return await self.db.read(read)

    async def update(
        self, principal: Principal, app_id: int | None, changes: dict[str, Any]
    ) -> Application:
        """PATCH /applications/@me (or /{id}): name, description, icon, bot_public (G-34)."""
        if principal.is_bot:
            raise ForbiddenError("bots cannot manage applications")
        fields: dict[str, Any] = {}
        if changes.get("name") is not None:
            fields["name"] = validate_app_name(changes["name"])
        if changes.get("description") is not None:
            fields["description"] = validate_app_description(changes["description"])
        if changes.get("bot_public") is not None:
            fields["bot_public"] = changes["bot_public"]
        images = self.ctx.get(ImageService)
        icon = None
        if changes.get("icon") is not None:
            icon = await images.prepare(changes["icon"], field="icon", fit=512)
        elif "icon" in changes:
            fields["icon"] = None
        now = now_ts()

        def write(conn: sqlite3.Connection) -> tuple[Application, bool, list[StoredFile]]:
            target = self._me_app_id(conn, principal) if app_id is None else app_id
            app = _owned(conn, target, principal)
            if icon is not None:
                fields["icon"] = images.save_prepared(icon, "app_icons").hash
            replaced: list[StoredFile] = []
            if "icon" in fields and fields["icon"] != app.icon:
                replaced = file_refs.image_files("app_icons", app.icon)
            app_store.update_application(conn, app.id, fields, now)
            updated = app_store.get_application(conn, app.id)
            assert updated is not None
            return updated, updated != app, replaced

        app, changed, replaced = await self.db.write(write)
        if changed:
            self.ctx.publish(
                Event(
                    type="application.update",
                    data=app.to_wire(),
                    user_ids=frozenset({app.owner_id}),
                    application_id=app.id,
                )
            )
        await self.ctx.get(FileCleanup).release(replaced)
        return app

    async def reset_token(self, principal: Principal, app_id: int | None) -> str:
        """POST /applications/@me/reset-token: old tokens stop working at once (D10a)."""
        if principal.is_bot:
            raise ForbiddenError("bots cannot manage applications")
        token = new_token()
        now = now_ts()

        def write(conn: sqlite3.Connection) -> list[str]:
            target = self._me_app_id(conn, principal) if app_id is None else app_id
            app = _owned(conn, target, principal)
            assert app.bot_user_id is not None
            return app_store.replace_bot_tokens(
                conn, app.id, app.bot_user_id, hash_token(token), now
            )

        old_hashes = await self.db.write(write)
        self.ctx.get(AuthService).forget_tokens(old_hashes)
        return token

    # -- commands ----------------------------------------------------------------------------

    async def list_commands(
        self, principal: Principal, app_id: int, space_id: int | None
    ) -> list[Command]:
        def read(conn: sqlite3.Connection) -> list[Command]:
            app = managed_app(conn, app_id, principal)
            _space_scope(conn, app, space_id)
            return app_store.list_commands(conn, app_id, space_id)

        return await self.db.read(read)

    async def get_command(
        self, principal: Principal, app_id: int, command_id: int, space_id: int | None
    ) -> Command:
        def read(conn: sqlite3.Connection) -> Command:
            app = managed_app(conn, app_id, principal)
            _space_scope(conn, app, space_id)
            command = app_store.get_command(conn, app_id, command_id, space_id)
            if command is None:
                raise NotFoundError("unknown_command")
            return command

        return await self.db.read(read)

    async def upsert_command(
        self, principal: Principal, app_id: int, space_id: int | None, spec: CommandSpec
    ) -> Command:
        """POST …/commands: create, or overwrite the command of the same name."""
        now = now_ts()

        def write(conn: sqlite3.Connection) -> Command:
            app = managed_app(conn, app_id, principal)
            _space_scope(conn, app, space_id)
            exists = any(
                c.name == spec.name for c in app_store.list_commands(conn, app_id, space_id)
            )
            if (
                not exists
                and app_store.count_commands(conn, app_id, space_id) >= COMMANDS_PER_SCOPE_MAX
            ):
                raise ValidationError(f"at most {COMMANDS_PER_SCOPE_MAX} commands are allowed")
            return app_store.upsert_command(
                conn, new_id=self.ctx.new_id, app_id=app_id, space_id=space_id, spec=spec, now=now
            )

        return await self.db.write(write)

    async def replace_commands(
        self, principal: Principal, app_id: int, space_id: int | None, specs: Sequence[CommandSpec]
    ) -> list[Command]:
        """PUT …/commands: bulk overwrite (commands not listed are deleted)."""
        names = [s.name for s in specs]
        if len(set(names)) != len(names):
            raise ValidationError("command names must be unique")
        if len(specs) > COMMANDS_PER_SCOPE_MAX:
            raise ValidationError(f"at most {COMMANDS_PER_SCOPE_MAX} commands are allowed")
        now = now_ts()

        def write(conn: sqlite3.Connection) -> list[Command]:
            app = managed_app(conn, app_id, principal)
            _space_scope(conn, app, space_id)
            keep = {c.name: c for c in app_store.list_commands(conn, app_id, space_id)}
            for name, command in keep.items():
                if name not in names:
                    app_store.delete_command(conn, app_id, command.id, space_id)
            for spec in specs:
                app_store.upsert_command(
                    conn,
                    new_id=self.ctx.new_id,
                    app_id=app_id,
                    space_id=space_id,
                    spec=spec,
                    now=now,
                )
            return app_store.list_commands(conn, app_id, space_id)

        return await self.db.write(write)

    async def edit_command(
        self,
        principal: Principal,
        app_id: int,
        command_id: int,
        space_id: int | None,
        patch: dict[str, Any],
    ) -> Command:
        """PATCH …/commands/{id}: fields given replace the stored ones."""
        from accord.models.applications import parse_command

        now = now_ts()

        def write(conn: sqlite3.Connection) -> Command:
            app = managed_app(conn, app_id, principal)
            _space_scope(conn, app, space_id)
            command = app_store.get_command(conn, app_id, command_id, space_id)
            if command is None:
                raise NotFoundError("unknown_command")
            merged = {**command.to_wire(), **{k: v for k, v in patch.items() if v is not None}}
            spec = parse_command(merged)
            if app_store.command_name_taken(conn, app_id, space_id, spec.name, command_id):
                raise ValidationError("a command with this name already exists", field="name")
            app_store.update_command(conn, command_id, spec, now)
            found = app_store.get_command(conn, app_id, command_id, space_id)
            assert found is not None
            return found

        return await self.db.write(write)

    async def delete_command(
        self, principal: Principal, app_id: int, command_id: int, space_id: int | None
    ) -> None:
        def write(conn: sqlite3.Connection) -> None:
            app = managed_app(conn, app_id, principal)
            _space_scope(conn, app, space_id)
            app_store.delete_command(conn, app_id, command_id, space_id)

        await self.db.write(write)
