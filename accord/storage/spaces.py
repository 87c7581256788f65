"""SQL for spaces, and for the rows every new space comes with (roles, #general, owner).

Space creation writes the space, @everyone (id = space id), Moderator, Admin, a text channel
`general`, the owner's membership and the owner's Admin role in the caller's transaction.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from typing import Any

from accord.models.channels import Channel
from accord.models.spaces import Space, derive_slug, slug_candidates
from accord.permissions import (
    ADMIN_ROLE_PERMISSIONS,
    DEFAULT_EVERYONE_PERMISSIONS,
    MODERATOR_ROLE_PERMISSIONS,
)

SPACE_COLUMNS = (
    "id, name, slug, owner_id, created_at, updated_at, description, icon, banner, splash,"
    " verification_level, default_notifications, explicit_content_filter, vanity_url_code,"
    " preferred_locale, afk_channel_id, afk_timeout, system_channel_id, rules_channel_id,"
    " nsfw_level, premium_tier, premium_subscription_count, max_members, public"
)

CHANNEL_COLUMNS = (
    "id, space_id, name, type, position, created_at, updated_at, topic, parent_id, nsfw,"
    " rate_limit, bitrate, user_limit, owner_id, last_message_id, archived, auto_archive_after"
)


def space_from_row(row: sqlite3.Row) -> Space:
    data: dict[str, Any] = {key: row[key] for key in row.keys()}  # noqa: SIM118
    data["public"] = bool(data["public"])
    return Space(**data)


def channel_from_row(row: sqlite3.Row, overwrites: tuple[Any, ...] = ()) -> Channel:
    data: dict[str, Any] = {key: row[key] for key in row.keys()}  # noqa: SIM118
    data["nsfw"] = bool(data["nsfw"])
    data["archived"] = bool(data["archived"])
    return Channel(**data, permission_overwrites=overwrites)


def get_space(conn: sqlite3.Connection, space_id: int) -> Space | None:
    row = conn.execute(f"SELECT {SPACE_COLUMNS} FROM spaces WHERE id = ?", (space_id,)).fetchone()
    return space_from_row(row) if row else None


def get_space_by_slug(conn: sqlite3.Connection, slug: str) -> Space | None:
    row = conn.execute(f"SELECT {SPACE_COLUMNS} FROM spaces WHERE slug = ?", (slug,)).fetchone()
    return space_from_row(row) if row else None


def oldest_space(conn: sqlite3.Connection) -> Space | None:
    row = conn.execute(f"SELECT {SPACE_COLUMNS} FROM spaces ORDER BY id LIMIT 1").fetchone()
    return space_from_row(row) if row else None


def unique_slug(conn: sqlite3.Connection, base: str, *, except_id: int = 0) -> str:
    for candidate in slug_candidates(base):
        taken = conn.execute(
            "SELECT 1 FROM spaces WHERE slug = ? AND id != ?", (candidate, except_id)
        ).fetchone()
        if taken is None:
            return str(candidate)
    raise AssertionError("unreachable")


def insert_channel(
    conn: sqlite3.Connection,
    *,
    channel_id: int,
    space_id: int | None,
    name: str,
    now: str,
    type: str = "text",
    position: int = 0,
    topic: str | None = None,
    parent_id: int | None = None,
    nsfw: bool = False,
    rate_limit: int = 0,
    bitrate: int | None = None,
    user_limit: int | None = None,
) -> Channel:
    conn.execute(
        "INSERT INTO channels (id, space_id, name, type, position, topic, parent_id, nsfw,"
        " rate_limit, bitrate, user_limit, created_at, updated_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            channel_id,
            space_id,
            name,
            type,
            position,
            topic,
            parent_id,
            nsfw,
            rate_limit,
            bitrate,
            user_limit,
            now,
            now,
        ),
    )
    row = conn.execute(
        f"SELECT {CHANNEL_COLUMNS} FROM channels WHERE id = ?", (channel_id,)
    ).fetchone()
    return channel_from_row(row)


def list_space_channels(conn: sqlite3.Connection, space_id: int) -> list[Channel]:
    rows = conn.execute(
        f"SELECT {CHANNEL_COLUMNS} FROM channels WHERE space_id = ? ORDER BY position, id",
        (space_id,),
    ).fetchall()
    return [channel_from_row(row) for row in rows]


def insert_role(
    conn: sqlite3.Connection,
    *,
    role_id: int,
    space_id: int,
    name: str,
    position: int,
    permissions: tuple[str, ...] | list[str],
    now: str,
    color: int = 0,
    hoist: bool = False,
    mentionable: bool = False,
) -> None:
    conn.execute(
        "INSERT INTO roles (id, space_id, name, color, hoist, position, permissions, mentionable,"
        " created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            role_id,
            space_id,
            name,
            color,
            hoist,
            position,
            json.dumps(list(permissions)),
            mentionable,
            now,
            now,
        ),
    )


def add_member(conn: sqlite3.Connection, space_id: int, user_id: int, now: str) -> bool:
    """Make `user_id` a member; False when they already were."""
    cursor = conn.execute(
        "INSERT OR IGNORE INTO members (space_id, user_id, joined_at) VALUES (?, ?, ?)",
        (space_id, user_id, now),
    )
    return cursor.rowcount > 0


def is_member(conn: sqlite3.Connection, space_id: int, user_id: int) -> bool:
    row = conn.execute(
        "SELECT 1 FROM members WHERE space_id = ? AND user_id = ?", (space_id, user_id)
    ).fetchone()
    return row is not None


def is_banned(conn: sqlite3.Connection, space_id: int, user_id: int) -> bool:
    row = conn.execute(
        "SELECT 1 FROM bans WHERE space_id = ? AND user_id = ?", (space_id, user_id)
    ).fetchone()
    return row is not None


def assign_role(conn: sqlite3.Connection, space_id: int, user_id: int, role_id: int) -> None:
    conn.execute(
        "INSERT OR IGNORE INTO member_roles (space_id, user_id, role_id) VALUES (?, ?, ?)",
        (space_id, user_id, role_id),
    )


def create_space(
    conn: sqlite3.Connection,
    *,
    new_id: Callable[[], int],
    owner_id: int,
    name: str,
    now: str,
    slug: str | None = None,
    description: str | None = None,
    public: bool = False,
) -> tuple[Space, list[Channel]]:
    """Insert a space with its defaults (API.md 3.5); the owner becomes a member with Admin."""
    space_id = new_id()
    base = slug if slug is not None else derive_slug(name)
    if not base or base == "public" or base.isdigit():
        base = f"space-{space_id}"  # D-slug
    final_slug = unique_slug(conn, base)
    conn.execute(
        "INSERT INTO spaces (id, name, slug, owner_id, description, public, created_at,"
        " updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (space_id, name, final_slug, owner_id, description, public, now, now),
    )
    insert_role(
        conn,
        role_id=space_id,
        space_id=space_id,
        name="@everyone",
        position=0,
        permissions=DEFAULT_EVERYONE_PERMISSIONS,
        now=now,
    )
    insert_role(
        conn,
        role_id=new_id(),
        space_id=space_id,
        name="Moderator",
        position=1,
        permissions=MODERATOR_ROLE_PERMISSIONS,
        color=3447003,
        hoist=True,
        now=now,
    )
    admin_role_id = new_id()
    insert_role(
        conn,
        role_id=admin_role_id,
        space_id=space_id,
        name="Admin",
        position=2,
        permissions=ADMIN_ROLE_PERMISSIONS,
        color=15158332,
        hoist=True,
        now=now,
    )
    general = insert_channel(
        conn, channel_id=new_id(), space_id=space_id, name="general", now=now, position=0
    )
    add_member(conn, space_id, owner_id, now)
    assign_role(conn, space_id, owner_id, admin_role_id)
    space = get_space(conn, space_id)
    assert space is not None
    return space, [general]


def list_public_spaces(
    conn: sqlite3.Connection, *, after: int | None = None, limit: int | None = None
) -> list[Space]:
    """Public spaces by id; `after`/`limit` page through them (G-37), both optional."""
    sql = f"SELECT {SPACE_COLUMNS} FROM spaces WHERE public = 1 AND id > ? ORDER BY id"
    params: list[int] = [after or 0]
    if limit is not None:
        sql += " LIMIT ?"
        params.append(limit)
    return [space_from_row(row) for row in conn.execute(sql, params).fetchall()]


_UPDATABLE = frozenset(
    {
        "name",
        "slug",
        "description",
        "icon",
        "banner",
        "verification_level",
        "default_notifications",
        "afk_channel_id",
        "afk_timeout",
        "system_channel_id",
        "rules_channel_id",
        "preferred_locale",
        "public",
    }
)


def update_space(conn: sqlite3.Connection, space_id: int, fields: dict[str, Any], now: str) -> None:
    unknown = set(fields) - _UPDATABLE
    if unknown:
        raise ValueError(f"not updatable: {sorted(unknown)}")
    assignments = "".join(f"{name} = ?, " for name in fields)
    conn.execute(
        f"UPDATE spaces SET {assignments}updated_at = ? WHERE id = ?",
        (*fields.values(), now, space_id),
    )


def delete_space(conn: sqlite3.Connection, space_id: int) -> None:
    """Delete a space; roles, members, channels, messages, invites, bans, emojis and the rest
    go with it through ON DELETE CASCADE (DATA.md 3) in the caller's transaction."""
    conn.execute("DELETE FROM spaces WHERE id = ?", (space_id,))


def set_owner(conn: sqlite3.Connection, space_id: int, owner_id: int, now: str) -> None:
    """Hand the space to `owner_id` (ownership transfer, G-35)."""
    conn.execute(
        "UPDATE spaces SET owner_id = ?, updated_at = ? WHERE id = ?", (owner_id, now, space_id)
    )


def spaces_owned_by(conn: sqlite3.Connection, user_id: int) -> list[int]:
    """Ids of the spaces a user owns."""
    rows = conn.execute("SELECT id FROM spaces WHERE owner_id = ? ORDER BY id", (user_id,))
    return [row[0] for row in rows]
