"""Voice opcodes and session lifetime handed to the voice service (VoicePort, D24), the
answer without a voice service (GATEWAY.md 9.2), and shutdown (OPERATIONS.md 10)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import trio

from accord.voice.port import GatewayVoiceSession
from tests.gateway.client import connect, connected
from tests.support import ServerHandle, register


class RecordingVoice:
    """A VoicePort that records what the gateway hands it (test double)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, Any]] = []
        self.changed = trio.Event()

    def _record(self, name: str, session: GatewayVoiceSession, detail: Any) -> None:
        self.calls.append((name, session.session_id, detail))
        self.changed.set()
        self.changed = trio.Event()

    async def gateway_voice_state(self, session: GatewayVoiceSession, data: dict[str, Any]) -> None:
        self._record("state", session, data)

    async def gateway_voice_signal(
        self, session: GatewayVoiceSession, data: dict[str, Any]
    ) -> None:
        self._record("signal", session, data)

    async def gateway_session_ended(self, session: GatewayVoiceSession, *, clean: bool) -> None:
        self._record("ended", session, clean)

    async def gateway_session_resumed(self, session: GatewayVoiceSession) -> None:
        self._record("resumed", session, None)

    def voice_states_in(self, space_ids: Any) -> list[tuple[int, int, dict[str, Any]]]:
        return []  # nobody is in voice: READY's voice_states is empty

    async def wait_for(self, count: int) -> None:
        with trio.fail_after(5):
            while len(self.calls) < count:
                await self.changed.wait()


@pytest.fixture
def server_env() -> dict[str, str]:
    return {"ACCORD_GATEWAY_RESUME_WINDOW_S": "5"}


async def test_voice_ops_and_lifecycle_reach_the_voice_service(
    server: ServerHandle, client: httpx.AsyncClient
) -> None:
    voice = RecordingVoice()
    server.ctx.voice = voice
    ana = await register(client, "ana")
    async with connected(server.ws_url, f"Bearer {ana.token}") as gw:
        join = {"space_id": "1", "channel_id": "2", "self_mute": True}
        await gw.send({"op": 9, "data": join})
        await gw.send({"op": 11, "data": {"type": "offer", "payload": {"sdp": "v=0"}}})
        await voice.wait_for(2)
        assert voice.calls == [
            ("state", gw.session_id, join),
            ("signal", gw.session_id, {"type": "offer", "payload": {"sdp": "v=0"}}),
        ]
        await gw.send({"op": 9, "data": "not an object"})
        assert (await gw.closed())[0] == 4002
    await voice.wait_for(3)
    assert voice.calls[2] == ("ended", gw.session_id, False)  # a 4002 end keeps voice (grace)

    async with connect(server.ws_url) as again:
        await again.resume(f"Bearer {ana.token}", gw.session_id, 1)
        await again.recv_event("resumed")
        await voice.wait_for(4)
        assert voice.calls[3] == ("resumed", gw.session_id, None)
        await again.ws.aclose(1000)
    await voice.wait_for(5)
    assert voice.calls[4] == ("ended", gw.session_id, True)  # a clean close ends voice now


async def test_voice_signals_are_rate_limited_by_dropping(
    server: ServerHandle, client: httpx.AsyncClient
) -> None:
    voice = RecordingVoice()
    server.ctx.voice = voice
    ana = await register(client, "ana")
    async with connected(server.ws_url, f"Bearer {ana.token}") as gw:
        for i in range(260):
            await gw.send({"op": 11, "data": {"type": "ice", "payload": {"i": i}}})
        await gw.send({"op": 1})
        assert await gw.recv_until(lambda f: f.get("op") == 4) == {"op": 4}  # not closed
    signals = [c for c in voice.calls if c[0] == "signal"]
    assert 150 <= len(signals) < 260


async def test_without_a_voice_service_a_join_gets_no_endpoint(
    server: ServerHandle, client: httpx.AsyncClient
) -> None:
    server.ctx.voice = None  # as if no voice backend were wired
    ana = await register(client, "ana")
    async with connected(server.ws_url, f"Bearer {ana.token}") as gw:
        assert gw.ready is not None
        space = gw.ready["spaces"][0]
        await gw.send({"op": 9, "data": {"space_id": "12345", "channel_id": "6"}})  # not a member
        await gw.send({"op": 9, "data": {"space_id": space, "channel_id": "6"}})
        update = await gw.recv_event("voice.server_update")
        assert "seq" not in update
        assert update["data"] == {
            "space_id": space,
            "channel_id": "6",
            "backend": "custom",
            "endpoint": None,
            "sfu_endpoint": None,
        }


async def test_shutdown_sends_reconnect_then_1001(
    server: ServerHandle, client: httpx.AsyncClient
) -> None:
    ana = await register(client, "ana")
    async with (
        connected(server.ws_url, f"Bearer {ana.token}") as gw,
        connect(server.ws_url) as unidentified,
    ):
        server.shutdown.set()
        code, frames = await gw.closed()
        assert code == 1001
        assert frames[-1] == {"op": 6}
        assert await unidentified.closed() == (1001, [{"op": 6}])
