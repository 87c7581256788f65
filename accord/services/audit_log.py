"""Reading a space's audit log (CLIENT.md 4.15), with `view_audit_log`."""

from __future__ import annotations

import sqlite3

from accord.auth.principal import Principal
from accord.errors import ValidationError
from accord.events.types import Event
from accord.models.audit_log import ACTION_TYPES, AuditLogEntry
from accord.services.context import Service
from accord.services.permissions import space_access
from accord.storage import audit_log as audit_store

DEFAULT_LIMIT = 50
MAX_LIMIT = 100


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

    def published(self, *entries: AuditLogEntry) -> None:
        """Publish `audit_log.create` for entries whose action has committed ([H] clients)."""
        for entry in entries:
            self.ctx.publish(
                Event(type="audit_log.create", data=entry.to_wire(), space_id=entry.space_id)
            )
