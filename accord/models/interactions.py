"""Interactions (API.md 2.18, CLIENT.md 5 Interaction) and interaction callback types."""

from __future__ import annotations

import dataclasses
from typing import Any

from accord.errors import ShapeError, ValidationError

INTERACTION_TOKEN_TTL_S = 15 * 60

# Callback types, by Discord's numbers and by name.
CALLBACK_TYPES: dict[int | str, str] = {
    1: "pong",
    4: "channel_message",
    5: "deferred_channel_message",
    6: "deferred_update_message",
    7: "update_message",
    "pong": "pong",
    "channel_message": "channel_message",
    "channel_message_with_source": "channel_message",
    "deferred_channel_message": "deferred_channel_message",
    "deferred_channel_message_with_source": "deferred_channel_message",
    "deferred_update_message": "deferred_update_message",
    "update_message": "update_message",
}

INTERACTION_TYPES: dict[int | str, str] = {
    2: "command",
    "command": "command",
    "application_command": "command",
}


def parse_callback_type(raw: object) -> str:
    if isinstance(raw, bool) or not isinstance(raw, int | str):
        raise ShapeError("missing required field", field="type")
    kind = CALLBACK_TYPES.get(raw)
    if kind is None:
        raise ValidationError("unknown interaction callback type", field="type")
    return kind


def parse_interaction_type(raw: object) -> str:
    if raw is None:
        return "command"
    if isinstance(raw, bool) or not isinstance(raw, int | str):
        raise ShapeError("expected a string", field="type")
    kind = INTERACTION_TYPES.get(raw)
    if kind is None:
        raise ValidationError("only command interactions are supported", field="type")
    return kind


@dataclasses.dataclass(frozen=True, slots=True)
class Interaction:
    id: int
    application_id: int
    type: str
    data: dict[str, Any]
    user_id: int
    created_at: str
    space_id: int | None = None
    channel_id: int | None = None
    responded: bool = False
    response_message_id: int | None = None

    def to_wire(
        self, *, token: str | None = None, user: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        wire: dict[str, Any] = {
            "id": str(self.id),
            "application_id": str(self.application_id),
            "type": self.type,
            "data": self.data,
            "space_id": None if self.space_id is None else str(self.space_id),
            "channel_id": None if self.channel_id is None else str(self.channel_id),
            "user_id": str(self.user_id),
            "member_id": str(self.user_id) if self.space_id is not None else None,
            "locale": "en-US",
            "message": None,
        }
        if user is not None:
            wire["user"] = user
        if token is not None:
            wire["token"] = token
        return wire
