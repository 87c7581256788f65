"""SQL for soundboard sounds."""

from __future__ import annotations

import sqlite3
from typing import Any

from accord.models.sounds import Sound

_COLUMNS = "id, space_id, name, volume, creator_id, audio_key, content_type, created_at, updated_at"


def _sound(row: sqlite3.Row) -> Sound:
    return Sound(**{key: row[key] for key in row.keys()})  # noqa: SIM118


def insert_sound(conn: sqlite3.Connection, sound: Sound) -> None:
    conn.execute(
        f"INSERT INTO soundboard_sounds ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            sound.id,
            sound.space_id,
            sound.name,
            sound.volume,
            sound.creator_id,
            sound.audio_key,
            sound.content_type,
            sound.created_at,
            sound.updated_at,
        ),
    )


def get_sound(conn: sqlite3.Connection, space_id: int, sound_id: int) -> Sound | None:
    row = conn.execute(
        f"SELECT {_COLUMNS} FROM soundboard_sounds WHERE id = ? AND space_id = ?",
        (sound_id, space_id),
    ).fetchone()
    return _sound(row) if row else None


def get_sound_by_id(conn: sqlite3.Connection, sound_id: int) -> Sound | None:
    row = conn.execute(
        f"SELECT {_COLUMNS} FROM soundboard_sounds WHERE id = ?", (sound_id,)
    ).fetchone()
    return _sound(row) if row else None


def list_sounds(conn: sqlite3.Connection, space_id: int) -> list[Sound]:
    rows = conn.execute(
        f"SELECT {_COLUMNS} FROM soundboard_sounds WHERE space_id = ? ORDER BY id", (space_id,)
    ).fetchall()
    return [_sound(row) for row in rows]


def count_sounds(conn: sqlite3.Connection, space_id: int) -> int:
    row = conn.execute(
        "SELECT COUNT(*) FROM soundboard_sounds WHERE space_id = ?", (space_id,)
    ).fetchone()
    return int(row[0])


def name_taken(conn: sqlite3.Connection, space_id: int, name: str, except_id: int = 0) -> bool:
    row = conn.execute(
        "SELECT 1 FROM soundboard_sounds WHERE space_id = ? AND name = ? AND id != ?",
        (space_id, name, except_id),
    ).fetchone()
    return row is not None


def update_sound(conn: sqlite3.Connection, sound_id: int, fields: dict[str, Any], now: str) -> None:
    if not fields:
        return
    allowed = {"name", "volume"}
    if set(fields) - allowed:
        raise ValueError("not updatable")
    assignments = ", ".join(f"{name} = ?" for name in fields)
    conn.execute(
        f"UPDATE soundboard_sounds SET {assignments}, updated_at = ? WHERE id = ?",
        (*fields.values(), now, sound_id),
    )


def delete_sound(conn: sqlite3.Connection, sound_id: int) -> None:
    conn.execute("DELETE FROM soundboard_sounds WHERE id = ?", (sound_id,))
