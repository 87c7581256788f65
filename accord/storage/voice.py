"""SQL the voice service needs beside permissions: members' server mute/deafen and admin flags.

Server mute and deafen are stored on the member row (DATA.md members.mute/deaf), so they stick
across voice sessions, as moderators expect.
"""

from __future__ import annotations

import sqlite3


def member_voice_flags(
    conn: sqlite3.Connection, space_id: int, user_id: int
) -> tuple[bool, bool] | None:
    """(mute, deaf) of a member, or None when the user is not a member."""
    row = conn.execute(
        "SELECT mute, deaf FROM members WHERE space_id = ? AND user_id = ?", (space_id, user_id)
    ).fetchone()
    return None if row is None else (bool(row[0]), bool(row[1]))


def set_member_voice_flags(
    conn: sqlite3.Connection, space_id: int, user_id: int, *, mute: bool | None, deaf: bool | None
) -> None:
    if mute is not None:
        conn.execute(
            "UPDATE members SET mute = ? WHERE space_id = ? AND user_id = ?",
            (mute, space_id, user_id),
        )
    if deaf is not None:
        conn.execute(
            "UPDATE members SET deaf = ? WHERE space_id = ? AND user_id = ?",
            (deaf, space_id, user_id),
        )


def user_is_admin(conn: sqlite3.Connection, user_id: int) -> bool | None:
    """The instance-admin flag of a user; None when the user does not exist."""
    row = conn.execute("SELECT is_admin FROM users WHERE id = ?", (user_id,)).fetchone()
    return None if row is None else bool(row[0])
