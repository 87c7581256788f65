"""SQL for space membership and members' role assignments."""

from __future__ import annotations

import sqlite3

from accord.models.members import Member

MEMBER_COLUMNS = (
    "space_id, user_id, nickname, avatar, joined_at, premium_since, deaf, mute, pending,"
    " timed_out_until"
)


def member_from_row(row: sqlite3.Row, roles: tuple[int, ...]) -> Member:
    return Member(
        space_id=row["space_id"],
        user_id=row["user_id"],
        nickname=row["nickname"],
        avatar=row["avatar"],
        joined_at=row["joined_at"],
        premium_since=row["premium_since"],
        deaf=bool(row["deaf"]),
        mute=bool(row["mute"]),
        pending=bool(row["pending"]),
        timed_out_until=row["timed_out_until"],
        roles=roles,
    )


def member_role_ids(conn: sqlite3.Connection, space_id: int, user_id: int) -> tuple[int, ...]:
    rows = conn.execute(
        "SELECT role_id FROM member_roles WHERE space_id = ? AND user_id = ? ORDER BY role_id",
        (space_id, user_id),
    ).fetchall()
    return tuple(row[0] for row in rows)


def get_member(conn: sqlite3.Connection, space_id: int, user_id: int) -> Member | None:
    row = conn.execute(
        f"SELECT {MEMBER_COLUMNS} FROM members WHERE space_id = ? AND user_id = ?",
        (space_id, user_id),
    ).fetchone()
    if row is None:
        return None
    return member_from_row(row, member_role_ids(conn, space_id, user_id))


def space_ids_of_user(conn: sqlite3.Connection, user_id: int) -> list[int]:
    rows = conn.execute("SELECT space_id FROM members WHERE user_id = ?", (user_id,)).fetchall()
    return [row[0] for row in rows]
