"""SQL for a space's channels and their permission overwrites.

Lookups are scoped to the path space (G-04). Listing loads every channel and every overwrite
of the space in two queries (G-36). Deleting a channel removes its messages, overwrites,
invites and pins through cascades (G-14), detaches its children and clears the space's
afk/system/rules references to it, all in the caller's transaction.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from accord.models.channels import Channel, PermissionOverwrite
from accord.storage.permissions import get_channel, load_overwrites_for_space
from accord.storage.spaces import CHANNEL_COLUMNS, channel_from_row, insert_channel

__all__ = [
    "channels_by_ids",
    "count_channels",
    "delete_channel",
    "delete_overwrite",
    "get_channel",
    "get_space_channel",
    "insert_channel",
    "list_channels",
    "put_overwrite",
    "set_channel_positions",
    "update_channel",
]


def list_channels(conn: sqlite3.Connection, space_id: int) -> list[Channel]:
    """Every channel of a space with its overwrites, by position then id."""
    overwrites = load_overwrites_for_space(conn, space_id)
    rows = conn.execute(
        f"SELECT {CHANNEL_COLUMNS} FROM channels WHERE space_id = ? ORDER BY position, id",
        (space_id,),
    ).fetchall()
    return [channel_from_row(row, overwrites.get(row["id"], ())) for row in rows]


def get_space_channel(conn: sqlite3.Connection, space_id: int, channel_id: int) -> Channel | None:
    """The channel `channel_id` if it belongs to `space_id`."""
    channel = get_channel(conn, channel_id)
    return channel if channel is not None and channel.space_id == space_id else None


def count_channels(conn: sqlite3.Connection, space_id: int) -> int:
    row = conn.execute("SELECT COUNT(*) FROM channels WHERE space_id = ?", (space_id,)).fetchone()
    return int(row[0])


_UPDATABLE = frozenset(
    {
        "name",
        "topic",
        "position",
        "parent_id",
        "nsfw",
        "rate_limit",
        "bitrate",
        "user_limit",
        "archived",
    }
)


def update_channel(
    conn: sqlite3.Connection, channel_id: int, fields: dict[str, Any], now: str
) -> None:
    unknown = set(fields) - _UPDATABLE
    if unknown:
        raise ValueError(f"not updatable: {sorted(unknown)}")
    assignments = "".join(f"{name} = ?, " for name in fields)
    conn.execute(
        f"UPDATE channels SET {assignments}updated_at = ? WHERE id = ?",
        (*fields.values(), now, channel_id),
    )


def set_channel_positions(
    conn: sqlite3.Connection, changes: dict[int, dict[str, Any]], now: str
) -> None:
    """Apply per-channel position (and optional parent) changes."""
    for channel_id, fields in changes.items():
        update_channel(conn, channel_id, fields, now)


def delete_channel(
    conn: sqlite3.Connection, space_id: int, channel_id: int
) -> tuple[list[int], list[str]]:
    """Delete a channel with everything under it. Returns the ids of child channels that were
    detached and the space reference fields (afk/system/rules) that pointed at it."""
    children = [
        row[0]
        for row in conn.execute(
            "SELECT id FROM channels WHERE parent_id = ? ORDER BY id", (channel_id,)
        )
    ]
    cleared: list[str] = []
    for field in ("afk_channel_id", "system_channel_id", "rules_channel_id"):
        cursor = conn.execute(
            f"UPDATE spaces SET {field} = NULL WHERE id = ? AND {field} = ?", (space_id, channel_id)
        )
        if cursor.rowcount:
            cleared.append(field)
    conn.execute("DELETE FROM channels WHERE id = ?", (channel_id,))
    return children, cleared


def put_overwrite(
    conn: sqlite3.Connection, channel_id: int, overwrite: PermissionOverwrite
) -> None:
    conn.execute(
        "INSERT INTO permission_overwrites (channel_id, target_id, type, allow, deny)"
        " VALUES (?, ?, ?, ?, ?) ON CONFLICT (channel_id, target_id) DO UPDATE SET"
        " type = excluded.type, allow = excluded.allow, deny = excluded.deny",
        (
            channel_id,
            overwrite.target_id,
            overwrite.type,
            json.dumps(list(overwrite.allow)),
            json.dumps(list(overwrite.deny)),
        ),
    )


def delete_overwrite(conn: sqlite3.Connection, channel_id: int, target_id: int) -> bool:
    cursor = conn.execute(
        "DELETE FROM permission_overwrites WHERE channel_id = ? AND target_id = ?",
        (channel_id, target_id),
    )
    return cursor.rowcount > 0


def channels_by_ids(
    conn: sqlite3.Connection, space_id: int, channel_ids: list[int]
) -> list[Channel]:
    """The given channels of a space (with overwrites), in id order."""
    wanted = set(channel_ids)
    return [c for c in list_channels(conn, space_id) if c.id in wanted]
