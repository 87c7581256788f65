"""Tell the gateway which close code the client sent (hypercorn 0.18 does not).

Hypercorn reports every client-side end of a websocket to the ASGI app as code 1006 (or 1000
after the app closed first), so the app cannot tell a clean 1000/1001 close, which ends a
session and its voice state at once, from a dropped socket, which parks the session for
RESUME (D12b, D24). `install_close_code_hook()` wraps `WSStream._accept` so that the accepted
connection's wsproto event stream records a client's CloseConnection code in the ASGI scope under
`CLIENT_CLOSE_CODE`; the gateway reads it when the disconnect arrives. If hypercorn's
internals ever differ, the hook is not installed and every end counts as a drop (parked).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

log = logging.getLogger("accord.gateway")

CLIENT_CLOSE_CODE = "accord.client_close_code"
_MARK = "_accord_close_code_hook"


def install_close_code_hook() -> bool:
    """Install the hook once per process; False if hypercorn's internals do not fit."""
    try:
        from hypercorn.protocol.ws_stream import WSStream
        from wsproto.events import CloseConnection
    except ImportError:  # pragma: no cover - both ship with the pinned stack
        return False
    original = getattr(WSStream, "_accept", None)
    if original is None:
        log.warning("hypercorn has no WSStream._accept; client close codes are not visible")
        return False
    if getattr(original, _MARK, False):
        return True

    async def _accept(self: Any, message: Any) -> None:
        await original(self, message)
        connection: Any = getattr(self, "connection", None)
        scope = getattr(self, "scope", None)
        events = getattr(connection, "events", None)
        if events is None or not isinstance(scope, dict):
            return

        def recording_events() -> Iterator[Any]:
            for event in events():
                if isinstance(event, CloseConnection):
                    scope.setdefault(CLIENT_CLOSE_CODE, int(event.code))
                yield event

        connection.events = recording_events

    setattr(_accept, _MARK, True)
    setattr(WSStream, "_accept", _accept)  # noqa: B010 - patching a method on purpose
    return True
