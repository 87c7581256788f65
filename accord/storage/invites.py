"""SQL for invites."""

from __future__ import annotations

import secrets
import sqlite3
import string

_ALPHABET = string.ascii_letters + string.digits


def new_invite_code() -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(8))


def insert_invite(
    conn: sqlite3.Connection,
    *,
    space_id: int,
    now: str,
    channel_id: int | None = None,
    inviter_id: int | None = None,
    max_uses: int | None = None,
    max_age: int | None = None,
    temporary: bool = False,
    expires_at: str | None = None,
) -> str:
    """Insert an invite under a fresh random code (retried on collision, G-15)."""
    while True:
        code = new_invite_code()
        cursor = conn.execute(
            "INSERT OR IGNORE INTO invites (code, space_id, channel_id, inviter_id, max_uses,"
            " max_age, temporary, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (code, space_id, channel_id, inviter_id, max_uses, max_age, temporary, now, expires_at),
        )
        if cursor.rowcount:
            return code


def find_permanent_space_invite(conn: sqlite3.Connection, space_id: int) -> str | None:
    row = conn.execute(
        "SELECT code FROM invites WHERE space_id = ? AND channel_id IS NULL"
        " AND max_uses IS NULL AND expires_at IS NULL ORDER BY created_at LIMIT 1",
        (space_id,),
    ).fetchone()
    return row[0] if row else None
