"""SQL for custom emojis and the roles they are restricted to."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from accord.models.emojis import Emoji

_COLUMNS = (
    "id, space_id, name, created_at, animated, managed, available, require_colons, creator_id,"
    " image_key"
)


def _from_row(row: sqlite3.Row | tuple[object, ...], roles: tuple[int, ...]) -> Emoji:
    return Emoji(
        id=row[0],  # type: ignore[arg-type]
        space_id=row[1],  # type: ignore[arg-type]
        name=row[2],  # type: ignore[arg-type]
        created_at=row[3],  # type: ignore[arg-type]
        animated=bool(row[4]),
        managed=bool(row[5]),
        available=bool(row[6]),
        require_colons=bool(row[7]),
        creator_id=row[8],  # type: ignore[arg-type]
        image_key=row[9],  # type: ignore[arg-type]
        role_ids=roles,
    )


def _roles(conn: sqlite3.Connection, emoji_ids: Sequence[int]) -> dict[int, tuple[int, ...]]:
    if not emoji_ids:
        return {}
    marks = ",".join("?" * len(emoji_ids))
    found: dict[int, list[int]] = {}
    for row in conn.execute(
        f"SELECT emoji_id, role_id FROM emoji_roles WHERE emoji_id IN ({marks}) ORDER BY role_id",
        tuple(emoji_ids),
    ):
        found.setdefault(row[0], []).append(row[1])
    return {k: tuple(v) for k, v in found.items()}


def list_space_emojis(conn: sqlite3.Connection, space_id: int) -> list[Emoji]:
    rows = conn.execute(
        f"SELECT {_COLUMNS} FROM emojis WHERE space_id = ? ORDER BY id", (space_id,)
    ).fetchall()
    roles = _roles(conn, [row[0] for row in rows])
    return [_from_row(row, roles.get(row[0], ())) for row in rows]


def get_emoji(conn: sqlite3.Connection, emoji_id: int, space_id: int | None = None) -> Emoji | None:
    """An emoji by id; with `space_id`, only if it belongs to that space (G-04)."""
    if space_id is None:
        row = conn.execute(f"SELECT {_COLUMNS} FROM emojis WHERE id = ?", (emoji_id,)).fetchone()
    else:
        row = conn.execute(
            f"SELECT {_COLUMNS} FROM emojis WHERE id = ? AND space_id = ?", (emoji_id, space_id)
        ).fetchone()
    if row is None:
        return None
    return _from_row(row, _roles(conn, [emoji_id]).get(emoji_id, ()))


def count_space_emojis(conn: sqlite3.Connection, space_id: int) -> int:
    row = conn.execute("SELECT COUNT(*) FROM emojis WHERE space_id = ?", (space_id,)).fetchone()
    return int(row[0])


def name_taken(conn: sqlite3.Connection, space_id: int, name: str, *, except_id: int = 0) -> bool:
    row = conn.execute(
        "SELECT 1 FROM emojis WHERE space_id = ? AND name = ? AND id != ?",
        (space_id, name, except_id),
    ).fetchone()
    return row is not None


def insert_emoji(
    conn: sqlite3.Connection,
    *,
    emoji_id: int,
    space_id: int,
    name: str,
    animated: bool,
    creator_id: int,
    image_key: str,
    now: str,
) -> None:
    conn.execute(
        "INSERT INTO emojis (id, space_id, name, animated, creator_id, image_key, created_at,"
        " updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (emoji_id, space_id, name, animated, creator_id, image_key, now, now),
    )


def rename_emoji(conn: sqlite3.Connection, emoji_id: int, name: str, now: str) -> None:
    conn.execute("UPDATE emojis SET name = ?, updated_at = ? WHERE id = ?", (name, now, emoji_id))


def set_emoji_roles(conn: sqlite3.Connection, emoji_id: int, role_ids: Sequence[int]) -> None:
    conn.execute("DELETE FROM emoji_roles WHERE emoji_id = ?", (emoji_id,))
    conn.executemany(
        "INSERT INTO emoji_roles (emoji_id, role_id) VALUES (?, ?)",
        [(emoji_id, role_id) for role_id in role_ids],
    )


def delete_emoji(conn: sqlite3.Connection, space_id: int, emoji_id: int) -> bool:
    cursor = conn.execute("DELETE FROM emojis WHERE id = ? AND space_id = ?", (emoji_id, space_id))
    return cursor.rowcount > 0


def image_key_of(conn: sqlite3.Connection, emoji_id: int) -> tuple[str | None, bool] | None:
    """(image key, animated) of an emoji, for the CDN."""
    row = conn.execute(
        "SELECT image_key, animated FROM emojis WHERE id = ?", (emoji_id,)
    ).fetchone()
    return (row[0], bool(row[1])) if row else None
