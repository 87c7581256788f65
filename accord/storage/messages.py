"""SQL for messages: rows, pages (D-page), threads and search (D-thr), pins, and hydration.

`hydrate` turns a page of rows into what the client reads (author, attachments, reaction
summaries for the viewer, thread statistics) with one query per part for the whole page,
never one per message (G-36). Sync functions; they run on a Database thread.
"""

from __future__ import annotations

import dataclasses
import sqlite3
from collections.abc import Sequence
from typing import Any

import orjson

from accord.models.messages import Message, MessageView, ThreadStats
from accord.storage import attachments as attachment_store
from accord.storage import reactions as reaction_store
from accord.storage.file_refs import StoredFile
from accord.storage.users import get_users

MESSAGE_COLUMNS = (
    "id, channel_id, space_id, author_id, content, created_at, edited_at, type, tts, pinned,"
    " mention_everyone, mentions, mention_roles, embeds, reply_to, thread_id, flags, webhook_id,"
    " nonce"
)


def _ids(raw: str) -> tuple[int, ...]:
    if raw == "[]":  # the common case, without a JSON parse (history pages are hot)
        return ()
    value = orjson.loads(raw)
    return tuple(int(v) for v in value) if isinstance(value, list) else ()


def message_from_row(row: sqlite3.Row | tuple[Any, ...]) -> Message:
    embeds = () if row[13] == "[]" else orjson.loads(row[13])
    return Message(
        id=row[0],
        channel_id=row[1],
        space_id=row[2],
        author_id=row[3],
        content=row[4],
        created_at=row[5],
        edited_at=row[6],
        type=row[7],
        tts=bool(row[8]),
        pinned=bool(row[9]),
        mention_everyone=bool(row[10]),
        mentions=_ids(row[11]),
        mention_roles=_ids(row[12]),
        embeds=tuple(embeds) if isinstance(embeds, list | tuple) else (),
        reply_to=row[14],
        thread_id=row[15],
        flags=row[16],
        webhook_id=row[17],
        nonce=row[18],
    )


def _json_ids(ids: Sequence[int]) -> str:
    return orjson.dumps([str(i) for i in ids]).decode()


def insert_message(conn: sqlite3.Connection, message: Message) -> None:
    conn.execute(
        f"INSERT INTO messages ({MESSAGE_COLUMNS}, updated_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            message.id,
            message.channel_id,
            message.space_id,
            message.author_id,
            message.content,
            message.created_at,
            message.edited_at,
            message.type,
            message.tts,
            message.pinned,
            message.mention_everyone,
            _json_ids(message.mentions),
            _json_ids(message.mention_roles),
            orjson.dumps(list(message.embeds)).decode(),
            message.reply_to,
            message.thread_id,
            message.flags,
            message.webhook_id,
            message.nonce,
            message.created_at,
        ),
    )
    if message.thread_id is None:
        conn.execute(
            "UPDATE channels SET last_message_id = ? WHERE id = ?",
            (message.id, message.channel_id),
        )


def update_message(conn: sqlite3.Connection, message: Message) -> None:
    """Write an edited message's content, embeds, mentions and edited_at."""
    conn.execute(
        "UPDATE messages SET content = ?, embeds = ?, mentions = ?, mention_roles = ?,"
        " mention_everyone = ?, edited_at = ?, updated_at = ? WHERE id = ?",
        (
            message.content,
            orjson.dumps(list(message.embeds)).decode(),
            _json_ids(message.mentions),
            _json_ids(message.mention_roles),
            message.mention_everyone,
            message.edited_at,
            message.edited_at,
            message.id,
        ),
    )


def get_message(conn: sqlite3.Connection, message_id: int) -> Message | None:
    row = conn.execute(
        f"SELECT {MESSAGE_COLUMNS} FROM messages WHERE id = ?", (message_id,)
    ).fetchone()
    return message_from_row(row) if row else None


