"""Loading everything permission resolution needs, in a few queries per request (G-36)."""

from __future__ import annotations

import dataclasses
import json
import sqlite3
from typing import Any

from accord.models.channels import Channel, PermissionOverwrite
from accord.models.spaces import Space
from accord.permissions import Overwrite
from accord.permissions.hierarchy import OWNER_POSITION
from accord.storage.spaces import CHANNEL_COLUMNS, channel_from_row, get_space


@dataclasses.dataclass(frozen=True, slots=True)
class SpaceRoles:
    """The caller's standing in a space: membership, roles and their permission lists."""

    space: Space
    user_id: int | None
    is_member: bool
    member_role_ids: frozenset[int]
    everyone_permissions: tuple[str, ...]
    role_permissions: tuple[tuple[str, ...], ...]
    highest_position: int  # owner: a very large number; non-member / no roles: 0
    timed_out_until: str | None


def permission_names(raw: str) -> tuple[str, ...]:
    """A stored JSON array of permission names; anything malformed reads as none."""
    try:
        value = json.loads(raw)
    except ValueError:
        return ()
    return tuple(v for v in value if isinstance(v, str)) if isinstance(value, list) else ()


def load_space_roles(conn: sqlite3.Connection, space: Space, user_id: int | None) -> SpaceRoles:
    everyone = conn.execute(
        "SELECT permissions FROM roles WHERE id = ?", (space.everyone_role_id,)
    ).fetchone()
    everyone_permissions = permission_names(everyone[0]) if everyone else ()
    member_row = None
    if user_id is not None:
        member_row = conn.execute(
            "SELECT timed_out_until FROM members WHERE space_id = ? AND user_id = ?",
            (space.id, user_id),
        ).fetchone()
    role_ids: set[int] = set()
    role_permissions: list[tuple[str, ...]] = []
    highest = 0
    if member_row is not None:
        for row in conn.execute(
            "SELECT r.id, r.position, r.permissions FROM member_roles mr"
            " JOIN roles r ON r.id = mr.role_id AND r.space_id = mr.space_id"
            " WHERE mr.space_id = ? AND mr.user_id = ?",
            (space.id, user_id),
        ):
            role_ids.add(row[0])
            highest = max(highest, row[1])
            role_permissions.append(permission_names(row[2]))
    if user_id is not None and user_id == space.owner_id:
        highest = OWNER_POSITION
    return SpaceRoles(
        space=space,
        user_id=user_id,
        is_member=member_row is not None,
        member_role_ids=frozenset(role_ids),
        everyone_permissions=everyone_permissions,
        role_permissions=tuple(role_permissions),
        highest_position=highest,
        timed_out_until=member_row[0] if member_row is not None else None,
    )


def overwrite_from_row(row: sqlite3.Row | tuple[Any, ...]) -> PermissionOverwrite:
    return PermissionOverwrite(
        target_id=int(row[0]),
        type=str(row[1]),
        allow=permission_names(str(row[2])),
        deny=permission_names(str(row[3])),
    )


def load_overwrites(conn: sqlite3.Connection, channel_id: int) -> tuple[PermissionOverwrite, ...]:
    rows = conn.execute(
        "SELECT target_id, type, allow, deny FROM permission_overwrites WHERE channel_id = ?"
        " ORDER BY target_id",
        (channel_id,),
    ).fetchall()
    return tuple(overwrite_from_row(row) for row in rows)


def load_overwrites_for_space(
    conn: sqlite3.Connection, space_id: int
) -> dict[int, tuple[PermissionOverwrite, ...]]:
    """Every overwrite of every channel of a space, by channel id (one query)."""
    found: dict[int, list[PermissionOverwrite]] = {}
    for row in conn.execute(
        "SELECT o.channel_id, o.target_id, o.type, o.allow, o.deny FROM permission_overwrites o"
        " JOIN channels c ON c.id = o.channel_id WHERE c.space_id = ? ORDER BY o.target_id",
        (space_id,),
    ):
        found.setdefault(row[0], []).append(overwrite_from_row(tuple(row)[1:]))
    return {k: tuple(v) for k, v in found.items()}


def to_resolver_overwrites(overwrites: tuple[PermissionOverwrite, ...]) -> list[Overwrite]:
    return [
        Overwrite(o.target_id, o.type, frozenset(o.allow), frozenset(o.deny)) for o in overwrites
    ]


def get_channel(conn: sqlite3.Connection, channel_id: int) -> Channel | None:
    row = conn.execute(
        f"SELECT {CHANNEL_COLUMNS} FROM channels WHERE id = ?", (channel_id,)
    ).fetchone()
    if row is None:
        return None
    return channel_from_row(row, load_overwrites(conn, channel_id))


def get_channel_and_space(
    conn: sqlite3.Connection, channel_id: int
) -> tuple[Channel, Space | None] | None:
    channel = get_channel(conn, channel_id)
    if channel is None:
        return None
    space = get_space(conn, channel.space_id) if channel.space_id is not None else None
    return channel, space
