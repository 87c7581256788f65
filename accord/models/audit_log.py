"""Audit log entries (CLIENT.md 4.15): who did what to which target, with before/after."""

from __future__ import annotations

import dataclasses
from typing import Any

# Action types recorded (string enumeration, CLIENT.md 5: enumerations are strings).
ACTION_TYPES = frozenset(
    {
        "space_update",
        "channel_create",
        "channel_update",
        "channel_delete",
        "channel_overwrite_create",
        "channel_overwrite_update",
        "channel_overwrite_delete",
        "member_kick",
        "member_ban_add",
        "member_ban_remove",
        "member_update",
        "member_role_update",
        "member_timeout",
        "role_create",
        "role_update",
        "role_delete",
        "invite_create",
        "invite_update",
        "invite_delete",
        "emoji_create",
        "emoji_update",
        "emoji_delete",
        "soundboard_sound_create",
        "soundboard_sound_update",
        "soundboard_sound_delete",
        "message_delete",
        "message_bulk_delete",
        "owner_transfer",
    }
)


@dataclasses.dataclass(frozen=True, slots=True)
class AuditLogEntry:
    id: int
    space_id: int
    user_id: int | None
    action_type: str
    target_id: str | None
    target_type: str | None
    reason: str | None
    changes: tuple[dict[str, Any], ...]
    created_at: str

    def to_wire(self) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "space_id": str(self.space_id),
            "user_id": None if self.user_id is None else str(self.user_id),
            "action_type": self.action_type,
            "target_id": self.target_id,
            "target_type": self.target_type,
            "reason": self.reason,
            "changes": list(self.changes),
            "created_at": self.created_at,
        }


def diff_changes(
    before: dict[str, Any] | None, after: dict[str, Any] | None
) -> list[dict[str, Any]]:
    """`[{key, old_value, new_value}]` for every field whose value differs."""
    before = before or {}
    after = after or {}
    changes = []
    for key in sorted(set(before) | set(after)):
        old, new = before.get(key), after.get(key)
        if old != new:
            changes.append({"key": key, "old_value": old, "new_value": new})
    return changes
