"""The Member resource (API.md 2.8, CLIENT.md 5 Member): flat ids plus an embedded user."""

from __future__ import annotations

import dataclasses
from typing import Any


@dataclasses.dataclass(frozen=True, slots=True)
class Member:
    space_id: int
    user_id: int
    joined_at: str
    roles: tuple[int, ...] = ()
    nickname: str | None = None
    avatar: str | None = None
    premium_since: str | None = None
    deaf: bool = False
    mute: bool = False
    pending: bool = False
    timed_out_until: str | None = None

    def to_wire(self, user: dict[str, Any] | None = None) -> dict[str, Any]:
        wire: dict[str, Any] = {
            "user_id": str(self.user_id),
            "space_id": str(self.space_id),
            "nickname": self.nickname,
            "nick": self.nickname,
            "avatar": self.avatar,
            "roles": [str(r) for r in self.roles],
            "joined_at": self.joined_at,
            "premium_since": self.premium_since,
            "deaf": self.deaf,
            "mute": self.mute,
            "pending": self.pending,
            "timed_out_until": self.timed_out_until,
            "communication_disabled_until": self.timed_out_until,
            "permissions": None,
        }
        if user is not None:
            wire["user"] = user
        return wire
