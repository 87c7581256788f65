"""SQL for invites: creation under fresh codes, lookups, the atomic use counter, purging."""

from __future__ import annotations

import secrets
import sqlite3
import string

from accord.models.invites import Invite

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


INVITE_COLUMNS = (
    "code, space_id, channel_id, inviter_id, max_uses, uses, max_age, temporary, created_at,"
    " expires_at"
)


def invite_from_row(row: sqlite3.Row) -> Invite:
    return Invite(
        code=row["code"],
        space_id=row["space_id"],
        channel_id=row["channel_id"],
        inviter_id=row["inviter_id"],
        max_uses=row["max_uses"],
        uses=row["uses"],
        max_age=row["max_age"],
        temporary=bool(row["temporary"]),
        created_at=row["created_at"],
        expires_at=row["expires_at"],
    )


def get_invite(conn: sqlite3.Connection, code: str) -> Invite | None:
    row = conn.execute(f"SELECT {INVITE_COLUMNS} FROM invites WHERE code = ?", (code,)).fetchone()
    return invite_from_row(row) if row else None


def list_invites(
    conn: sqlite3.Connection,
    space_id: int,
    *,
    channel_id: int | None = None,
    inviter_id: int | None = None,
) -> list[Invite]:
    """A space's invites (optionally one channel's, optionally one inviter's), oldest first."""
    sql = f"SELECT {INVITE_COLUMNS} FROM invites WHERE space_id = ?"
    args: list[object] = [space_id]
    if channel_id is not None:
        sql += " AND channel_id = ?"
        args.append(channel_id)
    if inviter_id is not None:
        sql += " AND inviter_id = ?"
        args.append(inviter_id)
    rows = conn.execute(sql + " ORDER BY created_at, code", args).fetchall()
    return [invite_from_row(row) for row in rows]


def count_invites(conn: sqlite3.Connection, space_id: int) -> int:
    row = conn.execute("SELECT COUNT(*) FROM invites WHERE space_id = ?", (space_id,)).fetchone()
    return int(row[0])


def purge_dead_invites(conn: sqlite3.Connection, space_id: int, now: str) -> int:
    """Delete the space's expired and used-up invites (G-19); they can never be used again."""
    cursor = conn.execute(
        "DELETE FROM invites WHERE space_id = ? AND ((expires_at IS NOT NULL AND expires_at <= ?)"
        " OR (max_uses IS NOT NULL AND uses >= max_uses))",
        (space_id, now),
    )
    return cursor.rowcount


def delete_invite(conn: sqlite3.Connection, code: str) -> bool:
    return conn.execute("DELETE FROM invites WHERE code = ?", (code,)).rowcount > 0


def consume_use(conn: sqlite3.Connection, code: str) -> bool:
    """Count one use if any is left, atomically (G-16); False when the invite is used up."""
    cursor = conn.execute(
        "UPDATE invites SET uses = uses + 1"
        " WHERE code = ? AND (max_uses IS NULL OR uses < max_uses)",
        (code,),
    )
    return cursor.rowcount > 0


_EDITABLE = frozenset({"max_uses", "max_age", "temporary", "expires_at"})


def update_invite(conn: sqlite3.Connection, code: str, fields: dict[str, object]) -> None:
    """Change an invite's limits (PATCH /invites/{code})."""
    if not fields:
        return
    unknown = set(fields) - _EDITABLE
    if unknown:
        raise ValueError(f"not editable: {sorted(unknown)}")
    assignments = ", ".join(f"{name} = ?" for name in fields)
    conn.execute(f"UPDATE invites SET {assignments} WHERE code = ?", (*fields.values(), code))
