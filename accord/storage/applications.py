"""SQL for applications, their bot users and bot tokens."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

from accord.storage.users import insert_user


def create_application(
    conn: sqlite3.Connection,
    *,
    new_id: Callable[[], int],
    owner_id: int,
    name: str,
    description: str,
    bot_username: str,
    token_hash: str,
    now: str,
) -> tuple[int, int]:
    """Insert an application, its bot user and one bot token; returns (app id, bot user id)."""
    bot_id = new_id()
    insert_user(
        conn, user_id=bot_id, username=bot_username, display_name=bot_username, now=now, bot=True
    )
    app_id = new_id()
    conn.execute(
        "INSERT INTO applications (id, name, description, owner_id, bot_user_id, created_at,"
        " updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (app_id, name, description, owner_id, bot_id, now, now),
    )
    insert_bot_token(conn, token_hash, app_id, bot_id, now)
    return app_id, bot_id


def insert_bot_token(
    conn: sqlite3.Connection, token_hash: str, application_id: int, user_id: int, now: str
) -> None:
    conn.execute(
        "INSERT INTO bot_tokens (token_hash, application_id, user_id, created_at)"
        " VALUES (?, ?, ?, ?)",
        (token_hash, application_id, user_id, now),
    )


def replace_bot_tokens(
    conn: sqlite3.Connection, application_id: int, user_id: int, token_hash: str, now: str
) -> list[str]:
    """Delete every bot token of an application, issue `token_hash`; returns the old hashes."""
    old = conn.execute(
        "DELETE FROM bot_tokens WHERE application_id = ? RETURNING token_hash", (application_id,)
    ).fetchall()
    insert_bot_token(conn, token_hash, application_id, user_id, now)
    return [row[0] for row in old]


def first_application_of(conn: sqlite3.Connection, owner_id: int) -> tuple[int, int] | None:
    """(application id, bot user id) of the owner's oldest application."""
    row = conn.execute(
        "SELECT id, bot_user_id FROM applications WHERE owner_id = ? ORDER BY id LIMIT 1",
        (owner_id,),
    ).fetchone()
    return (row[0], row[1]) if row else None
