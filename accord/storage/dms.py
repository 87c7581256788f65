"""SQL for direct-message channels: space-less channels and their participants."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from accord.models.channels import Channel
from accord.storage.spaces import CHANNEL_COLUMNS, channel_from_row

DM_TYPES = ("dm", "group_dm")


def participants(conn: sqlite3.Connection, channel_id: int) -> tuple[int, ...]:
    rows = conn.execute(
        "SELECT user_id FROM dm_participants WHERE channel_id = ? ORDER BY user_id", (channel_id,)
    )
    return tuple(row[0] for row in rows)


def find_dm(conn: sqlite3.Connection, user_a: int, user_b: int) -> int | None:
    """The one-to-one DM channel between two users (a user with themself counts)."""
    if user_a == user_b:
        row = conn.execute(
            "SELECT c.id FROM channels c JOIN dm_participants p ON p.channel_id = c.id"
            " WHERE c.type = 'dm' GROUP BY c.id HAVING COUNT(*) = 1 AND MAX(p.user_id) = ?",
            (user_a,),
        ).fetchone()
    else:
        row = conn.execute(
            "SELECT c.id FROM channels c"
            " JOIN dm_participants a ON a.channel_id = c.id AND a.user_id = ?"
            " JOIN dm_participants b ON b.channel_id = c.id AND b.user_id = ?"
            " WHERE c.type = 'dm' LIMIT 1",
            (user_a, user_b),
        ).fetchone()
    return row[0] if row else None


def create_dm_channel(
    conn: sqlite3.Connection,
    *,
    channel_id: int,
    type: str,
    owner_id: int | None,
    user_ids: Sequence[int],
    now: str,
) -> None:
    conn.execute(
        "INSERT INTO channels (id, space_id, name, type, owner_id, created_at, updated_at)"
        " VALUES (?, NULL, NULL, ?, ?, ?, ?)",
        (channel_id, type, owner_id, now, now),
    )
    conn.executemany(
        "INSERT OR IGNORE INTO dm_participants (channel_id, user_id) VALUES (?, ?)",
        [(channel_id, user_id) for user_id in user_ids],
    )


def get_dm_channel(conn: sqlite3.Connection, channel_id: int) -> Channel | None:
    row = conn.execute(
        f"SELECT {CHANNEL_COLUMNS} FROM channels WHERE id = ? AND space_id IS NULL", (channel_id,)
    ).fetchone()
    return channel_from_row(row) if row else None


def list_user_dm_channels(
    conn: sqlite3.Connection, user_id: int
) -> list[tuple[Channel, tuple[int, ...]]]:
    """A user's DM channels, most recent message first, with their participants."""
    columns = ", ".join(f"c.{c.strip()}" for c in CHANNEL_COLUMNS.split(","))
    rows = conn.execute(
        f"SELECT {columns} FROM channels c JOIN dm_participants p ON p.channel_id = c.id"
        " WHERE p.user_id = ? AND c.space_id IS NULL"
        " ORDER BY COALESCE(c.last_message_id, c.id) DESC",
        (user_id,),
    ).fetchall()
    channels = [channel_from_row(row) for row in rows]
    if not channels:
        return []
    marks = ",".join("?" * len(channels))
    members: dict[int, list[int]] = {}
    for row in conn.execute(
        f"SELECT channel_id, user_id FROM dm_participants WHERE channel_id IN ({marks})"
        " ORDER BY user_id",
        tuple(c.id for c in channels),
    ):
        members.setdefault(row[0], []).append(row[1])
    return [(c, tuple(members.get(c.id, ()))) for c in channels]
