"""A small gateway client for tests: trio-websocket plus helpers for the handshake and for
waiting on particular frames. Every wait is bounded (`timeout_s`)."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import AsyncIterator, Callable
from typing import Any

import orjson
import trio
from trio_websocket import ConnectionClosed, WebSocketConnection, open_websocket_url

ALL_INTENTS = [
    "spaces",
    "moderation",
    "emojis",
    "voice_states",
    "messages",
    "message_reactions",
    "message_typing",
    "direct_messages",
    "dm_reactions",
    "dm_typing",
    "scheduled_events",
    "members",
    "presences",
    "message_content",
]


@dataclasses.dataclass
class GatewayClient:
    ws: WebSocketConnection
    hello: dict[str, Any] | None = None
    ready: dict[str, Any] | None = None
    last_seq: int = 0

    async def send(self, frame: Any) -> None:
        await self.ws.send_message(
            frame if isinstance(frame, str | bytes) else orjson.dumps(frame).decode()
        )

    async def recv(self, timeout_s: float = 5.0) -> dict[str, Any]:
        with trio.fail_after(timeout_s):
            raw = await self.ws.get_message()
        assert isinstance(raw, str), "the server only sends text frames"
        frame: dict[str, Any] = orjson.loads(raw)
        if isinstance(frame.get("seq"), int) and frame.get("op") == 0:
            self.last_seq = frame["seq"]
        return frame

    async def recv_until(
        self, match: Callable[[dict[str, Any]], bool], timeout_s: float = 5.0
    ) -> dict[str, Any]:
        with trio.fail_after(timeout_s):
            while True:
                frame = await self.recv(timeout_s)
                if match(frame):
                    return frame

    async def recv_event(self, event_type: str, timeout_s: float = 5.0) -> dict[str, Any]:
        return await self.recv_until(lambda f: f.get("type") == event_type, timeout_s)

    async def expect_silence(self, duration_s: float = 0.3, ignore: tuple[str, ...] = ()) -> None:
        """No dispatch (other than `ignore` types) arrives for `duration_s`."""
        with trio.move_on_after(duration_s):
            while True:
                frame = await self.recv(duration_s + 1)
                if frame.get("op") == 0 and frame.get("type") not in ignore:
                    raise AssertionError(f"unexpected frame {frame}")

    async def identify(
        self, token: str, intents: list[str] | None = None, **extra: Any
    ) -> dict[str, Any]:
        await self.send(
            {
                "op": 2,
                "data": {
                    "token": token,
                    "intents": ALL_INTENTS if intents is None else intents,
                    **extra,
                },
            }
        )
        frame = await self.recv_until(lambda f: f.get("op") != 4)
        assert frame.get("type") == "ready", frame
        self.ready = frame["data"]
        return frame

    async def resume(self, token: str, session_id: str, seq: int) -> None:
        """Send op 3 RESUME; what comes back is the caller's to read."""
        await self.send({"op": 3, "data": {"token": token, "session_id": session_id, "seq": seq}})

    async def closed(self, timeout_s: float = 5.0) -> tuple[int | None, list[dict[str, Any]]]:
        """Read until the server closes; the close code and the frames seen before it."""
        frames: list[dict[str, Any]] = []
        with trio.fail_after(timeout_s):
            while True:
                try:
                    frames.append(await self.recv(timeout_s))
                except ConnectionClosed as exc:
                    return (exc.reason.code if exc.reason else None), frames

    @property
    def session_id(self) -> str:
        assert self.ready is not None
        return str(self.ready["session_id"])


async def eventually(predicate: Callable[[], bool], timeout_s: float = 5.0) -> None:
    """Wait until `predicate()` holds (server-side state that has no frame to wait for)."""
    with trio.fail_after(timeout_s):
        while True:
            if predicate():
                return
            await trio.sleep(0.01)


@contextlib.asynccontextmanager
async def connect(
    url: str, *, read_hello: bool = True, query: str = ""
) -> AsyncIterator[GatewayClient]:
    opened: list[WebSocketConnection] = []
    try:
        async with open_websocket_url(url + query, max_message_size=16 * 1024 * 1024) as ws:
            opened.append(ws)
            client = GatewayClient(ws)
            if read_hello:
                client.hello = await client.recv()
                assert client.hello["op"] == 5, client.hello
            yield client
    finally:
        # trio-websocket 0.12 leaves its TCP stream open after a finished close handshake
        # (it breaks out on EOF without closing); close it so no socket leaks.
        for ws in opened:
            with trio.CancelScope(shield=True):
                await ws._stream.aclose()


@contextlib.asynccontextmanager
async def connected(
    url: str, token: str, intents: list[str] | None = None
) -> AsyncIterator[GatewayClient]:
    async with connect(url) as client:
        await client.identify(token, intents)
        yield client
