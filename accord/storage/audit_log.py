"""SQL for the audit log. `record` runs inside the action's own transaction, so an action that
fails writes no entry and an entry never exists without its action."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from typing import Any

from accord.models.audit_log import ACTION_TYPES, AuditLogEntry, diff_changes
from accord.times import now_ts

_COLUMNS = "id, space_id, user_id, action_type, target_id, target_type, reason, changes, created_at"


def _entry(row: sqlite3.Row) -> AuditLogEntry:
    try:
        changes = json.loads(row["changes"])
    except ValueError:
        changes = []
    return AuditLogEntry(
        id=row["id"],
        space_id=row["space_id"],
        user_id=row["user_id"],
        action_type=row["action_type"],
        target_id=row["target_id"],
        target_type=row["target_type"],
        reason=row["reason"],
        changes=tuple(changes if isinstance(changes, list) else []),
        created_at=row["created_at"],
    )


def record(
    conn: sqlite3.Connection,
    *,
    new_id: Callable[[], int],
    space_id: int,
    user_id: int | None,
    action_type: str,
    target_id: int | str | None,
    target_type: str | None,
    reason: str | None = None,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> AuditLogEntry:
    """Write one entry in the caller's transaction and return it."""
    if action_type not in ACTION_TYPES:
        raise ValueError(f"unknown audit action {action_type!r}")
    entry = AuditLogEntry(
        id=new_id(),
        space_id=space_id,
        user_id=user_id,
        action_type=action_type,
        target_id=None if target_id is None else str(target_id),
        target_type=target_type,
        reason=reason,
        changes=tuple(diff_changes(before, after)),
        created_at=now_ts(),
    )
    conn.execute(
        f"INSERT INTO audit_log ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            entry.id,
            entry.space_id,
            entry.user_id,
            entry.action_type,
            entry.target_id,
            entry.target_type,
            entry.reason,
            json.dumps(list(entry.changes)),
            entry.created_at,
        ),
    )
    return entry


def list_entries(
    conn: sqlite3.Connection,
    space_id: int,
    *,
    limit: int,
    before: int | None = None,
    user_id: int | None = None,
    action_type: str | None = None,
) -> list[AuditLogEntry]:
    """Newest first; filters are optional."""
    sql = f"SELECT {_COLUMNS} FROM audit_log WHERE space_id = ?"
    params: list[Any] = [space_id]
    if before is not None:
        sql += " AND id < ?"
        params.append(before)
    if user_id is not None:
        sql += " AND user_id = ?"
        params.append(user_id)
    if action_type is not None:
        sql += " AND action_type = ?"
        params.append(action_type)
    sql += " ORDER BY id DESC LIMIT ?"
    params.append(limit)
    return [_entry(row) for row in conn.execute(sql, params)]
