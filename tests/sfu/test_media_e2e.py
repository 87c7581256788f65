"""Voice end to end with real processes: main (in-process), one SFU node (a subprocess running
`python -m accord` in SFU mode) and voice clients speaking SRTP over UDP on loopback.

Runs once per forwarder (the Cython loop and the pure-Python reference, ACCORD_PURE_PYTHON).
Three clients share one voice channel and a fourth sits in another: each hears exactly the
other unmuted members of its own channel, with payloads intact and in order; mute and deaf are
respected; forged keys and spoofed SSRCs get nothing through; NAT rebinding keeps working;
kicking a user from main ends its media within a second; SIGTERM on the node tells clients and
deregisters the node.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from typing import Any

import httpx
import pylibsrtp
import pytest
import trio

from accord.client.voice import VoiceConnection, VoiceServer, open_voice, rtp_packet
from accord.voice.join_token import verify_join_token
from tests.sfu.support import Node, start_node_process
from tests.spaces_support import create_space, join_by_invite
from tests.support import Account, ServerHandle, register

SECRET = "media-e2e-secret"
NODE = {"Authorization": f"Node {SECRET}"}
FRAMES = 25

pytestmark = pytest.mark.slow


@pytest.fixture
def server_env() -> dict[str, str]:
    return {"ACCORD_SFU_SECRET": SECRET, "ACCORD_RATE_LIMIT": "1000/s"}


@pytest.fixture(params=["cython", "reference"])
def forwarder(request: pytest.FixtureRequest) -> str:
    return str(request.param)


async def start_node(nursery: trio.Nursery, main_url: str, forwarder: str) -> Node:
    return await start_node_process(
        nursery,
        {
            "ACCORD_MAIN_URL": main_url,
            "ACCORD_SFU_NODE_ID": "media-1",
            "ACCORD_SFU_CAPACITY": "20",
            "ACCORD_SFU_HEARTBEAT_INTERVAL": "1",
            "ACCORD_SFU_SECRET": SECRET,
            "ACCORD_PURE_PYTHON": "1" if forwarder == "reference" else "0",
        },
    )


async def voice_join(client: httpx.AsyncClient, who: Account, channel_id: str) -> VoiceServer:
    r = await client.post(
        f"/api/v1/channels/{channel_id}/voice/join",
        json={"self_mute": False, "self_deaf": False},
        headers=who.headers,
    )
    assert r.status_code == 200, r.text
    return VoiceServer.from_update(r.json()["data"])


async def hold_voice(
    server: VoiceServer,
    *,
    task_status: trio.TaskStatus[tuple[VoiceConnection, trio.Event]] = trio.TASK_STATUS_IGNORED,
) -> None:
    """A voice session in its own task, so the test can end it while others stay open."""
    async with open_voice(server) as voice:
        leave = trio.Event()
        task_status.started((voice, leave))
        await leave.wait()


async def send_frames(voice: VoiceConnection, count: int = FRAMES) -> None:
    for _ in range(count):
        await voice.send_frame()
        await trio.sleep(0.004)


async def settle(condition: Any, timeout: float = 5.0) -> None:
    """Wait until `condition()` holds (packets arrive on their own schedule: poll)."""
    with trio.fail_after(timeout):
        while not condition():  # noqa: ASYNC110
            await trio.sleep(0.02)


def received(voice: VoiceConnection, sender: VoiceConnection) -> int:
    stats = voice.stats.get(sender.ssrc)
    return stats.packets if stats else 0


async def test_voice_end_to_end(
    nursery: trio.Nursery, server: ServerHandle, client: httpx.AsyncClient, forwarder: str
) -> None:
    node = await start_node(nursery, server.url, forwarder)
    try:
        await node.wait_for(r"registered with main server as 'media-1'")
        await register(client, "root")  # the first user is instance admin (D8); not used
        owner = await register(client, "owner")
        users = [await register(client, f"user{i}") for i in range(4)]
        space = await create_space(client, owner, "Voice Space")
        for user in users:
            await join_by_invite(client, owner, user, space["id"])
        channels = []
        for name in ("Room A", "Room B"):
            r = await client.post(
                f"/api/v1/spaces/{space['id']}/channels",
                json={"name": name, "type": "voice"},
                headers=owner.headers,
            )
            channels.append(r.json()["data"]["id"])
        room_a, room_b = channels

        async with contextlib.AsyncExitStack() as stack:
            v1 = await stack.enter_async_context(
                open_voice(await voice_join(client, users[0], room_a))
            )
            v2, v2_leave = await nursery.start(
                hold_voice, await voice_join(client, users[1], room_a)
            )
            v3 = await stack.enter_async_context(
                open_voice(await voice_join(client, users[2], room_a))
            )
            v4 = await stack.enter_async_context(
                open_voice(await voice_join(client, users[3], room_b))
            )
            room = [v1, v2, v3]
            # Peers: the last to join saw the first two in `ready`; the first learnt of the
            # others through peer_joined.
            assert {int(p["ssrc"]) for p in v3.ready["peers"]} == {v1.ssrc, v2.ssrc}
            await settle(lambda: set(v1.peers) == {v2.ssrc, v3.ssrc})
            assert v4.ready["peers"] == []

            for voice in (*room, v4):
                await send_frames(voice)
            await settle(
                lambda: all(received(a, b) == FRAMES for a in room for b in room if a is not b)
            )
            await trio.sleep(0.2)
            for listener in room:
                assert listener.ssrc not in listener.stats  # never hears itself
                assert v4.ssrc not in listener.stats  # nothing crosses rooms
                for speaker in room:
                    if speaker is listener:
                        continue
                    stats = listener.stats[speaker.ssrc]
                    assert stats.corrupted == 0
                    assert stats.lost == 0
                    assert stats.out_of_order == 0
                    assert stats.sequences == sorted(stats.sequences)
                    assert stats.user_id == users[room.index(speaker)].id
            assert v4.stats == {}

            # Mute: v1's packets stop reaching the others. Deaf: v2 gets nothing.
            await v1.set_state(self_mute=True, self_deaf=False)
            await v2.set_state(self_mute=False, self_deaf=True)
            await trio.sleep(0.3)
            before = {(id(a), b.ssrc): received(a, b) for a in room for b in room if a is not b}
            await send_frames(v1, 10)
            await send_frames(v3, 10)
            await settle(lambda: received(v1, v3) == before[(id(v1), v3.ssrc)] + 10)
            await trio.sleep(0.2)
            assert received(v3, v1) == before[(id(v3), v1.ssrc)]  # muted sender
            assert received(v2, v1) == before[(id(v2), v1.ssrc)]
            assert received(v2, v3) == before[(id(v2), v3.ssrc)]  # deafened receiver
            await v1.set_state(self_mute=False, self_deaf=False)
            await v2.set_state(self_mute=False, self_deaf=False)
            await trio.sleep(0.3)

            # Forged keys and a spoofed SSRC: nothing is forwarded, nothing is hijacked.
            forged = pylibsrtp.Session(
                pylibsrtp.Policy(
                    key=os.urandom(28),
                    ssrc_type=pylibsrtp.Policy.SSRC_ANY_OUTBOUND,
                    srtp_profile=pylibsrtp.Policy.SRTP_PROFILE_AEAD_AES_128_GCM,
                )
            )
            baseline = received(v2, v1)
            for seq in range(5000, 5020):
                await v3.send_raw(forged.protect(rtp_packet(v1.ssrc, seq, seq * 960, b"x" * 160)))
                await v3.send_raw(b"\x80\x6f garbage that is not srtp")
            await trio.sleep(0.3)
            assert received(v2, v1) == baseline
            await send_frames(v1, 5)  # v1's real address is still latched
            await settle(lambda: received(v2, v1) == baseline + 5)

            # NAT rebinding: v3 moves to a new source port and keeps sending and hearing.
            await v3.rebind()
            heard_before = received(v1, v3)
            await send_frames(v3, 5)
            await settle(lambda: received(v1, v3) == heard_before + 5)
            got_before = received(v3, v1)
            await send_frames(v1, 5)
            await settle(lambda: received(v3, v1) == got_before + 5)

            with trio.fail_after(5):
                while True:  # the node refreshes its counters every 100 ms
                    health = (await _node_health(node))["counters"]
                    if health["media_latch_moves"] >= 1:
                        break
                    await trio.sleep(0.05)
            assert health["media_drop_auth_failed"] >= 20

            # Kicking v2's user from the space ends its media within a second.
            async with trio.open_nursery() as watch:
                kicked_at = trio.current_time()
                r = await client.delete(
                    f"/api/v1/spaces/{space['id']}/members/{users[1].id}", headers=owner.headers
                )
                assert r.status_code == 200
                with trio.fail_after(2):
                    await v2.closed.wait()
                watch.cancel_scope.cancel()
            assert v2.close_code == 4104
            assert trio.current_time() - kicked_at < 1.5
            await settle(lambda: v2.ssrc not in v1.peers)
            got_before = received(v2, v1)
            await send_frames(v1, 5)
            await trio.sleep(0.2)
            assert received(v2, v1) == got_before
            # A client told its session ended leaves (the server closed the socket; RFC 6455
            # has the client wait for the server's TCP close, which hypercorn leaves open).
            v2_leave.set()

            # SIGTERM on the node: clients are told (socket closed), the node deregisters.
            node.process.send_signal(signal.SIGTERM)
            with trio.fail_after(10):
                await v1.closed.wait()
                await node.process.wait()
            assert node.process.returncode == 0
            assert v1.close_code is not None
        listed = (await client.get("/api/v1/sfu/nodes", headers=NODE)).json()["data"]
        assert listed == []
    finally:
        if node.process.returncode is None:
            node.process.kill()
            await node.process.wait()


async def until_counted(node: Node, counter: str, sender: VoiceConnection) -> None:
    """Send one frame at a time until the node's `counter` grows (a change was applied)."""
    start = (await _node_health(node))["counters"][counter]
    with trio.fail_after(5):
        while (await _node_health(node))["counters"][counter] <= start:
            await sender.send_frame()
            await trio.sleep(0.05)


