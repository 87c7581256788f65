"""SQL for two-factor authentication: TOTP secrets and hashed one-time backup codes."""

from __future__ import annotations

import sqlite3


def get_mfa(conn: sqlite3.Connection, user_id: int) -> tuple[str, bool, int] | None:
    """(secret, enabled, last used time step) of a user's TOTP set-up."""
    row = conn.execute(
        "SELECT secret, enabled, last_used_step FROM user_mfa WHERE user_id = ?", (user_id,)
    ).fetchone()
    return (row[0], bool(row[1]), row[2]) if row else None


def put_pending_secret(conn: sqlite3.Connection, user_id: int, secret: str, now: str) -> None:
    conn.execute(
        "INSERT INTO user_mfa (user_id, secret, enabled, last_used_step, created_at)"
        " VALUES (?, ?, 0, 0, ?) ON CONFLICT (user_id) DO UPDATE SET secret = excluded.secret,"
        " enabled = 0, last_used_step = 0, created_at = excluded.created_at",
        (user_id, secret, now),
    )


def mark_step_used(conn: sqlite3.Connection, user_id: int, step: int) -> bool:
    """Record a used time step; False when it (or a later one) was used already (replay)."""
    cursor = conn.execute(
        "UPDATE user_mfa SET last_used_step = ? WHERE user_id = ? AND last_used_step < ?",
        (step, user_id, step),
    )
    return cursor.rowcount > 0


def set_enabled(conn: sqlite3.Connection, user_id: int, enabled: bool) -> None:
    conn.execute("UPDATE user_mfa SET enabled = ? WHERE user_id = ?", (enabled, user_id))
    conn.execute("UPDATE users SET mfa_enabled = ? WHERE id = ?", (enabled, user_id))


def delete_mfa(conn: sqlite3.Connection, user_id: int) -> None:
    conn.execute("DELETE FROM user_mfa WHERE user_id = ?", (user_id,))
    conn.execute("DELETE FROM mfa_backup_codes WHERE user_id = ?", (user_id,))
    conn.execute("UPDATE users SET mfa_enabled = 0 WHERE id = ?", (user_id,))


def replace_backup_codes(conn: sqlite3.Connection, user_id: int, code_hashes: list[str]) -> None:
    conn.execute("DELETE FROM mfa_backup_codes WHERE user_id = ?", (user_id,))
    conn.executemany(
        "INSERT INTO mfa_backup_codes (user_id, code_hash) VALUES (?, ?)",
        [(user_id, h) for h in code_hashes],
    )


def use_backup_code(conn: sqlite3.Connection, user_id: int, code_hash: str, now: str) -> bool:
    cursor = conn.execute(
        "UPDATE mfa_backup_codes SET used_at = ? WHERE user_id = ? AND code_hash = ?"
        " AND used_at IS NULL",
        (now, user_id, code_hash),
    )
    return cursor.rowcount > 0


def count_backup_codes(conn: sqlite3.Connection, user_id: int) -> tuple[int, int]:
    """(unused, total) backup codes of a user."""
    row = conn.execute(
        "SELECT COUNT(*) FILTER (WHERE used_at IS NULL), COUNT(*) FROM mfa_backup_codes"
        " WHERE user_id = ?",
        (user_id,),
    ).fetchone()
    return int(row[0]), int(row[1])
