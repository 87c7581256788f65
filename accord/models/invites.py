"""The Invite resource (API.md 2.11, D-inv, D-inv3)."""

from __future__ import annotations

import dataclasses
from typing import Any


@dataclasses.dataclass(frozen=True, slots=True)
class Invite:
    code: str
    space_id: int
    created_at: str
    channel_id: int | None = None
    inviter_id: int | None = None
    max_uses: int | None = None  # None = unlimited (D-inv)
    uses: int = 0
    max_age: int | None = None  # seconds; None = never expires (D-inv)
    temporary: bool = False
    expires_at: str | None = None

    def is_expired(self, now: str) -> bool:
        return self.expires_at is not None and self.expires_at <= now

    @property
    def is_exhausted(self) -> bool:
        return self.max_uses is not None and self.uses >= self.max_uses

    def to_wire(self, **extra: Any) -> dict[str, Any]:
        """The Invite object; space-level invites omit `channel_id` (D-inv3)."""
        wire: dict[str, Any] = {
            "code": self.code,
            "space_id": str(self.space_id),
            "inviter_id": None if self.inviter_id is None else str(self.inviter_id),
            "max_uses": self.max_uses,
            "uses": self.uses,
            "max_age": self.max_age,
            "temporary": self.temporary,
            "created_at": self.created_at,
            "expires_at": self.expires_at,
            **extra,
        }
        if self.channel_id is not None:
            wire["channel_id"] = str(self.channel_id)
        return wire
