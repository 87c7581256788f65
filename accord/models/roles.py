"""The Role resource (API.md 2.9; D-ev adds space_id in events)."""

from __future__ import annotations

import dataclasses
from typing import Any


@dataclasses.dataclass(frozen=True, slots=True)
class Role:
    id: int
    space_id: int
    name: str
    position: int
    permissions: tuple[str, ...]
    color: int = 0
    hoist: bool = False
    icon: str | None = None
    managed: bool = False
    mentionable: bool = False

    @property
    def is_everyone(self) -> bool:
        return self.id == self.space_id

    def to_wire(self, **extra: Any) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "name": self.name,
            "color": self.color,
            "hoist": self.hoist,
            "icon": self.icon,
            "position": self.position,
            "permissions": list(self.permissions),
            "managed": self.managed,
            "mentionable": self.mentionable,
            **extra,
        }
