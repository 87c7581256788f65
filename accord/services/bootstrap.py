"""Start-up bootstrap (OPERATIONS.md 3.1 step 10, DATA.md 10) and the test seed (section 9).

On a fresh database: a `System` user and a public `General` space it owns. Always: the oldest
space has a channel and a permanent space-level invite, whose code is returned for the banner.
"""

from __future__ import annotations

import dataclasses
import logging
import sqlite3
from typing import Any

from accord.auth.tokens import hash_token, new_token
from accord.events.types import BusItem
from accord.services.auth import default_space
from accord.services.context import Service
from accord.services.members import member_joined
from accord.storage import applications as app_store
from accord.storage import invites as invite_store
from accord.storage import members as member_store
from accord.storage import spaces as space_store
from accord.storage import users as user_store
from accord.times import now_ts

log = logging.getLogger("accord.bootstrap")

SEED_TOKEN_EXPIRY = "2099-12-31T23:59:59"


@dataclasses.dataclass(frozen=True, slots=True)
class SeedResult:
    data: dict[str, Any]
    revoked_hashes: list[str]
    events: list[BusItem]


class BootstrapService(Service):
    async def ensure_defaults(self) -> str | None:
        """Create the default space, channel and invite as needed; returns the invite code."""

        configured = self.settings.default_space

        def write(conn: sqlite3.Connection) -> str | None:
            now = now_ts()
            space = default_space(conn, configured) if configured else None
            if configured and space is None:
                # D22: say so rather than fall back silently; registration joins no space
                # until a space with this id or slug exists.
                log.warning(
                    "ACCORD_DEFAULT_SPACE=%r names no space: new users join no space until it"
                    " exists",
                    configured,
                )
            space = space or space_store.oldest_space(conn)
            if space is None:
                system = user_store.get_user_by_username(conn, "System")
                system_id = system.id if system else self.ctx.new_id()
                if system is None:
                    user_store.insert_user(
                        conn,
                        user_id=system_id,
                        username="System",
                        display_name="System",
                        system=True,
                        now=now,
                    )
                space, _ = space_store.create_space(
                    conn,
                    new_id=self.ctx.new_id,
                    owner_id=system_id,
                    name="General",
                    slug="general",
                    description="Default space",
                    public=True,
                    now=now,
                )
            if not space_store.list_space_channels(conn, space.id):
                space_store.insert_channel(
                    conn, channel_id=self.ctx.new_id(), space_id=space.id, name="general", now=now
                )
                log.info("created default #general channel in space %s", space.id)
            code = invite_store.find_permanent_space_invite(conn, space.id)
            if code is None:
                code = invite_store.insert_invite(conn, space_id=space.id, now=now)
            return code

        try:
            return await self.db.write(write)
        except Exception:
            log.warning("failed to create default invite", exc_info=True)
            return None

    async def seed(self) -> dict[str, Any]:
        """The test fixture of OPERATIONS.md 9 (find-or-create, rotating both tokens)."""
        user_token = new_token()
        bot_token = new_token()

        def write(conn: sqlite3.Connection) -> SeedResult:
            now = now_ts()
            events: list[BusItem] = []
            user = user_store.get_user_by_username(conn, "test_user")
            if user is None:
                user = user_store.insert_user(
                    conn,
                    user_id=self.ctx.new_id(),
                    username="test_user",
                    display_name="Test User",
                    now=now,
                )
            revoked = user_store.delete_user_tokens(conn, user.id)
            user_store.insert_user_token(
                conn, hash_token(user_token), user.id, SEED_TOKEN_EXPIRY, now
            )

            app = app_store.first_application_of(conn, user.id)
            if app is None:
                app_id, bot_id = app_store.create_application(
                    conn,
                    new_id=self.ctx.new_id,
                    owner_id=user.id,
                    name="TestBot",
                    description="test bot",
                    bot_username=_free_username(conn, "TestBot Bot"),
                    token_hash=hash_token(bot_token),
                    now=now,
                )
            else:
                app_id, bot_id = app
                revoked += app_store.replace_bot_tokens(
                    conn, app_id, bot_id, hash_token(bot_token), now
                )
            bot = user_store.get_user(conn, bot_id)
            assert bot is not None

            # D-seed1: reuse test_user's oldest space named "Test Space", else create it.
            row = conn.execute(
                "SELECT id FROM spaces WHERE owner_id = ? AND name = 'Test Space' ORDER BY id"
                " LIMIT 1",
                (user.id,),
            ).fetchone()
            if row is None:
                space, _ = space_store.create_space(
                    conn, new_id=self.ctx.new_id, owner_id=user.id, name="Test Space", now=now
                )
            else:
                found = space_store.get_space(conn, row[0])
                assert found is not None
                space = found
            channels = space_store.list_space_channels(conn, space.id)
            if not any(c.name == "testing" for c in channels):
                space_store.insert_channel(
                    conn,
                    channel_id=self.ctx.new_id(),
                    space_id=space.id,
                    name="testing",
                    topic="Test channel",
                    now=now,
                )
                channels = space_store.list_space_channels(conn, space.id)
            if space_store.add_member(conn, space.id, bot.id, now):
                member = member_store.get_member(conn, space.id, bot.id)
                assert member is not None
                events += member_joined(member, bot)
            data = {
                "user": {
                    "id": str(user.id),
                    "username": user.username,
                    "token": user_token,
                    "token_type": "Bearer",
                },
                "bot": {
                    "id": str(bot.id),
                    "username": bot.username,
                    "token": bot_token,
                    "token_type": "Bot",
                    "application_id": str(app_id),
                },
                "space": {
                    "id": str(space.id),
                    "name": space.name,
                    "slug": space.slug,
                    "owner_id": str(space.owner_id),
                },
                "channels": [
                    {
                        "id": str(c.id),
                        "name": c.name,
                        "type": c.type,
                        "space_id": str(c.space_id),
                        "topic": c.topic,
                        "position": c.position,
                    }
                    for c in channels
                ],
            }
            return SeedResult(data, revoked, events)

        result = await self.db.write(write)
        from accord.services.auth import AuthService

        self.ctx.get(AuthService).forget_tokens(result.revoked_hashes)
        self.ctx.publish(*result.events)
        return result.data


def _free_username(conn: sqlite3.Connection, wanted: str) -> str:
    candidate, n = wanted, 2
    while user_store.username_taken(conn, candidate):
        candidate, n = f"{wanted} {n}", n + 1
    return candidate
