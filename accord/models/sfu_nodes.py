"""The SFU node record (VOICE.md 7.1) as the registry, allocation and the wire see it."""

from __future__ import annotations

import dataclasses
from typing import Any


@dataclasses.dataclass(frozen=True, slots=True)
class SfuNode:
    id: str
    endpoint: str
    region: str
    capacity: int
    current_load: int
    status: str  # "online" or "offline"
    control_url: str  # where main reaches the node's HTTP routes (D15b)

    def to_wire(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "endpoint": self.endpoint,
            "region": self.region,
            "capacity": self.capacity,
            "current_load": self.current_load,
            "status": self.status,
        }

    @property
    def has_room(self) -> bool:
        return self.status == "online" and self.current_load < self.capacity
