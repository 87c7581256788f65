"""SQL for roles: listing, scoped lookup, create, update, reorder and delete.

Every lookup is scoped to the space in the request path (G-04). @everyone is the role whose id
equals the space id (G-03). Deleting a role also drops the channel overwrites naming it.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from accord.models.roles import Role
from accord.storage.permissions import permission_names
from accord.storage.spaces import insert_role

ROLE_COLUMNS = "id, space_id, name, color, hoist, icon, position, permissions, managed, mentionable"


def role_from_row(row: sqlite3.Row) -> Role:
    return Role(
        id=row["id"],
        space_id=row["space_id"],
        name=row["name"],
        color=row["color"],
        hoist=bool(row["hoist"]),
        icon=row["icon"],
        position=row["position"],
        permissions=permission_names(row["permissions"]),
        managed=bool(row["managed"]),
        mentionable=bool(row["mentionable"]),
    )


def list_roles(conn: sqlite3.Connection, space_id: int) -> list[Role]:
    rows = conn.execute(
        f"SELECT {ROLE_COLUMNS} FROM roles WHERE space_id = ? ORDER BY position, id", (space_id,)
    ).fetchall()
    return [role_from_row(row) for row in rows]


def get_role(conn: sqlite3.Connection, space_id: int, role_id: int) -> Role | None:
    """The role `role_id` if it belongs to `space_id` (G-04)."""
    row = conn.execute(
        f"SELECT {ROLE_COLUMNS} FROM roles WHERE id = ? AND space_id = ?", (role_id, space_id)
    ).fetchone()
    return role_from_row(row) if row else None


def count_roles(conn: sqlite3.Connection, space_id: int) -> int:
    return int(
        conn.execute("SELECT COUNT(*) FROM roles WHERE space_id = ?", (space_id,)).fetchone()[0]
    )


def create_role(
    conn: sqlite3.Connection,
    *,
    role_id: int,
    space_id: int,
    name: str,
    permissions: list[str],
    color: int,
    hoist: bool,
    mentionable: bool,
    now: str,
) -> Role:
    """Insert a role above every existing role (API.md 3.10, G-40)."""
    top = conn.execute(
        "SELECT COALESCE(MAX(position), 0) FROM roles WHERE space_id = ?", (space_id,)
    ).fetchone()[0]
    insert_role(
        conn,
        role_id=role_id,
        space_id=space_id,
        name=name,
        position=int(top) + 1,
        permissions=permissions,
        color=color,
        hoist=hoist,
        mentionable=mentionable,
        now=now,
    )
    role = get_role(conn, space_id, role_id)
    assert role is not None
    return role


_UPDATABLE = frozenset({"name", "color", "hoist", "icon", "permissions", "mentionable"})


def update_role(conn: sqlite3.Connection, role_id: int, fields: dict[str, Any], now: str) -> None:
    unknown = set(fields) - _UPDATABLE
    if unknown:
        raise ValueError(f"not updatable: {sorted(unknown)}")
    values = [json.dumps(v) if k == "permissions" else v for k, v in fields.items()]
    assignments = "".join(f"{name} = ?, " for name in fields)
    conn.execute(
        f"UPDATE roles SET {assignments}updated_at = ? WHERE id = ?", (*values, now, role_id)
    )


def set_role_positions(conn: sqlite3.Connection, positions: dict[int, int], now: str) -> None:
    conn.executemany(
        "UPDATE roles SET position = ?, updated_at = ? WHERE id = ?",
        [(position, now, role_id) for role_id, position in positions.items()],
    )


def delete_role(conn: sqlite3.Connection, space_id: int, role_id: int) -> list[int]:
    """Delete a role (assignments cascade) and the overwrites naming it; returns the ids of
    channels whose overwrites changed."""
    rows = conn.execute(
        "DELETE FROM permission_overwrites WHERE target_id = ? AND type = 'role' AND channel_id IN"
        " (SELECT id FROM channels WHERE space_id = ?) RETURNING channel_id",
        (role_id, space_id),
    ).fetchall()
    conn.execute("DELETE FROM roles WHERE id = ? AND space_id = ?", (role_id, space_id))
    return sorted({row[0] for row in rows})
