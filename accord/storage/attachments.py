"""SQL for message attachments. Rows point at content-addressed files (`storage_key`)."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from accord.models.messages import Attachment

_COLUMNS = (
    "id, message_id, channel_id, filename, size, storage_key, content_type, description,"
    " width, height"
)


def _from_row(row: sqlite3.Row | tuple[object, ...]) -> Attachment:
    return Attachment(*row)  # column order matches the dataclass


def insert_attachment(conn: sqlite3.Connection, attachment: Attachment) -> None:
    conn.execute(
        f"INSERT INTO attachments ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            attachment.id,
            attachment.message_id,
            attachment.channel_id,
            attachment.filename,
            attachment.size,
            attachment.storage_key,
            attachment.content_type,
            attachment.description,
            attachment.width,
            attachment.height,
        ),
    )


def list_for_messages(
    conn: sqlite3.Connection, message_ids: Sequence[int]
) -> dict[int, list[Attachment]]:
    if not message_ids:
        return {}
    marks = ",".join("?" * len(message_ids))
    found: dict[int, list[Attachment]] = {}
    for row in conn.execute(
        f"SELECT {_COLUMNS} FROM attachments WHERE message_id IN ({marks}) ORDER BY id",
        tuple(message_ids),
    ):
        attachment = _from_row(row)
        found.setdefault(attachment.message_id, []).append(attachment)
    return found


def get_attachment(
    conn: sqlite3.Connection, channel_id: int, attachment_id: int
) -> Attachment | None:
    row = conn.execute(
        f"SELECT {_COLUMNS} FROM attachments WHERE id = ? AND channel_id = ?",
        (attachment_id, channel_id),
    ).fetchone()
    return _from_row(row) if row else None