async def _node_health(node: Node) -> dict[str, Any]:
    match = await node.wait_for(r"listening on (http://\S+)")
    async with httpx.AsyncClient(base_url=match.group(1)) as direct:
        data: dict[str, Any] = (await direct.get("/health")).json()
    return data


async def test_main_changes_rights_on_the_node(
    nursery: trio.Nursery, server: ServerHandle, client: httpx.AsyncClient, forwarder: str
) -> None:
    """RT-33: `POST /sessions/{id}/rights` (main only) stops forwarding what a participant
    says (speak false) or what it hears (deaf true) at once, and gives it back."""
    node = await start_node(nursery, server.url, forwarder)
    try:
        await node.wait_for(r"registered with main server as 'media-1'")
        node_url = (await node.wait_for(r"listening on (http://\S+)")).group(1)
        await register(client, "root")
        owner = await register(client, "owner")
        guest = await register(client, "guest")
        space = await create_space(client, owner, "Rights")
        await join_by_invite(client, owner, guest, space["id"])
        r = await client.post(
            f"/api/v1/spaces/{space['id']}/channels",
            json={"name": "Talk", "type": "voice"},
            headers=owner.headers,
        )
        channel = r.json()["data"]["id"]
        owner_server = await voice_join(client, owner, channel)
        claims = verify_join_token(SECRET, owner_server.token, node_id="media-1", now=time.time())
        async with (
            open_voice(owner_server) as speaker,
            open_voice(await voice_join(client, guest, channel)) as listener,
            httpx.AsyncClient(base_url=node_url) as direct,
        ):
            await settle(lambda: speaker.ssrc in listener.peers)
            await send_frames(speaker, 5)
            await settle(lambda: received(listener, speaker) == 5)

            async def rights(session: str, speak: bool, deaf: bool) -> dict[str, Any]:
                r = await direct.post(
                    f"/sessions/{session}/rights", json={"speak": speak, "deaf": deaf}, headers=NODE
                )
                assert r.status_code == 200, r.text
                data: dict[str, Any] = r.json()["data"]
                return data

            assert (await rights(claims.session_id, False, False))["applied"] is True
            await send_frames(speaker, 5)
            await trio.sleep(0.3)
            assert received(listener, speaker) == 5  # server-muted: nothing forwarded
            await rights(claims.session_id, True, False)
            await send_frames(speaker, 5)
            await settle(lambda: received(listener, speaker) == 10)
            # Deaf is about what reaches the participant: the speaker is deafened, the
            # listener still hears it; the speaker hears nothing from the listener.
            await rights(claims.session_id, True, True)
            await send_frames(speaker, 5)
            await send_frames(listener, 5)
            await settle(lambda: received(listener, speaker) == 15)
            await trio.sleep(0.3)
            assert received(speaker, listener) == 0

            # Only main may call it, with booleans; unknown sessions are not applied.
            r = await direct.post(
                f"/sessions/{claims.session_id}/rights", json={"speak": True, "deaf": False}
            )
            assert r.status_code == 401
            r = await direct.post(
                f"/sessions/{claims.session_id}/rights", json={"speak": "yes"}, headers=NODE
            )
            assert r.status_code == 400
            assert (await rights("no-such-session", True, False))["applied"] is False
    finally:
        if node.process.returncode is None:
            node.process.kill()
            await node.process.wait()