def get_channel_message(
    conn: sqlite3.Connection, channel_id: int, message_id: int
) -> Message | None:
    """A message only if it belongs to `channel_id` (G-04)."""
    row = conn.execute(
        f"SELECT {MESSAGE_COLUMNS} FROM messages WHERE id = ? AND channel_id = ?",
        (message_id, channel_id),
    ).fetchone()
    return message_from_row(row) if row else None


def message_exists_in(conn: sqlite3.Connection, channel_id: int, message_id: int) -> bool:
    row = conn.execute(
        "SELECT 1 FROM messages WHERE id = ? AND channel_id = ?", (message_id, channel_id)
    ).fetchone()
    return row is not None


def _select(conn: sqlite3.Connection, where: str, params: tuple[Any, ...]) -> list[Message]:
    rows = conn.execute(f"SELECT {MESSAGE_COLUMNS} FROM messages WHERE {where}", params)
    return [message_from_row(row) for row in rows]


def list_page(
    conn: sqlite3.Connection,
    channel_id: int,
    *,
    limit: int,
    before: int | None = None,
    after: int | None = None,
    around: int | None = None,
    thread_id: int | None = None,
) -> tuple[list[Message], bool]:
    """One page of a channel (or of one thread) per D-page; returns (messages, has_more).

    Precedence around > before > after. No cursor and `before` are newest first; `after` is
    oldest first; `around` takes up to limit/2 newer messages and the rest at or below the
    pivot, newest first. Thread replies appear only when `thread_id` is given (D-thr).
    """
    scope_params: tuple[int, ...]
    if thread_id is None:
        scope, scope_params = "channel_id = ? AND thread_id IS NULL", (channel_id,)
    else:
        scope, scope_params = "channel_id = ? AND thread_id = ?", (channel_id, thread_id)
    if around is not None:
        newer_n = limit // 2
        older_n = limit - newer_n
        newer = _select(
            conn,
            f"{scope} AND id > ? ORDER BY id ASC LIMIT ?",
            (*scope_params, around, newer_n + 1),
        )
        older = _select(
            conn,
            f"{scope} AND id <= ? ORDER BY id DESC LIMIT ?",
            (*scope_params, around, older_n + 1),
        )
        has_more = len(newer) > newer_n or len(older) > older_n
        newer = newer[:newer_n]
        return list(reversed(newer)) + older[:older_n], has_more
    if before is not None:
        rows = _select(
            conn, f"{scope} AND id < ? ORDER BY id DESC LIMIT ?", (*scope_params, before, limit + 1)
        )
    elif after is not None:
        rows = _select(
            conn, f"{scope} AND id > ? ORDER BY id ASC LIMIT ?", (*scope_params, after, limit + 1)
        )
    else:
        rows = _select(conn, f"{scope} ORDER BY id DESC LIMIT ?", (*scope_params, limit + 1))
    return rows[:limit], len(rows) > limit


@dataclasses.dataclass(frozen=True, slots=True)
class DeletedMessages:
    """What a delete removed: message ids (those asked for that existed, plus the thread
    replies that went with their parents), ascending, and the files their attachments named
    (release them once the transaction has committed; others may still share them)."""

    ids: list[int]
    files: list[StoredFile]


_DELETE_CHUNK = 400  # ids per statement, well under SQLite's bound-parameter limit


def delete_message(conn: sqlite3.Connection, message: Message) -> DeletedMessages:
    """Delete one message (reactions, attachments, pins and thread replies cascade)."""
    return delete_messages(conn, message.channel_id, [message.id])


