"""Errors a client may see, with stable codes; no HTTP or WebSocket knowledge lives here.

    AccordError                 code + safe message (+ optional details)
    ├── ValidationError         400 invalid_request: a value broke a rule (field named)
    ├── ShapeError              422 invalid_request: the body has the wrong shape or types
    ├── UnauthorizedError       401 unauthorized
    ├── ForbiddenError          403 forbidden (MissingPermissionsError names the permission)
    ├── NotFoundError           404 not_found
    ├── ConflictError           409 already_exists
    ├── PayloadTooLargeError    413 payload_too_large
    ├── UnsupportedMediaError   415 unsupported_media_type
    ├── RateLimitedError        429 rate_limited (carries retry_after_s)
    └── UnavailableError        503 service_unavailable (a backend such as LiveKit is down)

`http/errors.py` maps each class to a status; `gateway/close_codes.py` does the same for sockets.
"""

from __future__ import annotations

from typing import Any


class AccordError(Exception):
    """An error a client may see: a stable code plus a message safe to show."""

    code: str = "internal_error"

    def __init__(self, message: str, *, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class ValidationError(AccordError):
    """A value broke a rule; the message starts with the field name (D6a)."""

    code = "invalid_request"

    def __init__(self, message: str, *, field: str | None = None) -> None:
        text = f"{field}: {message}" if field else message
        super().__init__(text, details={"field": field} if field else None)
        self.field = field


class ShapeError(ValidationError):
    """The body parsed but has the wrong shape: a missing field or a wrong type (422)."""


class UnauthorizedError(AccordError):
    code = "unauthorized"


class ForbiddenError(AccordError):
    code = "forbidden"


class MissingPermissionsError(ForbiddenError):
    def __init__(self, permission: str) -> None:
        super().__init__(f"missing permission: {permission}")
        self.permission = permission


class NotFoundError(AccordError):
    code = "not_found"


class ConflictError(AccordError):
    code = "already_exists"


class PayloadTooLargeError(AccordError):
    code = "payload_too_large"


class UnsupportedMediaError(AccordError):
    code = "unsupported_media_type"


class RateLimitedError(AccordError):
    code = "rate_limited"

    def __init__(self, retry_after_s: float, message: str | None = None) -> None:
        import math

        self.retry_after_s = max(1, math.ceil(retry_after_s))
        super().__init__(
            message or f"rate limited, retry after {self.retry_after_s}s",
            details={"retry_after": self.retry_after_s},
        )


class UnavailableError(AccordError):
    code = "service_unavailable"


class MalformedPacketError(ValueError):
    """Media parsers raise this for bytes that are not a valid packet; never reaches a client."""
