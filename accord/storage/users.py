"""SQL for users and their bearer tokens. Sync functions run on a Database thread."""

from __future__ import annotations

import sqlite3
from typing import Any

from accord.models.users import User

USER_COLUMNS = (
    "id, username, display_name, created_at, updated_at, avatar, banner, accent_color, bio,"
    " bot, system, is_admin, flags, public_flags, mfa_enabled, deleted"
)


def user_from_row(row: sqlite3.Row) -> User:
    return User(
        id=row["id"],
        username=row["username"],
        display_name=row["display_name"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        avatar=row["avatar"],
        banner=row["banner"],
        accent_color=row["accent_color"],
        bio=row["bio"],
        bot=bool(row["bot"]),
        system=bool(row["system"]),
        is_admin=bool(row["is_admin"]),
        flags=row["flags"],
        public_flags=row["public_flags"],
        mfa_enabled=bool(row["mfa_enabled"]),
        deleted=bool(row["deleted"]),
    )


def insert_user(
    conn: sqlite3.Connection,
    *,
    user_id: int,
    username: str,
    display_name: str,
    now: str,
    password_hash: str | None = None,
    bot: bool = False,
    system: bool = False,
    is_admin: bool = False,
) -> User:
    conn.execute(
        "INSERT INTO users (id, username, display_name, created_at, updated_at, password_hash,"
        " bot, system, is_admin) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (user_id, username, display_name, now, now, password_hash, bot, system, is_admin),
    )
    user = get_user(conn, user_id)
    assert user is not None
    return user


def get_user(conn: sqlite3.Connection, user_id: int) -> User | None:
    row = conn.execute(f"SELECT {USER_COLUMNS} FROM users WHERE id = ?", (user_id,)).fetchone()
    return user_from_row(row) if row else None


def get_users(conn: sqlite3.Connection, user_ids: list[int]) -> dict[int, User]:
    """Users by id, in one query per 500 ids."""
    found: dict[int, User] = {}
    for start in range(0, len(user_ids), 500):
        chunk = user_ids[start : start + 500]
        marks = ",".join("?" * len(chunk))
        for row in conn.execute(f"SELECT {USER_COLUMNS} FROM users WHERE id IN ({marks})", chunk):
            found[row["id"]] = user_from_row(row)
    return found


def get_user_by_username(conn: sqlite3.Connection, username: str) -> User | None:
    row = conn.execute(
        f"SELECT {USER_COLUMNS} FROM users WHERE username = ?", (username,)
    ).fetchone()
    return user_from_row(row) if row else None


def get_login_record(conn: sqlite3.Connection, username: str) -> tuple[User, str | None] | None:
    row = conn.execute(
        f"SELECT {USER_COLUMNS}, password_hash FROM users WHERE username = ?", (username,)
    ).fetchone()
    return (user_from_row(row), row["password_hash"]) if row else None


def get_password_hash(conn: sqlite3.Connection, user_id: int) -> str | None:
    row = conn.execute("SELECT password_hash FROM users WHERE id = ?", (user_id,)).fetchone()
    return row["password_hash"] if row else None


def username_taken(conn: sqlite3.Connection, username: str, *, except_id: int = 0) -> bool:
    row = conn.execute(
        "SELECT 1 FROM users WHERE username = ? AND id != ?", (username, except_id)
    ).fetchone()
    return row is not None


def count_human_users(conn: sqlite3.Connection) -> int:
    """Users who can log in (not bots, not the System user): decides the first admin (D8)."""
    row = conn.execute(
        "SELECT COUNT(*) FROM users WHERE bot = 0 AND system = 0 AND password_hash IS NOT NULL"
    ).fetchone()
    return int(row[0])


_UPDATABLE = frozenset(
    {"username", "display_name", "avatar", "banner", "accent_color", "bio", "password_hash"}
)


def update_user(conn: sqlite3.Connection, user_id: int, fields: dict[str, Any], now: str) -> None:
    if not fields:
        return
    unknown = set(fields) - _UPDATABLE
    if unknown:
        raise ValueError(f"not updatable: {sorted(unknown)}")
    assignments = ", ".join(f"{name} = ?" for name in fields)
    conn.execute(
        f"UPDATE users SET {assignments}, updated_at = ? WHERE id = ?",
        (*fields.values(), now, user_id),
    )


def set_admin(conn: sqlite3.Connection, username: str, is_admin: bool) -> bool:
    cursor = conn.execute(
        "UPDATE users SET is_admin = ? WHERE username = ? AND bot = 0", (is_admin, username)
    )
    return cursor.rowcount > 0


# -- bearer tokens ---------------------------------------------------------------------------


def insert_user_token(
    conn: sqlite3.Connection, token_hash: str, user_id: int, expires_at: str, now: str
) -> None:
    conn.execute(
        "INSERT INTO user_tokens (token_hash, user_id, expires_at, created_at) VALUES (?, ?, ?, ?)",
        (token_hash, user_id, expires_at, now),
    )


def delete_user_token(conn: sqlite3.Connection, token_hash: str) -> int | None:
    """Delete one bearer token; returns its user id, or None if it did not exist."""
    row = conn.execute(
        "DELETE FROM user_tokens WHERE token_hash = ? RETURNING user_id", (token_hash,)
    ).fetchone()
    return row[0] if row else None


def delete_user_tokens(
    conn: sqlite3.Connection, user_id: int, keep_hash: str | None = None
) -> list[str]:
    """Delete every bearer token of a user (but `keep_hash`); returns the deleted hashes."""
    rows = conn.execute(
        "DELETE FROM user_tokens WHERE user_id = ? AND token_hash != ? RETURNING token_hash",
        (user_id, keep_hash or ""),
    ).fetchall()
    return [row[0] for row in rows]


def purge_expired_tokens(conn: sqlite3.Connection, now: str) -> int:
    return conn.execute("DELETE FROM user_tokens WHERE expires_at < ?", (now,)).rowcount


def lookup_bearer(conn: sqlite3.Connection, token_hash: str) -> tuple[int, bool, str] | None:
    """(user id, is_admin, expires_at) for a stored bearer token of a live user."""
    row = conn.execute(
        "SELECT t.user_id, u.is_admin, t.expires_at FROM user_tokens t"
        " JOIN users u ON u.id = t.user_id WHERE t.token_hash = ? AND u.deleted = 0",
        (token_hash,),
    ).fetchone()
    return (row[0], bool(row[1]), row[2]) if row else None


def lookup_bot(conn: sqlite3.Connection, token_hash: str) -> tuple[int, bool, int] | None:
    """(bot user id, is_admin, application id) for a stored bot token."""
    row = conn.execute(
        "SELECT t.user_id, u.is_admin, t.application_id FROM bot_tokens t"
        " JOIN users u ON u.id = t.user_id WHERE t.token_hash = ? AND u.deleted = 0",
        (token_hash,),
    ).fetchone()
    return (row[0], bool(row[1]), row[2]) if row else None


def anonymise_user(conn: sqlite3.Connection, user_id: int, now: str) -> None:
    """Account deletion: keep the row (messages keep their author) but strip everything
    personal, make it unable to log in and mark it deleted."""
    conn.execute(
        "UPDATE users SET username = ?, display_name = 'Deleted User', avatar = NULL,"
        " banner = NULL, accent_color = NULL, bio = NULL, password_hash = NULL,"
        " mfa_enabled = 0, deleted = 1, updated_at = ? WHERE id = ?",
        (f"deleted-user-{user_id}", now, user_id),
    )