def delete_messages(
    conn: sqlite3.Connection, channel_id: int, ids: Sequence[int]
) -> DeletedMessages:
    """Delete messages of one channel (ids of other channels are ignored); reactions,
    attachments, pins and the replies of deleted thread parents cascade. Refreshes the
    channel's last_message_id (G-23)."""
    deleted: set[int] = set()
    keys: set[str] = set()
    unique = list(dict.fromkeys(ids))
    for start in range(0, len(unique), _DELETE_CHUNK):
        chunk = unique[start : start + _DELETE_CHUNK]
        marks = ",".join("?" * len(chunk))
        direct = [
            row[0]
            for row in conn.execute(
                f"SELECT id FROM messages WHERE channel_id = ? AND id IN ({marks})",
                (channel_id, *chunk),
            )
        ]
        if not direct:
            continue
        marks = ",".join("?" * len(direct))
        deleted.update(direct)
        deleted.update(
            row[0]
            for row in conn.execute(
                f"SELECT id FROM messages WHERE thread_id IN ({marks})", tuple(direct)
            )
        )
        keys.update(
            row[0]
            for row in conn.execute(
                "SELECT a.storage_key FROM messages m JOIN attachments a ON a.message_id = m.id"
                f" WHERE m.id IN ({marks}) OR m.thread_id IN ({marks})",
                (*direct, *direct),
            )
        )
        conn.execute(f"DELETE FROM messages WHERE id IN ({marks})", tuple(direct))
    if deleted:
        refresh_last_message_id(conn, channel_id)
    return DeletedMessages(sorted(deleted), [("attachments", key) for key in sorted(keys)])


def existing_ids(conn: sqlite3.Connection, ids: Sequence[int]) -> dict[int, int]:
    """message id -> channel id for those of `ids` that exist."""
    if not ids:
        return {}
    marks = ",".join("?" * len(ids))
    rows = conn.execute(f"SELECT id, channel_id FROM messages WHERE id IN ({marks})", tuple(ids))
    return {row[0]: row[1] for row in rows}


def refresh_last_message_id(conn: sqlite3.Connection, channel_id: int) -> None:
    """G-23: last_message_id never dangles after a delete."""
    conn.execute(
        "UPDATE channels SET last_message_id = (SELECT MAX(id) FROM messages"
        " WHERE channel_id = ?1 AND thread_id IS NULL) WHERE id = ?1",
        (channel_id,),
    )


# -- pins --------------------------------------------------------------------------------------


def count_pins(conn: sqlite3.Connection, channel_id: int) -> int:
    row = conn.execute(
        "SELECT COUNT(*) FROM pinned_messages WHERE channel_id = ?", (channel_id,)
    ).fetchone()
    return int(row[0])


def pin_message(conn: sqlite3.Connection, channel_id: int, message_id: int, now: str) -> bool:
    """Record a pin; False when it was already pinned."""
    cursor = conn.execute(
        "INSERT OR IGNORE INTO pinned_messages (channel_id, message_id, pinned_at)"
        " VALUES (?, ?, ?)",
        (channel_id, message_id, now),
    )
    conn.execute("UPDATE messages SET pinned = 1 WHERE id = ?", (message_id,))
    return cursor.rowcount > 0


def unpin_message(conn: sqlite3.Connection, channel_id: int, message_id: int) -> bool:
    cursor = conn.execute(
        "DELETE FROM pinned_messages WHERE channel_id = ? AND message_id = ?",
        (channel_id, message_id),
    )
    conn.execute(
        "UPDATE messages SET pinned = 0 WHERE id = ? AND channel_id = ?", (message_id, channel_id)
    )
    return cursor.rowcount > 0


def last_pin_timestamp(conn: sqlite3.Connection, channel_id: int) -> str | None:
    row = conn.execute(
        "SELECT MAX(pinned_at) FROM pinned_messages WHERE channel_id = ?", (channel_id,)
    ).fetchone()
    return row[0] if row else None


def list_pins(conn: sqlite3.Connection, channel_id: int) -> list[Message]:
    """Pinned messages of a channel, most recently pinned first."""
    rows = conn.execute(
        f"SELECT {', '.join('m.' + c.strip() for c in MESSAGE_COLUMNS.split(','))}"
        " FROM pinned_messages p JOIN messages m ON m.id = p.message_id"
        " WHERE p.channel_id = ? ORDER BY p.pinned_at DESC, p.rowid DESC",
        (channel_id,),
    )
    return [message_from_row(row) for row in rows]


# -- threads and search (D-thr) --------------------------------------------------------------


