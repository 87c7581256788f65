"""Client WebSockets that always release their TCP connection.

trio-websocket's client follows RFC 6455 and waits for the server to close TCP after a close
handshake the server started; hypercorn leaves that connection open, so the socket would
linger until garbage collection. Here the client owns its stream (`wrap_client_stream`) and
closes it when the context ends.
"""

from __future__ import annotations

import contextlib
import ssl
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import trio
from trio_websocket import WebSocketConnection, wrap_client_stream


@contextlib.asynccontextmanager
async def open_ws(url: str, *, timeout_s: float = 10.0) -> AsyncIterator[WebSocketConnection]:
    parts = urlsplit(url)
    secure = parts.scheme == "wss"
    host = parts.hostname or "localhost"
    port = parts.port or (443 if secure else 80)
    resource = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    with trio.fail_after(timeout_s):
        stream: trio.SocketStream | trio.SSLStream[trio.SocketStream]
        stream = await trio.open_tcp_stream(host, port)
        if secure:
            stream = trio.SSLStream(stream, ssl.create_default_context(), server_hostname=host)
    try:
        async with trio.open_nursery() as nursery:
            with trio.fail_after(timeout_s):
                ws = await wrap_client_stream(nursery, stream, host, resource)
            try:
                yield ws
            finally:
                with trio.move_on_after(2, shield=True), contextlib.suppress(Exception):
                    await ws.aclose()
                nursery.cancel_scope.cancel()
    finally:
        with trio.move_on_after(1, shield=True), contextlib.suppress(Exception):
            await stream.aclose()
