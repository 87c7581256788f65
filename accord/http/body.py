"""Reading JSON request bodies with the contract's errors (API.md 1.3, D6, D6a, D25).

Missing or non-JSON content type: 415. Unparseable JSON: 400. Wrong top-level shape, a missing
required field or a wrong type: 422. The size limit (2 MiB) is enforced by Quart's
MAX_CONTENT_LENGTH and reported as 413. A JSON content type with an empty body is accepted
where the body is optional (D6).
"""

from __future__ import annotations

from typing import Any

import orjson
from quart import request

from accord.errors import ShapeError, UnsupportedMediaError, ValidationError
from accord.ids import parse_id

_MISSING = object()


def _is_json_type(content_type: str | None) -> bool:
    if not content_type:
        return False
    mime = content_type.split(";", 1)[0].strip().lower()
    return mime == "application/json" or (
        mime.startswith("application/") and mime.endswith("+json")
    )


async def read_json(*, required: bool = True) -> Any:
    """The parsed body; `{}` for an empty optional body."""
    data = await request.get_data(cache=True)
    if not data.strip():
        if required:
            if not _is_json_type(request.content_type):
                raise UnsupportedMediaError("expected request with Content-Type: application/json")
            raise ValidationError("request body must be a JSON document")
        return {}
    if not _is_json_type(request.content_type):
        raise UnsupportedMediaError("expected request with Content-Type: application/json")
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise ValidationError(f"failed to parse the request body as JSON: {exc}") from None


async def read_object(*, required: bool = True) -> Body:
    value = await read_json(required=required)
    if not isinstance(value, dict):
        raise ShapeError("request body must be a JSON object")
    return Body(value)


async def read_array(*, required: bool = True) -> list[Any]:
    value = await read_json(required=required)
    if value == {} and not required:
        return []
    if not isinstance(value, list):
        raise ShapeError("request body must be a JSON array")
    return value


class Body:
    """Typed access to a JSON object's fields. Wrong types raise ShapeError (422).

    Absent and null mean "not provided" for `text`, `integer`, ... (API.md 1.3); use
    `provided` and `is_null` where null has a meaning of its own (clearing a field).
    """

    def __init__(self, data: dict[str, Any], prefix: str = "") -> None:
        self.data = data
        self._prefix = prefix

    def _name(self, name: str) -> str:
        return f"{self._prefix}{name}"

    def provided(self, name: str) -> bool:
        return name in self.data

    def is_null(self, name: str) -> bool:
        return name in self.data and self.data[name] is None

    def _get(self, name: str, required: bool) -> Any:
        value = self.data.get(name, _MISSING)
        if value is _MISSING or value is None:
            if required:
                raise ShapeError("missing required field", field=self._name(name))
            return _MISSING
        return value

    def text(self, name: str, *, required: bool = False) -> str | None:
        value = self._get(name, required)
        if value is _MISSING:
            return None
        if not isinstance(value, str):
            raise ShapeError("expected a string", field=self._name(name))
        return value

    def required_text(self, name: str) -> str:
        """A string field that must be present (422 when missing or not a string)."""
        value = self.text(name, required=True)
        assert value is not None
        return value

    def integer(self, name: str, *, required: bool = False) -> int | None:
        value = self._get(name, required)
        if value is _MISSING:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            raise ShapeError("expected an integer", field=self._name(name))
        if not -(2**63) <= value < 2**63:
            raise ValidationError("integer out of range", field=self._name(name))
        return value

    def number(self, name: str, *, required: bool = False) -> float | None:
        value = self._get(name, required)
        if value is _MISSING:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ShapeError("expected a number", field=self._name(name))
        return float(value)

    def boolean(self, name: str, *, required: bool = False) -> bool | None:
        value = self._get(name, required)
        if value is _MISSING:
            return None
        if not isinstance(value, bool):
            raise ShapeError("expected a boolean", field=self._name(name))
        return value

    def strings(self, name: str, *, required: bool = False) -> list[str] | None:
        value = self._get(name, required)
        if value is _MISSING:
            return None
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ShapeError("expected an array of strings", field=self._name(name))
        return value

    def array(self, name: str, *, required: bool = False) -> list[Any] | None:
        value = self._get(name, required)
        if value is _MISSING:
            return None
        if not isinstance(value, list):
            raise ShapeError("expected an array", field=self._name(name))
        return value

    def obj(self, name: str, *, required: bool = False) -> Body | None:
        value = self._get(name, required)
        if value is _MISSING:
            return None
        if not isinstance(value, dict):
            raise ShapeError("expected an object", field=self._name(name))
        return Body(value, prefix=f"{self._name(name)}.")

    def snowflake(self, name: str, *, required: bool = False) -> int | None:
        """An id given as a decimal string (or integer); malformed ids are a 400."""
        value = self._get(name, required)
        if value is _MISSING:
            return None
        if not isinstance(value, str | int) or isinstance(value, bool):
            raise ShapeError("expected an id string", field=self._name(name))
        parsed = parse_id(value)
        if parsed is None:
            raise ValidationError("not a valid id", field=self._name(name))
        return parsed

    def snowflakes(self, name: str, *, required: bool = False) -> list[int] | None:
        values = self.array(name, required=required)
        if values is None:
            return None
        out: list[int] = []
        for value in values:
            if not isinstance(value, str | int) or isinstance(value, bool):
                raise ShapeError("expected an array of id strings", field=self._name(name))
            parsed = parse_id(value)
            if parsed is None:
                raise ValidationError("not a valid id", field=self._name(name))
            out.append(parsed)
        return out
