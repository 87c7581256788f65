"""The Channel resource and its permission overwrites (API.md 2.3, CLIENT.md 5 Channel)."""

from __future__ import annotations

import dataclasses
from typing import Any

CHANNEL_TYPES = ("text", "voice", "category", "announcement", "forum", "stage")  # D-ctype


@dataclasses.dataclass(frozen=True, slots=True)
class PermissionOverwrite:
    target_id: int
    type: str  # "role" or "member" (D-ow)
    allow: tuple[str, ...]
    deny: tuple[str, ...]

    def to_wire(self) -> dict[str, Any]:
        return {
            "id": str(self.target_id),
            "type": self.type,
            "allow": list(self.allow),
            "deny": list(self.deny),
        }


@dataclasses.dataclass(frozen=True, slots=True)
class Channel:
    id: int
    space_id: int | None
    name: str | None
    type: str
    position: int
    created_at: str
    updated_at: str
    topic: str | None = None
    parent_id: int | None = None
    nsfw: bool = False
    rate_limit: int = 0
    bitrate: int | None = None
    user_limit: int | None = None
    owner_id: int | None = None
    last_message_id: int | None = None
    archived: bool = False
    auto_archive_after: int | None = None
    permission_overwrites: tuple[PermissionOverwrite, ...] = ()

    def to_wire(self, **extra: Any) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "type": self.type,
            "space_id": _sid(self.space_id),
            "name": self.name,
            "topic": self.topic,
            "position": self.position,
            "parent_id": _sid(self.parent_id),
            "nsfw": self.nsfw,
            "rate_limit": self.rate_limit,
            "rate_limit_per_user": self.rate_limit,
            "bitrate": self.bitrate,
            "user_limit": self.user_limit,
            "owner_id": _sid(self.owner_id),
            "last_message_id": _sid(self.last_message_id),
            "permission_overwrites": [o.to_wire() for o in self.permission_overwrites],
            "archived": self.archived,
            "auto_archive_after": self.auto_archive_after,
            "created_at": self.created_at,
            **extra,
        }


def _sid(value: int | None) -> str | None:
    return None if value is None else str(value)
