"""The node's signaling socket (MEDIA.md 2, 5a): every close code and protocol rule, against
a real SFU-mode process. Main is not needed for signaling: join tokens are verified offline,
so the node runs pointed at a main that never answers (it keeps retrying registration)."""

from __future__ import annotations

import base64
import socket
import time
from typing import Any

import httpx
import orjson
import pytest
import trio
from trio_websocket import ConnectionClosed, WebSocketConnection

from accord.client.ws import open_ws
from accord.sfu import signaling
from accord.voice.join_token import sign_join_token
from tests.sfu.support import Node, start_node_process

SECRET = "signaling-secret"

pytestmark = pytest.mark.slow


def _dead_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def _start(nursery: trio.Nursery) -> tuple[Node, str]:
    node = await start_node_process(
        nursery,
        {
            "ACCORD_MAIN_URL": f"http://127.0.0.1:{_dead_port()}",
            "ACCORD_SFU_NODE_ID": "sig-1",
            "ACCORD_SFU_CAPACITY": "2",
            "ACCORD_SFU_SECRET": SECRET,
            "ACCORD_SFU_SIGNAL_HEARTBEAT_MS": "400",
            "ACCORD_LOG": "accord=warning",
        },
    )
    match = await node.wait_for(r"listening on (http://\S+)")
    return node, match.group(1)


def token(session: str, **overrides: Any) -> str:
    claims: dict[str, Any] = {
        "user_id": 42,
        "session_id": session,
        "channel_id": 7,
        "space_id": 1,
        "node_id": "sig-1",
        "speak": True,
        "now": time.time(),
    }
    claims.update(overrides)
    secret = claims.pop("secret", SECRET)
    return sign_join_token(secret, **claims)


async def close_code(ws: WebSocketConnection) -> int | None:
    with trio.fail_after(5):
        try:
            while True:
                await ws.get_message()
        except ConnectionClosed as exc:
            return exc.reason.code if exc.reason else None


async def send(ws: WebSocketConnection, op: str, d: Any) -> None:
    await ws.send_message(orjson.dumps({"op": op, "d": d}).decode())


async def receive(ws: WebSocketConnection, op: str) -> dict[str, Any]:
    with trio.fail_after(5):
        while True:
            frame = orjson.loads(await ws.get_message())
            if frame["op"] == op:
                data: dict[str, Any] = frame["d"]
                return data


def identify(join_token: str, protocol: str = "accord-rtp/1") -> str:
    return signaling.encode("identify", {"token": join_token, "protocol": protocol})


async def refused_with(url: str, first: str | bytes) -> int | None:
    async with open_ws(url) as ws:
        await ws.send_message(first)
        return await close_code(ws)


