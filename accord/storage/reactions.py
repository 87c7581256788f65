"""SQL for reactions: one row per (message, emoji key, user) and per-page summaries."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from accord.models.messages import ReactionEmoji, ReactionSummary
from accord.models.users import User
from accord.storage.users import USER_COLUMNS, user_from_row


def add_reaction(
    conn: sqlite3.Connection, message_id: int, emoji: ReactionEmoji, user_id: int, now: str
) -> bool:
    """Add a user's reaction; False when it was already there (idempotent)."""
    cursor = conn.execute(
        "INSERT OR IGNORE INTO reactions (message_id, emoji_key, user_id, emoji_id, emoji_name,"
        " created_at) VALUES (?, ?, ?, ?, ?, ?)",
        (message_id, emoji.key, user_id, emoji.id, emoji.name, now),
    )
    return cursor.rowcount > 0


def has_emoji(conn: sqlite3.Connection, message_id: int, key: str) -> bool:
    row = conn.execute(
        "SELECT 1 FROM reactions WHERE message_id = ? AND emoji_key = ? LIMIT 1", (message_id, key)
    ).fetchone()
    return row is not None


def count_emojis(conn: sqlite3.Connection, message_id: int) -> int:
    row = conn.execute(
        "SELECT COUNT(DISTINCT emoji_key) FROM reactions WHERE message_id = ?", (message_id,)
    ).fetchone()
    return int(row[0])


def remove_reaction(conn: sqlite3.Connection, message_id: int, key: str, user_id: int) -> bool:
    cursor = conn.execute(
        "DELETE FROM reactions WHERE message_id = ? AND emoji_key = ? AND user_id = ?",
        (message_id, key, user_id),
    )
    return cursor.rowcount > 0


def clear_emoji(conn: sqlite3.Connection, message_id: int, key: str) -> int:
    return conn.execute(
        "DELETE FROM reactions WHERE message_id = ? AND emoji_key = ?", (message_id, key)
    ).rowcount


def clear_all(conn: sqlite3.Connection, message_id: int) -> int:
    return conn.execute("DELETE FROM reactions WHERE message_id = ?", (message_id,)).rowcount


def users_for(
    conn: sqlite3.Connection, message_id: int, key: str, *, after: int, limit: int
) -> list[User]:
    """Users who reacted with `key`, by user id, after `after` (D-react)."""
    columns = ", ".join(f"u.{c.strip()}" for c in USER_COLUMNS.split(","))
    rows = conn.execute(
        f"SELECT {columns} FROM reactions r JOIN users u ON u.id = r.user_id"
        " WHERE r.message_id = ? AND r.emoji_key = ? AND r.user_id > ?"
        " ORDER BY r.user_id LIMIT ?",
        (message_id, key, after, limit),
    )
    return [user_from_row(row) for row in rows]


def summaries(
    conn: sqlite3.Connection, message_ids: Sequence[int], viewer_id: int | None
) -> dict[int, list[ReactionSummary]]:
    """Reaction summaries of many messages for one viewer, in one query, first-used first."""
    if not message_ids:
        return {}
    marks = ",".join("?" * len(message_ids))
    found: dict[int, list[ReactionSummary]] = {}
    rows = conn.execute(
        "SELECT message_id, emoji_key, MAX(emoji_id), MIN(emoji_name), COUNT(*),"
        " MAX(user_id = ?) FROM reactions"
        f" WHERE message_id IN ({marks}) GROUP BY message_id, emoji_key"
        " ORDER BY message_id, MIN(rowid)",
        (viewer_id or 0, *message_ids),
    )
    for row in rows:
        emoji = ReactionEmoji(key=row[1], name=row[3], id=row[2])
        found.setdefault(row[0], []).append(ReactionSummary(emoji, row[4], bool(row[5])))
    return found
