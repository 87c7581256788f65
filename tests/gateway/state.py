"""State changes the REST issues publish, done here directly for gateway tests.

Joining, leaving and channel overwrites have REST routes in other issues that are being built
alongside the gateway; these helpers write the same rows those routes write and publish the
same bus items (`SessionControl` notices and events), which is the contract the gateway
follows. Once the routes are merged, tests can switch to them.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from accord.events.types import Event, SessionControl
from accord.services.members import member_joined
from accord.storage import members as member_store
from accord.storage import spaces as space_store
from accord.storage import users as user_store
from accord.times import now_ts
from tests.support import ServerHandle


async def create_space(server: ServerHandle, owner_id: str, name: str) -> dict[str, Any]:
    ctx = server.ctx

    def write(conn: sqlite3.Connection) -> tuple[Any, Any]:
        return space_store.create_space(
            conn, new_id=ctx.new_id, owner_id=int(owner_id), name=name, now=now_ts()
        )

    space, channels = await ctx.db.write(write)
    ctx.publish(SessionControl(kind="membership_changed", user_id=int(owner_id), space_id=space.id))
    return {"id": str(space.id), "channels": [str(c.id) for c in channels]}


async def join_space(server: ServerHandle, space_id: str, user_id: str) -> None:
    ctx = server.ctx

    def write(conn: sqlite3.Connection) -> tuple[Any, Any]:
        space_store.add_member(conn, int(space_id), int(user_id), now_ts())
        return member_store.get_member(conn, int(space_id), int(user_id)), user_store.get_user(
            conn, int(user_id)
        )

    member, user = await ctx.db.write(write)
    ctx.publish(*member_joined(member, user))


async def remove_member(server: ServerHandle, space_id: str, user_id: str) -> None:
    """Kick/ban/leave: member.leave to the space and to the user, then the notice."""
    ctx = server.ctx

    def write(conn: sqlite3.Connection) -> None:
        conn.execute(
            "DELETE FROM members WHERE space_id = ? AND user_id = ?", (int(space_id), int(user_id))
        )

    await ctx.db.write(write)
    ctx.publish(
        Event(
            type="member.leave",
            data={"space_id": space_id, "user_id": user_id, "user": {"id": user_id}},
            space_id=int(space_id),
            user_ids=frozenset({int(user_id)}),
        ),
        SessionControl(kind="membership_changed", user_id=int(user_id), space_id=int(space_id)),
    )


async def set_overwrite(
    server: ServerHandle,
    channel_id: str,
    target_id: str,
    kind: str,
    *,
    allow: list[str],
    deny: list[str],
) -> None:
    ctx = server.ctx

    def write(conn: sqlite3.Connection) -> int:
        conn.execute(
            "INSERT OR REPLACE INTO permission_overwrites"
            " (channel_id, target_id, type, allow, deny) VALUES (?, ?, ?, ?, ?)",
            (int(channel_id), int(target_id), kind, json.dumps(allow), json.dumps(deny)),
        )
        row = conn.execute(
            "SELECT space_id FROM channels WHERE id = ?", (int(channel_id),)
        ).fetchone()
        return int(row[0])

    space_id = await ctx.db.write(write)
    ctx.publish(SessionControl(kind="permissions_changed", space_id=space_id))


async def create_channel(server: ServerHandle, space_id: str, name: str) -> str:
    ctx = server.ctx
    channel_id = ctx.new_id()

    def write(conn: sqlite3.Connection) -> None:
        space_store.insert_channel(
            conn, channel_id=channel_id, space_id=int(space_id), name=name, now=now_ts()
        )

    await ctx.db.write(write)
    return str(channel_id)


def publish(server: ServerHandle, event_type: str, data: dict[str, Any], **audience: Any) -> None:
    server.ctx.publish(Event(type=event_type, data=data, **audience))