def thread_stats(conn: sqlite3.Connection, parent_ids: Sequence[int]) -> dict[int, ThreadStats]:
    if not parent_ids:
        return {}
    marks = ",".join("?" * len(parent_ids))
    found: dict[int, ThreadStats] = {}
    rows = conn.execute(
        "SELECT thread_id, COUNT(*), MAX(created_at), group_concat(DISTINCT author_id)"
        f" FROM messages WHERE thread_id IN ({marks}) GROUP BY thread_id",
        tuple(parent_ids),
    )
    for row in rows:
        participants = tuple(int(p) for p in str(row[3]).split(",") if p)
        found[row[0]] = ThreadStats(row[1], row[2], participants)
    return found


def list_thread_parents(conn: sqlite3.Connection, channel_id: int, limit: int) -> list[Message]:
    """Messages of a channel that have thread replies, most recent reply first."""
    rows = conn.execute(
        "SELECT thread_id FROM messages WHERE channel_id = ? AND thread_id IS NOT NULL"
        " GROUP BY thread_id ORDER BY MAX(id) DESC LIMIT ?",
        (channel_id, limit),
    ).fetchall()
    ids = [row[0] for row in rows]
    if not ids:
        return []
    marks = ",".join("?" * len(ids))
    by_id = {m.id: m for m in _select(conn, f"id IN ({marks})", tuple(ids))}
    return [by_id[i] for i in ids if i in by_id]


def _like_pattern(query: str) -> str:
    escaped = query.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def search(
    conn: sqlite3.Connection,
    space_id: int,
    channel_ids: Sequence[int],
    query: str,
    *,
    limit: int,
    offset: int,
) -> list[Message]:
    """Content substring (wildcards escaped, G-28) over the given channels, newest first."""
    if not channel_ids:
        return []
    marks = ",".join("?" * len(channel_ids))
    return _select(
        conn,
        f"space_id = ? AND channel_id IN ({marks}) AND content LIKE ? ESCAPE '\\'"
        " ORDER BY id DESC LIMIT ? OFFSET ?",
        (space_id, *channel_ids, _like_pattern(query), limit, offset),
    )


# -- hydration -------------------------------------------------------------------------------


def hydrate(
    conn: sqlite3.Connection, messages: Sequence[Message], viewer_id: int | None
) -> list[MessageView]:
    """Messages with author, attachments, reaction summaries and thread stats, batched."""
    if not messages:
        return []
    ids = [m.id for m in messages]
    users = get_users(conn, list({m.author_id for m in messages}))
    attachments = attachment_store.list_for_messages(conn, ids)
    reactions = reaction_store.summaries(conn, ids, viewer_id)
    threads = thread_stats(conn, [m.id for m in messages if m.thread_id is None])
    authors = {user_id: user.to_wire(viewer_id=0) for user_id, user in users.items()}
    views = []
    for m in messages:
        views.append(
            MessageView(
                message=m,
                author=authors.get(m.author_id),
                attachments=tuple(attachments.get(m.id, ())),
                reactions=tuple(reactions.get(m.id, ())),
                thread=threads.get(m.id, ThreadStats()),
            )
        )
    return views


def existing_user_ids(conn: sqlite3.Connection, ids: Sequence[int]) -> tuple[int, ...]:
    if not ids:
        return ()
    marks = ",".join("?" * len(ids))
    found = {row[0] for row in conn.execute(f"SELECT id FROM users WHERE id IN ({marks})", ids)}
    return tuple(i for i in ids if i in found)


def space_role_ids(conn: sqlite3.Connection, space_id: int, ids: Sequence[int]) -> tuple[int, ...]:
    """Those of `ids` that are roles of the space (not @everyone)."""
    if not ids:
        return ()
    marks = ",".join("?" * len(ids))
    found = {
        row[0]
        for row in conn.execute(
            f"SELECT id FROM roles WHERE space_id = ? AND id != space_id AND id IN ({marks})",
            (space_id, *ids),
        )
    }
    return tuple(i for i in ids if i in found)
