"""SQL the real-time gateway needs: identities at IDENTIFY, member lists for REQUEST_MEMBERS,
and the role/overwrite data that decides which channels a connected member can see.

Sync functions run on a Database thread; each takes what one dispatcher step needs in a few
queries, so the gateway never issues a query per event or per session.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from accord.models.members import Member
from accord.models.spaces import Space
from accord.models.users import User
from accord.storage.members import MEMBER_COLUMNS, member_from_row
from accord.storage.permissions import permission_names
from accord.storage.spaces import SPACE_COLUMNS, space_from_row
from accord.storage.users import get_users


def token_is_live(conn: sqlite3.Connection, kind: str, token_hash: str) -> bool:
    """Whether a bearer or bot token still exists (it may have been revoked meanwhile)."""
    table = "user_tokens" if kind == "bearer" else "bot_tokens"
    row = conn.execute(f"SELECT 1 FROM {table} WHERE token_hash = ?", (token_hash,)).fetchone()
    return row is not None


def load_identities(
    conn: sqlite3.Connection, requests: list[tuple[int, str, str]]
) -> dict[tuple[int, str], tuple[User, list[Space]] | None]:
    """For (user id, token kind, token hash) triples: the user and its spaces, or None when
    the user is gone or the token was revoked since it was resolved."""
    users = get_users(conn, sorted({user_id for user_id, _, _ in requests}))
    memberships: dict[int, list[int]] = {}
    ids = list(users)
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        marks = ",".join("?" * len(chunk))
        for row in conn.execute(
            f"SELECT user_id, space_id FROM members WHERE user_id IN ({marks})", chunk
        ):
            memberships.setdefault(row[0], []).append(row[1])
    space_ids = sorted({space_id for ids in memberships.values() for space_id in ids})
    spaces: dict[int, Space] = {}
    for start in range(0, len(space_ids), 500):
        chunk = space_ids[start : start + 500]
        marks = ",".join("?" * len(chunk))
        for row in conn.execute(f"SELECT {SPACE_COLUMNS} FROM spaces WHERE id IN ({marks})", chunk):
            space = space_from_row(row)
            spaces[space.id] = space
    found: dict[tuple[int, str], tuple[User, list[Space]] | None] = {}
    for user_id, kind, token_hash in requests:
        user = users.get(user_id)
        if user is None or user.deleted or not token_is_live(conn, kind, token_hash):
            found[(user_id, token_hash)] = None
        else:
            joined = [spaces[i] for i in memberships.get(user_id, []) if i in spaces]
            found[(user_id, token_hash)] = (user, joined)
    return found


def member_role_ids(
    conn: sqlite3.Connection, space_id: int, user_ids: list[int]
) -> dict[int, frozenset[int]]:
    """Role ids of those of `user_ids` who are members of the space (non-members absent)."""
    found: dict[int, set[int]] = {}
    for start in range(0, len(user_ids), 500):
        chunk = user_ids[start : start + 500]
        marks = ",".join("?" * len(chunk))
        for row in conn.execute(
            f"SELECT user_id FROM members WHERE space_id = ? AND user_id IN ({marks})",
            (space_id, *chunk),
        ):
            found[row[0]] = set()
        for row in conn.execute(
            "SELECT user_id, role_id FROM member_roles"
            f" WHERE space_id = ? AND user_id IN ({marks})",
            (space_id, *chunk),
        ):
            if row[0] in found:
                found[row[0]].add(row[1])
    return {user_id: frozenset(roles) for user_id, roles in found.items()}


def space_permission_rows(conn: sqlite3.Connection, space_id: int) -> dict[str, Any] | None:
    """Owner, role permissions and every channel's overwrites of a space, or None if gone."""
    space = conn.execute("SELECT owner_id FROM spaces WHERE id = ?", (space_id,)).fetchone()
    if space is None:
        return None
    roles = {
        row[0]: permission_names(row[1])
        for row in conn.execute("SELECT id, permissions FROM roles WHERE space_id = ?", (space_id,))
    }
    channels: dict[int, list[tuple[int, str, tuple[str, ...], tuple[str, ...]]]] = {
        row[0]: []
        for row in conn.execute("SELECT id FROM channels WHERE space_id = ?", (space_id,))
    }
    for row in conn.execute(
        "SELECT o.channel_id, o.target_id, o.type, o.allow, o.deny FROM permission_overwrites o"
        " JOIN channels c ON c.id = o.channel_id WHERE c.space_id = ?",
        (space_id,),
    ):
        channels.setdefault(row[0], []).append(
            (row[1], row[2], permission_names(row[3]), permission_names(row[4]))
        )
    return {"owner_id": space[0], "roles": roles, "channels": channels}


def list_members(
    conn: sqlite3.Connection,
    space_id: int,
    *,
    query: str,
    limit: int,
    user_ids: list[int],
) -> tuple[list[tuple[Member, User]], list[int]]:
    """Members for REQUEST_MEMBERS (D12f): by ids, or by username/nickname prefix (limit 0 =
    all), ordered by user id. Returns the members with their users, and the ids not found."""
    if user_ids:
        marks = ",".join("?" * len(user_ids))
        rows = conn.execute(
            f"SELECT {MEMBER_COLUMNS} FROM members WHERE space_id = ? AND user_id IN ({marks})"
            " ORDER BY user_id",
            (space_id, *user_ids),
        ).fetchall()
    else:
        sql = f"SELECT {_qualified(MEMBER_COLUMNS)} FROM members m"
        params: list[Any] = [space_id]
        if query:
            pattern = query.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            sql += (
                " JOIN users u ON u.id = m.user_id WHERE m.space_id = ? AND"
                " (u.username LIKE ? ESCAPE '\\' OR u.display_name LIKE ? ESCAPE '\\'"
                " OR m.nickname LIKE ? ESCAPE '\\')"
            )
            params += [pattern, pattern, pattern]
        else:
            sql += " WHERE m.space_id = ?"
        sql += " ORDER BY m.user_id"
        if limit > 0:
            sql += " LIMIT ?"
            params.append(limit)
        rows = conn.execute(sql, params).fetchall()
    roles: dict[int, list[int]] = {}
    for row in conn.execute(
        "SELECT user_id, role_id FROM member_roles WHERE space_id = ? ORDER BY role_id",
        (space_id,),
    ):
        roles.setdefault(row[0], []).append(row[1])
    users = get_users(conn, [row["user_id"] for row in rows])
    members = [
        (member_from_row(row, tuple(roles.get(row["user_id"], ()))), users[row["user_id"]])
        for row in rows
        if row["user_id"] in users
    ]
    found = {member.user_id for member, _ in members}
    return members, [user_id for user_id in user_ids if user_id not in found]


def _qualified(columns: str) -> str:
    return ", ".join(f"m.{name.strip()}" for name in columns.split(","))
