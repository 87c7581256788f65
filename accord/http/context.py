"""Per-request access to the app's Context and the resolved caller."""

from __future__ import annotations

import ipaddress
from collections.abc import Awaitable, Callable
from typing import TypeVar
from urllib.parse import unquote

from quart import current_app, g, request

from accord.auth.principal import NodePrincipal, Principal
from accord.errors import (
    AccordError,
    ForbiddenError,
    NotFoundError,
    UnauthorizedError,
    ValidationError,
)
from accord.ids import parse_id
from accord.services.context import Context

CONTEXT_KEY = "ACCORD_CONTEXT"

T = TypeVar("T")


def get_ctx() -> Context:
    ctx: Context = current_app.config[CONTEXT_KEY]
    return ctx


def optional_principal() -> Principal | None:
    """The authenticated user or bot, or None (invalid tokens count as none, API.md 1.2)."""
    principal = g.get("principal")
    return principal if isinstance(principal, Principal) else None


def require_principal() -> Principal:
    """The authenticated user or bot; 401 otherwise."""
    principal = optional_principal()
    if principal is None:
        raise UnauthorizedError("invalid or missing authentication")
    return principal


def require_node_or_admin() -> Principal | NodePrincipal:
    """An SFU node (D15) or an instance admin; 401/403 otherwise."""
    principal = g.get("principal")
    if isinstance(principal, NodePrincipal):
        return principal
    if not isinstance(principal, Principal):
        raise UnauthorizedError("invalid or missing authentication")
    if not principal.is_admin:
        raise ForbiddenError("server admin privileges required")
    return principal


def path_id(raw: str, not_found_message: str) -> int:
    """A snowflake from a path segment; anything malformed names nothing (D27)."""
    value = parse_id(raw)
    if value is None:
        raise NotFoundError(not_found_message)
    return value


async def parse_after_access(
    parse: Callable[[], T], require_access: Callable[[], Awaitable[object]]
) -> T:
    """Read a request's fields with `parse`. When it rejects them (400/404/422), the route's
    permission check `require_access` runs first: API.md 3 checks permissions before body
    validation, so a caller without the permission sees 403 whatever the body holds."""
    try:
        return parse()
    except AccordError:
        await require_access()
        raise


def message_path_ids(channel_id: str, message_id: str) -> tuple[int, int]:
    """The channel and message ids of a `/channels/{c}/messages/{m}`-style path."""
    return path_id(channel_id, "unknown_channel"), path_id(message_id, "unknown_message")


def client_ip() -> str:
    """The client's address; X-Forwarded-For is believed only from trusted proxies."""
    peer = request.remote_addr or "unknown"
    trusted = get_ctx().settings.trusted_proxies
    if not trusted or not _in(peer, trusted):
        return peer
    forwarded = request.headers.get("X-Forwarded-For", "")
    hops = [hop.strip() for hop in forwarded.split(",") if hop.strip()]
    for hop in reversed(hops):
        if not _in(hop, trusted):
            return hop
    return hops[0] if hops else peer


def _in(address: str, networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in networks)


def query_int(name: str, default: int, minimum: int = 1, maximum: int = 2**31) -> int:
    """An integer query parameter clamped to [minimum, maximum] (D23a); 400 if not an integer."""
    raw = request.args.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw.strip(), 10)
    except ValueError:
        raise ValidationError("must be an integer", field=name) from None
    return max(minimum, min(maximum, value))


def query_id(name: str, *, zero: bool = False) -> int | None:
    """An id query parameter (`before=`, `after=`, `user_id=`): None when absent or empty, 400
    when malformed. `0` is None too, unless `zero` is set: then it is the id 0, the start of
    an ascending list (`after=0` pages messages from the oldest, API.md 1.6/3.7)."""
    raw = request.args.get(name)
    if raw is None or raw.strip() == "":
        return None
    if raw.strip() == "0":
        return 0 if zero else None
    value = parse_id(raw.strip())
    if value is None:
        raise ValidationError("must be an id", field=name)
    return value


AUDIT_REASON_MAX = 512


def audit_reason() -> str | None:
    """The `X-Audit-Log-Reason` header (percent-decoded), for the audit log entry."""
    raw = request.headers.get("X-Audit-Log-Reason")
    if not raw:
        return None
    reason = unquote(raw).strip()
    if len(reason) > AUDIT_REASON_MAX:
        raise ValidationError(
            f"must be at most {AUDIT_REASON_MAX} characters", field="X-Audit-Log-Reason"
        )
    return reason or None
