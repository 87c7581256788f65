"""The only place that knows HTTP status codes: every error becomes the JSON envelope (D6)."""

from __future__ import annotations

import logging
from http import HTTPStatus

from quart import Quart, Response, g
from werkzeug.exceptions import HTTPException

from accord import errors
from accord.http.responses import error_body, json_response

log = logging.getLogger("accord.http")

HTTP_STATUS: dict[type[errors.AccordError], HTTPStatus] = {
    errors.ShapeError: HTTPStatus.UNPROCESSABLE_ENTITY,
    errors.ValidationError: HTTPStatus.BAD_REQUEST,
    errors.UnauthorizedError: HTTPStatus.UNAUTHORIZED,
    errors.ForbiddenError: HTTPStatus.FORBIDDEN,
    errors.NotFoundError: HTTPStatus.NOT_FOUND,
    errors.ConflictError: HTTPStatus.CONFLICT,
    errors.PayloadTooLargeError: HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
    errors.UnsupportedMediaError: HTTPStatus.UNSUPPORTED_MEDIA_TYPE,
    errors.RateLimitedError: HTTPStatus.TOO_MANY_REQUESTS,
    errors.UnavailableError: HTTPStatus.SERVICE_UNAVAILABLE,
}

# Framework-level rejections (D6a codes).
_FRAMEWORK_CODES: dict[int, tuple[str, str]] = {
    400: ("invalid_request", "bad request"),
    404: ("not_found", "not found"),
    405: ("method_not_allowed", "method not allowed"),
    413: ("payload_too_large", "request body too large"),
    415: ("unsupported_media_type", "unsupported media type"),
    408: ("request_timeout", "request body not received in time"),
}


def status_of(error: errors.AccordError) -> int:
    for cls in type(error).__mro__:
        status = HTTP_STATUS.get(cls)
        if status is not None:
            return int(status)
    return 500


def render_accord_error(error: errors.AccordError) -> Response:
    response = json_response(error_body(error.code, error.message, error.details), status_of(error))
    if isinstance(error, errors.RateLimitedError):
        response.headers["Retry-After"] = str(error.retry_after_s)
    return response


def install_error_handlers(app: Quart) -> None:
    @app.errorhandler(errors.AccordError)
    async def _accord(error: errors.AccordError) -> Response:
        return render_accord_error(error)

    @app.errorhandler(HTTPException)
    async def _framework(error: HTTPException) -> Response:
        status = error.code or 500
        code, message = _FRAMEWORK_CODES.get(status, ("invalid_request", error.name.lower()))
        response = json_response(error_body(code, message), status)
        if status == 405 and error.get_headers():
            for name, value in error.get_headers():
                if name.lower() == "allow":
                    response.headers["Allow"] = value
        return response

    @app.errorhandler(Exception)
    async def _unexpected(error: Exception) -> Response:
        log.error("internal error in request %s", g.get("request_id", "-"), exc_info=error)
        return json_response(error_body("internal_error", "internal server error"), 500)
