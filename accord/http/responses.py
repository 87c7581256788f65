"""Encoding answers: the success envelope (API.md 1.4) and the error envelope (D6, D6a)."""

from __future__ import annotations

from typing import Any

import orjson
from quart import Response

JSON_TYPE = "application/json"


def json_response(body: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(body), status=status, content_type=JSON_TYPE)


def ok(data: Any = None, **extra: Any) -> Response:
    """`{"data": ...}` with status 200 (D5), plus e.g. `cursor`."""
    return json_response({"data": data, **extra})


def error_body(code: str, message: str, details: dict[str, Any] | None = None) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message}
    if details:
        error["details"] = details
    return {"error": error}