async def test_moderator_mute_and_deafen_reach_live_media(
    nursery: trio.Nursery, server: ServerHandle, client: httpx.AsyncClient, forwarder: str
) -> None:
    """RT-33 through main: a moderator's server mute stops the member's audio reaching the
    room, server deafen stops the room reaching it, without the member reconnecting."""
    node = await start_node(nursery, server.url, forwarder)
    try:
        await node.wait_for(r"registered with main server as 'media-1'")
        await register(client, "root")
        owner = await register(client, "owner")
        member = await register(client, "member")
        space = await create_space(client, owner, "Moderated")
        await join_by_invite(client, owner, member, space["id"])
        r = await client.post(
            f"/api/v1/spaces/{space['id']}/channels",
            json={"name": "Stage", "type": "voice"},
            headers=owner.headers,
        )
        channel = r.json()["data"]["id"]
        moderate = f"/api/v1/spaces/{space['id']}/voice-states/{member.id}"
        async with (
            open_voice(await voice_join(client, member, channel)) as talker,
            open_voice(await voice_join(client, owner, channel)) as moderator,
        ):
            await settle(lambda: talker.ssrc in moderator.peers)
            await send_frames(talker, 5)
            await settle(lambda: received(moderator, talker) == 5)

            r = await client.patch(moderate, json={"mute": True}, headers=owner.headers)
            assert r.status_code == 200, r.text
            # Main tells the node right after answering: wait until the node drops her audio.
            await until_counted(node, "media_drop_muted", talker)
            await trio.sleep(0.2)  # copies made before the mute applied are still arriving
            heard = received(moderator, talker)
            await send_frames(talker, 5)
            await trio.sleep(0.3)
            assert received(moderator, talker) == heard

            r = await client.patch(
                moderate, json={"mute": False, "deaf": True}, headers=owner.headers
            )
            assert r.status_code == 200
            await until_counted(node, "media_drop_deafened", moderator)
            await send_frames(talker, 5)  # unmuted again: heard
            await settle(lambda: received(moderator, talker) >= heard + 5)
            got = received(talker, moderator)
            await send_frames(moderator, 5)
            await trio.sleep(0.3)
            assert received(talker, moderator) == got  # server-deafened: nothing reaches her
    finally:
        if node.process.returncode is None:
            node.process.kill()
            await node.process.wait()