async def test_signaling_rules(nursery: trio.Nursery) -> None:
    node, base = await _start(nursery)
    url = base.replace("http://", "ws://") + "/ws"
    try:
        # Refusals before ready.
        assert await refused_with(url, "not json") == 4105
        assert await refused_with(url, signaling.encode("heartbeat", {"nonce": 1})) == 4105
        assert await refused_with(url, identify("not-a-jwt")) == 4101
        assert await refused_with(url, identify(token("s1", secret="other-secret"))) == 4101
        assert await refused_with(url, identify(token("s1", node_id="sig-2"))) == 4101
        assert await refused_with(url, identify(token("s1", now=time.time() - 120))) == 4102
        assert await refused_with(url, identify(token("s1"), "webrtc")) == 4105

        # A good session: ready, keys, heartbeats; the token cannot be used twice.
        good = token("s2")
        async with open_ws(url) as ws:
            await ws.send_message(identify(good))
            ready = await receive(ws, "ready")
            assert ready["udp"]["ip"] == "127.0.0.1"
            assert ready["udp"]["port"] > 0
            assert ready["modes"] == ["AEAD_AES_128_GCM", "AES_CM_128_HMAC_SHA1_80"]
            assert ready["peers"] == []
            assert 0 < ready["ssrc"] < 2**32
            await send(ws, "select_protocol", {"mode": "AES_CM_128_HMAC_SHA1_80"})
            description = await receive(ws, "session_description")
            assert description["mode"] == "AES_CM_128_HMAC_SHA1_80"
            send_key = base64.b64decode(description["send_key"])
            recv_key = base64.b64decode(description["recv_key"])
            assert len(send_key) == len(recv_key) == 30
            assert send_key != recv_key
            await send(ws, "heartbeat", {"nonce": 99})
            assert (await receive(ws, "heartbeat_ack"))["nonce"] == 99
            assert await refused_with(url, identify(good)) == 4101  # replayed token

            # A second participant in the same room sees the first; the first hears of it.
            async with open_ws(url) as other:
                await other.send_message(identify(token("s3", user_id=43)))
                peers = (await receive(other, "ready"))["peers"]
                assert [p["user_id"] for p in peers] == ["42"]
                joined = await receive(ws, "peer_joined")
                assert joined["user_id"] == "43"
                # Capacity is 2: a third is refused as full.
                assert await refused_with(url, identify(token("s4", user_id=44))) == 4103
                await send(other, "select_protocol", {"mode": "DES"})
                assert await close_code(other) == 4105
            left = await receive(ws, "peer_left")
            assert left["user_id"] == "43"
            await send(ws, "heartbeat", {"nonce": 100})
            await receive(ws, "heartbeat_ack")

        # Main ends a session: its socket closes with 4104 at once, and a fresh token for the
        # same session is refused.
        async with open_ws(url) as ws, httpx.AsyncClient(base_url=base) as http:
            await ws.send_message(identify(token("s5")))
            await receive(ws, "ready")
            r = await http.post("/sessions/s5/end", headers={"Authorization": f"Node {SECRET}"})
            assert r.json()["data"]["ended"] is True
            assert await close_code(ws) == 4104
        assert await refused_with(url, identify(token("s5"))) == 4104

        # Unknown ops are protocol errors; silence past two intervals is a heartbeat timeout.
        async with open_ws(url) as ws:
            await ws.send_message(identify(token("s6")))
            await receive(ws, "ready")
            await send(ws, "dance", {})
            assert await close_code(ws) == 4105
        async with open_ws(url) as ws:
            await ws.send_message(identify(token("s7")))
            await receive(ws, "ready")
            started = trio.current_time()
            assert await close_code(ws) == 4106
            assert trio.current_time() - started < 2.0

        async with httpx.AsyncClient(base_url=base) as http:
            metrics = (await http.get("/metrics")).text
            health = (await http.get("/health")).json()
        assert "# TYPE accord_sfu_packets_in_total counter" in metrics
        assert 'accord_sfu_dropped_packets_total{worker="0",reason="auth_failed"}' in metrics
        assert "accord_sfu_participants 0" in metrics
        assert 'accord_sfu_send_messages_total{worker="0"}' in metrics  # the Cython loop
        assert health["current_load"] == 0
        assert health["registered"] is False
    finally:
        node.process.kill()
        await node.process.wait()


def test_frame_decoding() -> None:
    assert signaling.decode('{"op":"heartbeat","d":{"nonce":1}}') == signaling.ClientFrame(
        "heartbeat", {"nonce": 1}
    )
    assert signaling.decode('{"op":"state"}').d == {}
    for bad in ("[]", '{"d":{}}', '{"op":1}', '{"op":"x","d":[1]}', "x" * 20000, "{"):
        with pytest.raises(signaling.SignalingError):
            signaling.decode(bad)
    frame = signaling.decode('{"op":"state","d":{"self_mute":true}}')
    assert signaling.state_flags(frame, (False, True)) == (True, True)
    with pytest.raises(signaling.SignalingError):
        signaling.state_flags(
            signaling.decode('{"op":"state","d":{"self_deaf":"yes"}}'), (False, False)
        )
    with pytest.raises(signaling.SignalingError):
        signaling.selected_mode(signaling.decode('{"op":"select_protocol","d":{}}'), ("A",))
    assert signaling.identify_fields(signaling.decode('{"op":"identify","d":{"token":"t"}}')) == (
        "t",
        "accord-rtp/1",
    )
