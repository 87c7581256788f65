"""The soundboard Sound resource (CLIENT.md 4.12, 5 Sound)."""

from __future__ import annotations

import dataclasses
from typing import Any

AUDIO_EXTENSIONS = {"audio/ogg": "ogg", "audio/mpeg": "mp3", "audio/wav": "wav"}


@dataclasses.dataclass(frozen=True, slots=True)
class Sound:
    id: int
    space_id: int
    name: str
    volume: float
    creator_id: int | None
    audio_key: str
    content_type: str
    created_at: str
    updated_at: str

    @property
    def extension(self) -> str:
        return AUDIO_EXTENSIONS.get(self.content_type, "bin")

    def audio_path(self) -> str:
        """Relative to the CDN base (CLIENT.md 8): `/sounds/{id}.{ext}`."""
        return f"/sounds/{self.id}.{self.extension}"

    def to_wire(self, cdn_base: str | None = None) -> dict[str, Any]:
        path = self.audio_path()
        return {
            "id": str(self.id),
            "space_id": str(self.space_id),
            "name": self.name,
            "audio_url": f"{cdn_base}{path}" if cdn_base else path,
            "volume": self.volume,
            "creator_id": None if self.creator_id is None else str(self.creator_id),
            "created_at": self.created_at,
            "updated_at": self.updated_at,
        }
