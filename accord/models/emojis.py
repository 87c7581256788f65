"""The Emoji resource (API.md 2.12, CLIENT.md 5 Emoji, D17b, D21) and its name rule."""

from __future__ import annotations

import dataclasses
import re
from typing import Any

from accord.errors import ValidationError

EMOJI_NAME = re.compile(r"^[A-Za-z0-9_]{2,32}$")  # D21
EMOJIS_PER_SPACE_MAX = 200  # D23
EMOJI_IMAGE_MAX_BYTES = 256 * 1024  # G-29
EMOJI_IMAGE_MAX_DIMENSION = 128  # G-29


def validate_emoji_name(raw: str) -> str:
    name = raw.strip()
    if not EMOJI_NAME.match(name):
        raise ValidationError(
            "must be 2-32 characters of letters, digits and underscores", field="name"
        )
    return name


@dataclasses.dataclass(frozen=True, slots=True)
class Emoji:
    id: int
    space_id: int
    name: str
    created_at: str
    animated: bool = False
    managed: bool = False
    available: bool = True
    require_colons: bool = True
    creator_id: int | None = None
    image_key: str | None = None
    role_ids: tuple[int, ...] = ()

    @property
    def extension(self) -> str:
        return "gif" if self.animated else "png"

    def to_wire(self, public_url: str | None = None) -> dict[str, Any]:
        """D17b: `image_url` only when an absolute URL can be given (never null)."""
        roles = [str(r) for r in self.role_ids]
        wire: dict[str, Any] = {
            "id": str(self.id),
            "name": self.name,
            "animated": self.animated,
            "managed": self.managed,
            "available": self.available,
            "require_colons": self.require_colons,
            "role_ids": roles,
            "roles": roles,
            "creator_id": None if self.creator_id is None else str(self.creator_id),
        }
        if public_url:
            wire["image_url"] = f"{public_url}/cdn/emojis/{self.id}.{self.extension}"
        return wire
