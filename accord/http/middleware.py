"""Request pipeline around every route: CORS, request ids, caller resolution, rate limits,
and one access-log line per request (OPERATIONS.md 4, 6, 7; D9, D9a, D19, D26).

Order: CORS preflights are answered first (never authenticated, limited or logged). Then the
Authorization header is resolved once; `/api/v1` requests that match a route (or match a path
with the wrong method) take a token from the caller's bucket: the user for a valid token, the
client IP otherwise, a separate bucket for SFU nodes. Register and login also take from a
per-IP bucket (not in test mode).
"""

from __future__ import annotations

import itertools
import logging
import math
import re
import time

from quart import Quart, Response, g, request
from werkzeug.exceptions import MethodNotAllowed

from accord.auth.principal import NodePrincipal, Principal
from accord.errors import RateLimitedError
from accord.http.context import client_ip, get_ctx
from accord.http.errors import render_accord_error
from accord.ratelimit import Decision, RateLimiter
from accord.services.auth import AuthService

access_log = logging.getLogger("accord.http.access")

_API_PREFIX = "/api/v1/"
_AUTH_PATHS = frozenset({"/api/v1/auth/register", "/api/v1/auth/login", "/api/v1/auth/login/mfa"})
# Password checks by a signed-in user are limited per IP like logins, even in test mode (and
# so is DELETE /users/@me, which checks the password too).
_PASSWORD_PATHS = frozenset(
    {
        "/api/v1/auth/password",
        "/api/v1/auth/change-password",
        "/api/v1/auth/2fa/disable",
        "/api/v1/auth/2fa/backup-codes",
    }
)
# Path segments that carry secrets are never logged (OPERATIONS.md 5).
_REDACT = (
    (re.compile(r"(/interactions/[^/]+/)[^/]+"), r"\1[redacted]"),
    (re.compile(r"(/webhooks/[^/]+/)[^/]+"), r"\1[redacted]"),
    (re.compile(r"(/invites/)[^/]+"), r"\1[redacted]"),
)


def redact_path(path: str) -> str:
    for pattern, replacement in _REDACT:
        path = pattern.sub(replacement, path)
    return path


class RateLimits:
    """The limiters of one app: user/IP buckets, SFU node buckets, auth-per-IP buckets."""

    def __init__(self, api: RateLimiter, auth_ip: RateLimiter, node: RateLimiter) -> None:
        self.api = api
        self.auth_ip = auth_ip
        self.node = node


def install_middleware(app: Quart, limits: RateLimits) -> None:
    counter = itertools.count(1)
    ctx_settings = app.config["ACCORD_CONTEXT"].settings
    origins = ctx_settings.cors_origins
    test_mode = ctx_settings.test_mode

    def allow_origin(origin: str | None) -> str | None:
        if "*" in origins:
            return "*"
        return origin if origin in origins else None

    @app.before_request
    async def _before() -> Response | None:
        g.started = time.perf_counter()
        g.request_id = f"{next(counter):x}"
        if (
            request.method == "OPTIONS"
            and "Origin" in request.headers
            and "Access-Control-Request-Method" in request.headers
        ):
            g.preflight = True
            response = Response("", status=200)
            allowed = allow_origin(request.headers.get("Origin"))
            if allowed:
                response.headers["Access-Control-Allow-Origin"] = allowed
                response.headers["Access-Control-Allow-Methods"] = "*"
                response.headers["Access-Control-Allow-Headers"] = "*"
            response.headers["Vary"] = (
                "origin, access-control-request-method, access-control-request-headers"
            )
            return response
        auth = get_ctx().get(AuthService)
        g.principal = await auth.authenticate(request.headers.get("Authorization"))
        if not request.path.startswith(_API_PREFIX):
            return None
        routing_error = request.routing_exception
        if routing_error is not None and not isinstance(routing_error, MethodNotAllowed):
            return None  # unknown paths are not rate limited (OPERATIONS.md 4)
        return _take_tokens(limits, test_mode)

    @app.after_request
    async def _after(response: Response) -> Response:
        if g.get("preflight"):
            return response
        allowed = allow_origin(request.headers.get("Origin"))
        if allowed:
            response.headers["Access-Control-Allow-Origin"] = allowed
            response.headers["Access-Control-Expose-Headers"] = "*"
            response.headers["Vary"] = "origin"
        decision: Decision | None = g.get("rate_decision")
        if decision is not None:
            _rate_headers(response, decision)
        started = g.get("started")
        duration_ms = (time.perf_counter() - started) * 1000 if started else 0.0
        if access_log.isEnabledFor(logging.INFO):
            principal = g.get("principal")
            who = principal.user_id if isinstance(principal, Principal) else "-"
            access_log.info(
                "%s %s %d %.1fms req=%s user=%s",
                request.method,
                redact_path(request.path),
                response.status_code,
                duration_ms,
                g.get("request_id", "-"),
                who,
            )
        return response


def _take_tokens(limits: RateLimits, test_mode: bool) -> Response | None:
    now = time.monotonic()
    principal = g.get("principal")
    is_auth_path = request.path in _AUTH_PATHS
    if is_auth_path and test_mode:
        return None  # D9: register/login are exempt in test mode
    if isinstance(principal, NodePrincipal):
        decision = limits.node.take("node", now)  # D26: nodes never use a user's bucket
    elif isinstance(principal, Principal):
        decision = limits.api.take(f"user:{principal.user_id}", now)
    else:
        decision = limits.api.take(f"ip:{client_ip()}", now)
    g.rate_decision = decision
    checks_password = request.path in _PASSWORD_PATHS or (
        request.method == "DELETE" and request.path == "/api/v1/users/@me"
    )
    if decision.allowed and (is_auth_path or checks_password):
        auth_decision = limits.auth_ip.take(f"ip:{client_ip()}", now)
        if not auth_decision.allowed:
            decision = auth_decision
            g.rate_decision = auth_decision
    if decision.allowed:
        return None
    response = render_accord_error(RateLimitedError(decision.retry_after_s))
    return response


def _rate_headers(response: Response, decision: Decision) -> None:
    response.headers["X-RateLimit-Limit"] = str(decision.limit)
    response.headers["X-RateLimit-Remaining"] = str(decision.remaining)
    response.headers["X-RateLimit-Reset"] = str(math.ceil(time.time() + decision.reset_after_s))
    if not decision.allowed:
        response.headers["Retry-After"] = str(decision.retry_after_s)
