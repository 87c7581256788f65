"""Applications (API.md 2.16, G-34) and their application commands (API.md 2.18)."""

from __future__ import annotations

import dataclasses
import re
from typing import Any

from accord.errors import ShapeError, ValidationError

APP_NAME_MAX = 100  # D21b
APP_DESCRIPTION_MAX = 1024  # D21b
COMMANDS_PER_SCOPE_MAX = 100
COMMAND_NAME = re.compile(r"^[-_a-z0-9]{1,32}$")
COMMAND_DESCRIPTION_MAX = 100
COMMAND_OPTIONS_MAX = 25
COMMAND_TYPES = {1: "chat_input", 2: "user", 3: "message"}


@dataclasses.dataclass(frozen=True, slots=True)
class Application:
    id: int
    name: str
    owner_id: int
    created_at: str
    description: str = ""
    icon: str | None = None
    bot_public: bool = True
    flags: int = 0
    bot_user_id: int | None = None

    def to_wire(self) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "name": self.name,
            "icon": self.icon,
            "description": self.description,
            "bot_public": self.bot_public,
            "owner_id": str(self.owner_id),
            "flags": self.flags,
            # Additive (G-34): clients can learn the bot's user id.
            "bot_user_id": None if self.bot_user_id is None else str(self.bot_user_id),
        }


@dataclasses.dataclass(frozen=True, slots=True)
class Command:
    id: int
    application_id: int
    name: str
    description: str
    options: tuple[dict[str, Any], ...]
    type: str
    space_id: int | None = None

    def to_wire(self) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "application_id": str(self.application_id),
            "space_id": None if self.space_id is None else str(self.space_id),
            "name": self.name,
            "description": self.description,
            "options": list(self.options),
            "type": self.type,
        }


@dataclasses.dataclass(frozen=True, slots=True)
class CommandSpec:
    """A validated command definition, before it has an id."""

    name: str
    description: str
    options: tuple[dict[str, Any], ...]
    type: str


def validate_app_name(raw: str) -> str:
    name = raw.strip()
    if not 1 <= len(name) <= APP_NAME_MAX:
        raise ValidationError(f"must be between 1 and {APP_NAME_MAX} characters", field="name")
    return name


def validate_app_description(raw: str) -> str:
    if len(raw) > APP_DESCRIPTION_MAX:
        raise ValidationError(
            f"must be at most {APP_DESCRIPTION_MAX} characters", field="description"
        )
    return raw


def _option(raw: object, path: str, depth: int) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise ShapeError("expected an object", field=path)
    name = raw.get("name")
    if not isinstance(name, str):
        raise ShapeError("missing required field", field=f"{path}.name")
    if not COMMAND_NAME.match(name):
        raise ValidationError(
            "must be 1-32 lowercase letters, digits, - or _", field=f"{path}.name"
        )
    description = raw.get("description", "")
    if not isinstance(description, str):
        raise ShapeError("expected a string", field=f"{path}.description")
    if len(description) > COMMAND_DESCRIPTION_MAX:
        raise ValidationError("must be at most 100 characters", field=f"{path}.description")
    kind = raw.get("type", "string")
    if isinstance(kind, bool) or not isinstance(kind, str | int):
        raise ShapeError("expected a string or an integer", field=f"{path}.type")
    required = raw.get("required")
    if required is not None and not isinstance(required, bool):
        raise ShapeError("expected a boolean", field=f"{path}.required")
    out: dict[str, Any] = {"name": name, "description": description, "type": kind}
    if required is not None:
        out["required"] = required
    choices = raw.get("choices")
    if choices is not None:
        if not isinstance(choices, list) or len(choices) > 25:
            raise ShapeError("expected an array of at most 25 choices", field=f"{path}.choices")
        cleaned = []
        for index, choice in enumerate(choices):
            where = f"{path}.choices[{index}]"
            if not isinstance(choice, dict) or not isinstance(choice.get("name"), str):
                raise ShapeError("expected {name, value}", field=where)
            value = choice.get("value")
            if isinstance(value, bool) or not isinstance(value, str | int | float):
                raise ShapeError("expected a string or number", field=f"{where}.value")
            cleaned.append({"name": choice["name"], "value": value})
        out["choices"] = cleaned
    nested = raw.get("options")
    if nested is not None:
        if depth >= 2:
            raise ValidationError("options nest at most two levels", field=f"{path}.options")
        out["options"] = list(_options(nested, f"{path}.options", depth + 1))
    return out


def _options(raw: object, path: str, depth: int) -> tuple[dict[str, Any], ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise ShapeError("expected an array", field=path)
    if len(raw) > COMMAND_OPTIONS_MAX:
        raise ValidationError(f"at most {COMMAND_OPTIONS_MAX} options are allowed", field=path)
    return tuple(_option(item, f"{path}[{index}]", depth) for index, item in enumerate(raw))


def parse_command(raw: object, path: str = "") -> CommandSpec:
    """Validate a command body (name, description, options, type) for storage."""
    prefix = f"{path}." if path else ""
    if not isinstance(raw, dict):
        raise ShapeError("expected an object", field=path or None)
    name = raw.get("name")
    if not isinstance(name, str):
        raise ShapeError("missing required field", field=f"{prefix}name")
    if not COMMAND_NAME.match(name):
        raise ValidationError(
            "must be 1-32 lowercase letters, digits, - or _", field=f"{prefix}name"
        )
    description = raw.get("description", "")
    if description is None:
        description = ""
    if not isinstance(description, str):
        raise ShapeError("expected a string", field=f"{prefix}description")
    if len(description) > COMMAND_DESCRIPTION_MAX:
        raise ValidationError("must be at most 100 characters", field=f"{prefix}description")
    kind = raw.get("type", "chat_input")
    if isinstance(kind, int) and not isinstance(kind, bool):
        if kind not in COMMAND_TYPES:
            raise ValidationError("unknown command type", field=f"{prefix}type")
        kind = COMMAND_TYPES[kind]
    if not isinstance(kind, str):
        raise ShapeError("expected a string", field=f"{prefix}type")
    if kind not in COMMAND_TYPES.values():
        raise ValidationError("must be chat_input, user or message", field=f"{prefix}type")
    options = _options(raw.get("options"), f"{prefix}options", 0)
    return CommandSpec(name=name, description=description, options=options, type=kind)
