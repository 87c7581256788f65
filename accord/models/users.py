"""The User resource (API.md 2.1, CLIENT.md 5 User)."""

from __future__ import annotations

import dataclasses
from typing import Any


@dataclasses.dataclass(frozen=True, slots=True)
class User:
    id: int
    username: str
    display_name: str
    created_at: str
    updated_at: str
    avatar: str | None = None
    banner: str | None = None
    accent_color: int | None = None
    bio: str | None = None
    bot: bool = False
    system: bool = False
    is_admin: bool = False
    flags: int = 0
    public_flags: int = 0
    mfa_enabled: bool = False
    deleted: bool = False

    def to_wire(self, *, viewer_id: int | None = None) -> dict[str, Any]:
        """The User object. `is_admin` is shown true only to the user itself (G-09)."""
        is_self = viewer_id is None or viewer_id == self.id
        return {
            "id": str(self.id),
            "username": self.username,
            "display_name": self.display_name,
            "avatar": self.avatar,
            "banner": self.banner,
            "accent_color": self.accent_color,
            "bio": self.bio,
            "bot": self.bot,
            "system": self.system,
            "is_admin": self.is_admin and is_self,
            "flags": self.flags,
            "public_flags": self.public_flags,
            "created_at": self.created_at,
            **({"mfa_enabled": self.mfa_enabled} if is_self else {}),
        }
