"""SQL for interactions: who invoked which command where, and how the app answered."""

from __future__ import annotations

import sqlite3

import orjson

from accord.models.interactions import Interaction

_COLUMNS = (
    "id, application_id, type, data, user_id, created_at, space_id, channel_id, responded,"
    " response_message_id"
)


def _from_row(row: sqlite3.Row | tuple[object, ...]) -> Interaction:
    data = orjson.loads(row[3])  # type: ignore[arg-type]
    return Interaction(
        id=row[0],  # type: ignore[arg-type]
        application_id=row[1],  # type: ignore[arg-type]
        type=row[2],  # type: ignore[arg-type]
        data=data if isinstance(data, dict) else {},
        user_id=row[4],  # type: ignore[arg-type]
        created_at=row[5],  # type: ignore[arg-type]
        space_id=row[6],  # type: ignore[arg-type]
        channel_id=row[7],  # type: ignore[arg-type]
        responded=bool(row[8]),
        response_message_id=row[9],  # type: ignore[arg-type]
    )


def insert_interaction(conn: sqlite3.Connection, interaction: Interaction, token_hash: str) -> None:
    conn.execute(
        "INSERT INTO interactions (id, application_id, token_hash, type, data, space_id,"
        " channel_id, user_id, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            interaction.id,
            interaction.application_id,
            token_hash,
            interaction.type,
            orjson.dumps(interaction.data).decode(),
            interaction.space_id,
            interaction.channel_id,
            interaction.user_id,
            interaction.created_at,
        ),
    )


def get_with_token(conn: sqlite3.Connection, interaction_id: int) -> tuple[Interaction, str] | None:
    row = conn.execute(
        f"SELECT {_COLUMNS}, token_hash FROM interactions WHERE id = ?", (interaction_id,)
    ).fetchone()
    return (_from_row(row), row[10]) if row else None


def get_by_token(
    conn: sqlite3.Connection, application_id: int, token_hash: str
) -> Interaction | None:
    row = conn.execute(
        f"SELECT {_COLUMNS} FROM interactions WHERE application_id = ? AND token_hash = ?",
        (application_id, token_hash),
    ).fetchone()
    return _from_row(row) if row else None


def mark_responded(
    conn: sqlite3.Connection, interaction_id: int, response: str, message_id: int | None
) -> bool:
    """Record the first response; False when the interaction was already answered."""
    cursor = conn.execute(
        "UPDATE interactions SET responded = 1, response = ?, response_message_id = ?"
        " WHERE id = ? AND responded = 0",
        (response, message_id, interaction_id),
    )
    return cursor.rowcount > 0


def set_response_message(conn: sqlite3.Connection, interaction_id: int, message_id: int) -> None:
    conn.execute(
        "UPDATE interactions SET response_message_id = ? WHERE id = ?", (message_id, interaction_id)
    )
