"""Gateway client over trio-websocket: HELLO, IDENTIFY, heartbeats, dispatch events.

Events are read from `events` (a bounded channel); heartbeats run in the background at the
interval HELLO announced. One instance is one session.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import AsyncIterator, Callable
from typing import Any

import orjson
import trio
from trio_websocket import ConnectionClosed, WebSocketConnection

from accord.client.ws import open_ws

ALL_INTENTS = [
    "spaces", "moderation", "emojis", "voice_states", "messages", "message_reactions",
    "message_typing", "direct_messages", "dm_reactions", "dm_typing", "scheduled_events",
    "members", "presences", "message_content",
]  # fmt: skip


@dataclasses.dataclass(frozen=True, slots=True)
class Dispatch:
    type: str
    data: dict[str, Any]
    seq: int | None


class GatewayError(Exception):
    """The gateway refused the session (op 7) or closed it."""


class GatewayClient:
    def __init__(
        self, ws: WebSocketConnection, events: trio.MemoryReceiveChannel[Dispatch]
    ) -> None:
        self._ws = ws
        self.events = events
        self.session_id: str | None = None
        self.user_id: str | None = None
        self.ready: dict[str, Any] = {}

    async def send(self, op: int, data: Any = None) -> None:
        await self._ws.send_message(orjson.dumps({"op": op, "data": data}).decode())

    async def update_voice_state(
        self,
        space_id: str,
        channel_id: str | None,
        *,
        self_mute: bool = False,
        self_deaf: bool = False,
    ) -> None:
        await self.send(
            9,
            {
                "space_id": space_id,
                "channel_id": channel_id,
                "self_mute": self_mute,
                "self_deaf": self_deaf,
            },
        )

    async def wait_for(
        self,
        event_type: str,
        predicate: Callable[[dict[str, Any]], bool] = lambda _: True,
        *,
        timeout_s: float = 10.0,
    ) -> dict[str, Any]:
        """The next dispatch of `event_type` matching `predicate` (others are dropped)."""
        with trio.fail_after(timeout_s):
            async for event in self.events:
                if event.type == event_type and predicate(event.data):
                    return event.data
        raise GatewayError("gateway closed")

    async def close(self, code: int = 1000) -> None:
        await self._ws.aclose(code)


@contextlib.asynccontextmanager
async def open_gateway(
    ws_url: str,
    token: str,
    *,
    intents: list[str] | None = None,
    queue_size: int = 1024,
    timeout_s: float = 15.0,
) -> AsyncIterator[GatewayClient]:
    """Connect, identify with `token` ("Bearer x" or "Bot x") and yield once READY arrived."""
    send, receive = trio.open_memory_channel[Dispatch](queue_size)
    async with open_ws(ws_url) as ws, trio.open_nursery() as nursery:
        client = GatewayClient(ws, receive)
        with trio.fail_after(timeout_s):
            hello = orjson.loads(await ws.get_message())
            if hello.get("op") != 5:
                raise GatewayError(f"expected HELLO, got {hello!r}")
            interval_s = hello["data"]["heartbeat_interval"] / 1000
            await client.send(
                2,
                {
                    "token": token,
                    "intents": intents if intents is not None else ALL_INTENTS,
                    "properties": {"os": "linux", "client": "accord-client", "version": "1"},
                },
            )
            while True:
                frame = orjson.loads(await ws.get_message())
                if frame.get("op") == 7:
                    raise GatewayError("invalid session: the token was refused")
                if frame.get("op") == 0 and frame.get("type") == "ready":
                    client.ready = frame["data"]
                    client.session_id = frame["data"].get("session_id")
                    client.user_id = frame["data"].get("user_id")
                    break
        last_seq: list[int] = [0]
        nursery.start_soon(_heartbeats, client, interval_s, last_seq)
        nursery.start_soon(_reader, ws, send, last_seq)
        try:
            yield client
        finally:
            nursery.cancel_scope.cancel()
            with trio.move_on_after(2, shield=True), contextlib.suppress(Exception):
                await ws.aclose(1000)


async def _heartbeats(client: GatewayClient, interval_s: float, last_seq: list[int]) -> None:
    while True:
        await trio.sleep(interval_s)
        with contextlib.suppress(ConnectionClosed):
            await client.send(1, last_seq[0])


async def _reader(
    ws: WebSocketConnection, send: trio.MemorySendChannel[Dispatch], last_seq: list[int]
) -> None:
    async with send:
        while True:
            try:
                message = await ws.get_message()
            except ConnectionClosed:
                return
            frame = orjson.loads(message)
            if frame.get("op") != 0:
                continue
            seq = frame.get("seq")
            if isinstance(seq, int):
                last_seq[0] = seq
            data = frame.get("data")
            dispatch = Dispatch(str(frame.get("type")), data if isinstance(data, dict) else {}, seq)
            try:
                send.send_nowait(dispatch)
            except trio.WouldBlock:
                await send.send(dispatch)
