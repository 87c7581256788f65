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


def roles_of_members(
    conn: sqlite3.Connection, space_id: int, user_ids: list[int]
) -> dict[int, tuple[int, ...]]:
    """Assigned role ids of many members, one query per 500 members (G-36)."""
    found: dict[int, list[int]] = {user_id: [] for user_id in user_ids}
    for start in range(0, len(user_ids), 500):
        chunk = user_ids[start : start + 500]
        marks = ",".join("?" * len(chunk))
        for row in conn.execute(
            f"SELECT user_id, role_id FROM member_roles WHERE space_id = ? AND user_id IN ({marks})"
            " ORDER BY user_id, role_id",
            (space_id, *chunk),
        ):
            found[row[0]].append(row[1])
    return {user_id: tuple(roles) for user_id, roles in found.items()}


def _with_roles(conn: sqlite3.Connection, space_id: int, rows: list[sqlite3.Row]) -> list[Member]:
    roles = roles_of_members(conn, space_id, [row["user_id"] for row in rows])
    return [member_from_row(row, roles[row["user_id"]]) for row in rows]


def list_members(
    conn: sqlite3.Connection, space_id: int, *, after: int, limit: int
) -> list[Member]:
    """Members with user id > `after`, ascending (numeric ids, D3), at most `limit`."""
    rows = conn.execute(
        f"SELECT {MEMBER_COLUMNS} FROM members WHERE space_id = ? AND user_id > ?"
        " ORDER BY user_id LIMIT ?",
        (space_id, after, limit),
    ).fetchall()
    return _with_roles(conn, space_id, rows)


def _like_pattern(query: str) -> str:
    escaped = query.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def search_members(
    conn: sqlite3.Connection, space_id: int, query: str, *, limit: int
) -> list[Member]:
    """Members whose username, display name or nickname contains `query` (ASCII case-
    insensitive, wildcards escaped, G-28); prefix matches of the username first."""
    pattern = _like_pattern(query)
    prefix = _like_pattern(query)[1:]
    rows = conn.execute(
        f"SELECT {', '.join('m.' + c.strip() for c in MEMBER_COLUMNS.split(','))}"
        " FROM members m JOIN users u ON u.id = m.user_id"
        " WHERE m.space_id = ? AND (u.username LIKE ? ESCAPE '\\'"
        " OR u.display_name LIKE ? ESCAPE '\\' OR m.nickname LIKE ? ESCAPE '\\')"
        " ORDER BY (u.username LIKE ? ESCAPE '\\') DESC, u.username, m.user_id LIMIT ?",
        (space_id, pattern, pattern, pattern, prefix, limit),
    ).fetchall()
    return _with_roles(conn, space_id, rows)


_UPDATABLE = frozenset({"nickname", "mute", "deaf", "timed_out_until"})


def update_member(
    conn: sqlite3.Connection, space_id: int, user_id: int, fields: dict[str, object]
) -> None:
    if not fields:
        return
    unknown = set(fields) - _UPDATABLE
    if unknown:
        raise ValueError(f"not updatable: {sorted(unknown)}")
    assignments = ", ".join(f"{name} = ?" for name in fields)
    conn.execute(
        f"UPDATE members SET {assignments} WHERE space_id = ? AND user_id = ?",
        (*fields.values(), space_id, user_id),
    )


def set_member_roles(
    conn: sqlite3.Connection, space_id: int, user_id: int, role_ids: list[int] | tuple[int, ...]
) -> None:
    """Replace a member's whole role set."""
    conn.execute("DELETE FROM member_roles WHERE space_id = ? AND user_id = ?", (space_id, user_id))
    conn.executemany(
        "INSERT INTO member_roles (space_id, user_id, role_id) VALUES (?, ?, ?)",
        [(space_id, user_id, role_id) for role_id in role_ids],
    )


def unassign_role(conn: sqlite3.Connection, space_id: int, user_id: int, role_id: int) -> bool:
    cursor = conn.execute(
        "DELETE FROM member_roles WHERE space_id = ? AND user_id = ? AND role_id = ?",
        (space_id, user_id, role_id),
    )
    return cursor.rowcount > 0


def remove_member(conn: sqlite3.Connection, space_id: int, user_id: int) -> bool:
    """End a membership (role assignments cascade); False when there was none."""
    cursor = conn.execute(
        "DELETE FROM members WHERE space_id = ? AND user_id = ?", (space_id, user_id)
    )
    return cursor.rowcount > 0


def member_user_ids(conn: sqlite3.Connection, space_id: int) -> list[int]:
    rows = conn.execute(
        "SELECT user_id FROM members WHERE space_id = ? ORDER BY user_id", (space_id,)
    ).fetchall()
    return [row[0] for row in rows]


def highest_role_position(conn: sqlite3.Connection, space_id: int, user_id: int) -> int:
    """A member's highest assigned role position (0 with none, or for non-members)."""
    row = conn.execute(
        "SELECT COALESCE(MAX(r.position), 0) FROM member_roles mr"
        " JOIN roles r ON r.id = mr.role_id AND r.space_id = mr.space_id"
        " WHERE mr.space_id = ? AND mr.user_id = ?",
        (space_id, user_id),
    ).fetchone()
    return int(row[0])


def count_members(conn: sqlite3.Connection, space_id: int) -> int:
    row = conn.execute("SELECT COUNT(*) FROM members WHERE space_id = ?", (space_id,)).fetchone()
    return int(row[0])


def remove_user_memberships(conn: sqlite3.Connection, user_id: int) -> list[int]:
    """End every membership of a user (account deletion; role assignments cascade); returns
    the ids of the spaces left."""
    rows = conn.execute(
        "DELETE FROM members WHERE user_id = ? RETURNING space_id", (user_id,)
    ).fetchall()
    return sorted(row[0] for row in rows)
