"""Presence payloads (GATEWAY.md 8.1-8.2, D-pres, CLIENT.md 5 Presence). Pure.

A user's presence is one status plus activities, shared by all of that user's sessions.
`invisible` (and `offline` asked for by a client) is stored as invisible and published as
`offline`; any other unknown status becomes `online`.
"""

from __future__ import annotations

import dataclasses
from typing import Any

STATUSES = frozenset({"online", "idle", "dnd", "invisible"})
_ACTIVITY_TEXT = ("url", "state", "details")
MAX_ACTIVITIES = 5


class PresenceError(ValueError):
    """A presence payload with wrong types (answered with close 4002)."""


@dataclasses.dataclass(frozen=True, slots=True)
class Presence:
    status: str = "online"
    activities: tuple[dict[str, Any], ...] = ()

    @property
    def published_status(self) -> str:
        return "offline" if self.status == "invisible" else self.status

    def to_wire(self, user_id: int) -> dict[str, Any]:
        status = self.published_status
        offline = status == "offline"
        return {
            "user_id": str(user_id),
            "user": {"id": str(user_id)},
            "status": status,
            "client_status": {} if offline else {"desktop": status},
            "activities": [] if offline else list(self.activities),
            "space_id": None,
        }


OFFLINE = Presence(status="invisible")


def normalize_status(raw: object) -> str:
    """D-pres: online, idle, dnd, invisible; offline means invisible; anything else online."""
    if raw == "offline":
        return "invisible"
    return raw if isinstance(raw, str) and raw in STATUSES else "online"


def normalize_activity(raw: object) -> dict[str, Any]:
    """One Activity object with the fields CLIENT.md 5 reads. Raises PresenceError."""
    if not isinstance(raw, dict):
        raise PresenceError("activity must be an object")
    name = raw.get("name")
    if not isinstance(name, str):
        raise PresenceError("activity.name must be a string")
    kind = raw.get("type", "playing")
    if isinstance(kind, int) and not isinstance(kind, bool):
        kind = str(kind)
    if not isinstance(kind, str):
        raise PresenceError("activity.type must be a string")
    activity: dict[str, Any] = {"name": name[:128], "type": kind[:32]}
    for key in _ACTIVITY_TEXT:
        value = raw.get(key)
        if value is not None and not isinstance(value, str):
            raise PresenceError(f"activity.{key} must be a string or null")
        activity[key] = value
    for key in ("timestamps", "assets"):
        value = raw.get(key)
        if value is not None and not isinstance(value, dict):
            raise PresenceError(f"activity.{key} must be an object or null")
        activity[key] = value
    return activity


def parse_presence(data: object, *, fallback: Presence | None = None) -> Presence:
    """An op 8 payload or IDENTIFY `presence`: `status` plus `activity` or `activities`.

    Values the payload leaves out fall back to `fallback` (the user's current presence).
    """
    if not isinstance(data, dict):
        raise PresenceError("presence must be an object")
    base = fallback or Presence()
    status = normalize_status(data["status"]) if "status" in data else base.status
    activities = base.activities
    if "activities" in data:
        raw = data["activities"]
        if raw is None:
            activities = ()
        elif isinstance(raw, list):
            activities = tuple(normalize_activity(a) for a in raw[:MAX_ACTIVITIES])
        else:
            raise PresenceError("activities must be an array")
    elif "activity" in data:
        raw = data["activity"]
        activities = () if raw is None else (normalize_activity(raw),)
    return Presence(status=status, activities=activities)
