"""The Ban resource (API.md 2.10)."""

from __future__ import annotations

import dataclasses
from typing import Any


@dataclasses.dataclass(frozen=True, slots=True)
class Ban:
    space_id: int
    user_id: int
    created_at: str
    reason: str | None = None
    banned_by: int | None = None

    def to_wire(self, **extra: Any) -> dict[str, Any]:
        return {
            "user_id": str(self.user_id),
            "space_id": str(self.space_id),
            "reason": self.reason,
            "banned_by": None if self.banned_by is None else str(self.banned_by),
            "created_at": self.created_at,
            **extra,
        }
