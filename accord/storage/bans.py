"""SQL for bans, and for finding what a ban's cleanup deletes (recent messages of the user)."""

from __future__ import annotations

import sqlite3

from accord.models.bans import Ban

BAN_COLUMNS = "space_id, user_id, reason, banned_by, created_at"


def ban_from_row(row: sqlite3.Row) -> Ban:
    return Ban(
        space_id=row["space_id"],
        user_id=row["user_id"],
        reason=row["reason"],
        banned_by=row["banned_by"],
        created_at=row["created_at"],
    )


def get_ban(conn: sqlite3.Connection, space_id: int, user_id: int) -> Ban | None:
    row = conn.execute(
        f"SELECT {BAN_COLUMNS} FROM bans WHERE space_id = ? AND user_id = ?", (space_id, user_id)
    ).fetchone()
    return ban_from_row(row) if row else None


def list_bans(
    conn: sqlite3.Connection,
    space_id: int,
    *,
    after: int | None = None,
    before: int | None = None,
    limit: int | None = None,
) -> list[Ban]:
    """All bans newest first; with `after`/`before`/`limit`, a page by user id (G-37)."""
    if after is None and before is None and limit is None:
        rows = conn.execute(
            f"SELECT {BAN_COLUMNS} FROM bans WHERE space_id = ? ORDER BY created_at DESC,"
            " user_id DESC",
            (space_id,),
        ).fetchall()
        return [ban_from_row(row) for row in rows]
    if before is not None:
        rows = conn.execute(
            f"SELECT {BAN_COLUMNS} FROM bans WHERE space_id = ? AND user_id < ?"
            " ORDER BY user_id DESC LIMIT ?",
            (space_id, before, limit or -1),
        ).fetchall()
    else:
        rows = conn.execute(
            f"SELECT {BAN_COLUMNS} FROM bans WHERE space_id = ? AND user_id > ?"
            " ORDER BY user_id LIMIT ?",
            (space_id, after or 0, limit or -1),
        ).fetchall()
    return [ban_from_row(row) for row in rows]


def put_ban(
    conn: sqlite3.Connection,
    *,
    space_id: int,
    user_id: int,
    reason: str | None,
    banned_by: int,
    now: str,
) -> Ban:
    """Create or replace the ban (re-banning resets `created_at`, API.md 3.11)."""
    conn.execute(
        "INSERT INTO bans (space_id, user_id, reason, banned_by, created_at) VALUES (?, ?, ?, ?, ?)"
        " ON CONFLICT (space_id, user_id) DO UPDATE SET reason = excluded.reason,"
        " banned_by = excluded.banned_by, created_at = excluded.created_at",
        (space_id, user_id, reason, banned_by, now),
    )
    ban = get_ban(conn, space_id, user_id)
    assert ban is not None
    return ban


def delete_ban(conn: sqlite3.Connection, space_id: int, user_id: int) -> bool:
    cursor = conn.execute(
        "DELETE FROM bans WHERE space_id = ? AND user_id = ?", (space_id, user_id)
    )
    return cursor.rowcount > 0


def messages_since(
    conn: sqlite3.Connection, space_id: int, author_id: int, min_message_id: int
) -> dict[int, list[int]]:
    """The author's messages in the space with id >= `min_message_id` (snowflakes carry their
    creation time), ascending ids by channel: what a ban's message cleanup deletes."""
    found: dict[int, list[int]] = {}
    for channel_id, message_id in conn.execute(
        "SELECT channel_id, id FROM messages WHERE space_id = ? AND author_id = ? AND id >= ?"
        " ORDER BY id",
        (space_id, author_id, min_message_id),
    ):
        found.setdefault(channel_id, []).append(message_id)
    return found
