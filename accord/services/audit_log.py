"""A space's audit log (CLIENT.md 4.15): the `audit` helper every moderation and admin action
records through inside its own transaction, reading the log with `view_audit_log`, and the
`audit_log.create` event published once an action has committed."""

from __future__ import annotations

import sqlite3
from typing import Any

from accord.auth.principal import Principal
from accord.errors import ValidationError
from accord.events.types import Event
from accord.models.audit_log import ACTION_TYPES, AuditLogEntry
from accord.services.context import Context, Service
from accord.services.permissions import space_access
from accord.storage import audit_log as audit_store

DEFAULT_LIMIT = 50
MAX_LIMIT = 100


def audit(
    conn: sqlite3.Connection,
    ctx: Context,
    principal: Principal,
    space_id: int,
    action: str,
    *,
    target_id: int | str | None,
    target_type: str | None,
    reason: str | None,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> AuditLogEntry:
    """Record one entry for `principal`'s action inside the action's own transaction; the
    caller publishes it with `AuditLogService.published` once the transaction commits."""
    return audit_store.record(
        conn,
        new_id=ctx.new_id,
        space_id=space_id,
        user_id=principal.user_id,
        action_type=action,
        target_id=target_id,
        target_type=target_type,
        reason=reason,
        before=before,
        after=after,
    )


class AuditLogService(Service):
    async def list(
        self,
        principal: Principal,
        space_id: int,
        *,
        limit: int | None,
        before: int | None,
        user_id: int | None,
        action_type: str | None,
    ) -> list[AuditLogEntry]:
        if action_type is not None and action_type not in ACTION_TYPES:
            raise ValidationError("unknown action type", field="action_type")
        clamped = max(1, min(MAX_LIMIT, DEFAULT_LIMIT if limit is None else limit))

        def read(conn: sqlite3.Connection) -> list[AuditLogEntry]:
            space_access(conn, space_id, principal).require("view_audit_log")
            return audit_store.list_entries(
                conn,
                space_id,
                limit=clamped,
                before=before,
                user_id=user_id,
                action_type=action_type,
            )

        return await self.db.read(read)

    def published(self, *entries: AuditLogEntry | None) -> None:
        """Publish `audit_log.create` for entries whose action has committed ([H] clients)."""
        for entry in entries:
            if entry is None:
                continue
            self.ctx.publish(
                Event(
                    type="audit_log.create",
                    data=entry.to_wire(),
                    space_id=entry.space_id,
                    required_permission="view_audit_log",
                )
            )
