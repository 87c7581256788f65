"""Gateway voice paths through `VoicePort` (GATEWAY.md 9, D13, D13a, D14, D14a, D14b, D24):
op 9 join/flags/move/leave and their denials, session end with and without grace, resume,
and op 11 signal delivery with its size and rate limits."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import trio

from accord.events.types import Event
from accord.voice.service import MAX_SIGNAL_PAYLOAD_BYTES, SIGNAL_BURST
from tests.support import Account, ServerHandle, register
from tests.voice.support import (
    drain,
    events,
    gateway_session,
    join_space,
    make_channel,
    make_space,
    next_event,
    voice,
)


@pytest.fixture
def server_env() -> dict[str, str]:
    return {"ACCORD_VOICE_GRACE_S": "0.3"}


async def _world(
    server: ServerHandle, client: httpx.AsyncClient
) -> tuple[Account, Account, Account, int, int, int]:
    await register(client, "admin")
    ana = await register(client, "ana")
    bob = await register(client, "bob")
    cid = await register(client, "cid")
    space_id = await make_space(server, ana)
    await join_space(server, space_id, bob, cid)
    first = await make_channel(server, space_id, "First")
    second = await make_channel(server, space_id, "Second")
    return ana, bob, cid, space_id, first, second


def _op9(space_id: int, channel_id: int | None, **flags: bool) -> dict[str, Any]:
    return {
        "space_id": str(space_id),
        "channel_id": None if channel_id is None else str(channel_id),
        **flags,
    }


async def test_op9_join_broadcasts_state_and_targets_server_update(
    server: ServerHandle, client: httpx.AsyncClient
) -> None:
    ana, _, _, space_id, first, _ = await _world(server, client)
    session = await gateway_session(server, ana)
    with server.ctx.bus.subscribed() as sub:
        await voice(server).gateway_voice_state(session, _op9(space_id, first, self_video=True))
        state = await next_event(sub, "voice.state_update")
        update = await next_event(sub, "voice.server_update")
    assert state.space_id == space_id
    assert state.session_id is None
    assert state.data["session_id"] == session.session_id
    assert state.data["self_video"] is True
    assert update.session_id == session.session_id  # to the joining session only
    assert update.data == {
        "space_id": str(space_id),
        "channel_id": str(first),
        "backend": "custom",
        "endpoint": None,
        "sfu_endpoint": None,
        "token": None,
    }


async def test_op9_denials_answer_the_session_and_store_nothing(
    server: ServerHandle, client: httpx.AsyncClient
) -> None:
    ana, bob, _, space_id, first, _ = await _world(server, client)
    text = await make_channel(server, space_id, "chat", type="text")
    other_space = await make_space(server, bob, "Other")
    foreign = await make_channel(server, other_space)
    outsider = await register(client, "outsider")
    session = await gateway_session(server, ana)
    cases = [
        (session, _op9(space_id, text), "invalid_request"),
        (session, _op9(other_space, first), "invalid_request"),  # channel of another space
        (session, {"space_id": str(space_id), "channel_id": "nope"}, "not_found"),
        (session, _op9(space_id, first) | {"self_mute": "loud"}, "invalid_request"),
        (await gateway_session(server, outsider), _op9(space_id, first), "forbidden"),
        (session, _op9(other_space, foreign), "forbidden"),
    ]
    for who, payload, code in cases:
        with server.ctx.bus.subscribed() as sub:
            await voice(server).gateway_voice_state(who, payload)
            error = await next_event(sub, "voice.error")
            assert error.session_id == who.session_id
            assert error.data["code"] == code, (payload, error.data)
            assert events(drain(sub), "voice.state_update") == []
        assert voice(server).state_of(who.user_id) is None


async def test_op9_same_channel_is_a_flag_update(
    server: ServerHandle, client: httpx.AsyncClient
) -> None:
    ana, _, _, space_id, first, _ = await _world(server, client)
    phone = await gateway_session(server, ana, "phone")
    laptop = await gateway_session(server, ana, "laptop")
    service = voice(server)
    await service.gateway_voice_state(phone, _op9(space_id, first))
    with server.ctx.bus.subscribed() as sub:
        await service.gateway_voice_state(laptop, _op9(space_id, first, self_mute=True))
        state = await next_event(sub, "voice.state_update")
        update = await next_event(sub, "voice.server_update")
    # D14a: same voice session id, new flags, now held by the sending session.
    assert state.data["session_id"] == "phone"
    assert state.data["self_mute"] is True
    assert update.session_id == "laptop"
    current = service.state_of(ana_id := int(ana.id))
    assert current is not None
    assert current.owner_session == "laptop"
    # The session that no longer holds the state closing does not drop it (D14).
    await service.gateway_session_ended(phone, clean=True)
    assert service.state_of(ana_id) is not None


async def test_rest_state_is_claimed_by_op9(
    server: ServerHandle, client: httpx.AsyncClient
) -> None:
    ana, _, _, space_id, first, _ = await _world(server, client)
    r = await client.post(
        f"/api/v1/channels/{first}/voice/join", json={"self_mute": False}, headers=ana.headers
    )
    rest_session = r.json()["data"]["voice_state"]["session_id"]
    session = await gateway_session(server, ana)
    await voice(server).gateway_voice_state(session, _op9(space_id, first))
    state = voice(server).state_of(int(ana.id))
    assert state is not None
    assert state.session_id == rest_session
    assert state.owner_session == session.session_id


async def test_op9_move_and_leave(server: ServerHandle, client: httpx.AsyncClient) -> None:
    ana, _, _, space_id, first, second = await _world(server, client)
    session = await gateway_session(server, ana)
    service = voice(server)
    await service.gateway_voice_state(session, _op9(space_id, first))
    with server.ctx.bus.subscribed() as sub:
        await service.gateway_voice_state(session, _op9(space_id, second))
        moved = await next_event(sub, "voice.state_update")
        await service.gateway_voice_state(session, _op9(space_id, None))
        left = await next_event(sub, "voice.state_update")
    assert moved.data["channel_id"] == str(second)
    assert left.data["channel_id"] is None
    assert left.channel_id == second
    assert service.state_of(int(ana.id)) is None
    # Leaving while not in voice changes nothing.
    with server.ctx.bus.subscribed() as sub:
        await service.gateway_voice_state(session, {"channel_id": None})
        assert drain(sub) == []


async def test_clean_close_ends_at_once_unclean_after_grace(
    server: ServerHandle, client: httpx.AsyncClient
) -> None:
    ana, bob, _, space_id, first, _ = await _world(server, client)
    service = voice(server)
    ana_session = await gateway_session(server, ana)
    bob_session = await gateway_session(server, bob)
    await service.gateway_voice_state(ana_session, _op9(space_id, first))
    await service.gateway_voice_state(bob_session, _op9(space_id, first))
    with server.ctx.bus.subscribed() as sub:
        await service.gateway_session_ended(ana_session, clean=True)
        left = events(drain(sub), "voice.state_update")
        assert [e.data["user_id"] for e in left] == [ana.id]
        started = trio.current_time()
        await service.gateway_session_ended(bob_session, clean=False)
        assert service.state_of(int(bob.id)) is not None
        gone = await next_event(sub, "voice.state_update", lambda e: e.data["user_id"] == bob.id)
    assert gone.data["channel_id"] is None
    assert trio.current_time() - started >= 0.25  # ACCORD_VOICE_GRACE_S=0.3


async def test_resume_within_grace_keeps_the_state(
    server: ServerHandle, client: httpx.AsyncClient
) -> None:
    ana, _, _, space_id, first, _ = await _world(server, client)
    service = voice(server)
    session = await gateway_session(server, ana)
    await service.gateway_voice_state(session, _op9(space_id, first))
    with server.ctx.bus.subscribed() as sub:
        await service.gateway_session_ended(session, clean=False)
        await trio.sleep(0.1)
        await service.gateway_session_resumed(session)
        await trio.sleep(0.5)
        assert events(drain(sub), "voice.state_update") == []
    state = service.state_of(int(ana.id))
    assert state is not None
    assert state.owner_session == session.session_id


async def test_signals_reach_only_intended_peers(
    server: ServerHandle, client: httpx.AsyncClient
) -> None:
    ana, bob, cid, space_id, first, second = await _world(server, client)
    service = voice(server)
    sessions = {a.username: await gateway_session(server, a) for a in (ana, bob, cid)}
    await service.gateway_voice_state(sessions["ana"], _op9(space_id, first))
    await service.gateway_voice_state(sessions["bob"], _op9(space_id, first))
    await service.gateway_voice_state(sessions["cid"], _op9(space_id, second))
    with server.ctx.bus.subscribed() as sub:
        await service.gateway_voice_signal(
            sessions["ana"], {"type": "offer", "payload": {"sdp": "v=0"}}
        )
        delivered = events(drain(sub), "voice.signal")
    # To the other participant of the channel only: not the sender, not cid in another channel.
    assert [e.session_id for e in delivered] == [sessions["bob"].session_id]
    assert delivered[0].space_id is None
    assert delivered[0].data == {
        "user_id": ana.id,
        "session_id": sessions["ana"].session_id,
        "channel_id": str(first),
        "space_id": str(space_id),
        "signal_type": "offer",
        "type": "offer",
        "payload": {"sdp": "v=0"},
    }
    with server.ctx.bus.subscribed() as sub:
        payload: dict[str, Any] = {
            "signal_type": "ice_candidate",
            "payload": None,
            "target_user_id": bob.id,
        }
        await service.gateway_voice_signal(sessions["ana"], payload)
        targeted = events(drain(sub), "voice.signal")
        # A target outside the sender's channel gets nothing.
        payload = {"signal_type": "offer", "payload": {}, "target_user_id": cid.id}
        await service.gateway_voice_signal(sessions["ana"], payload)
        assert events(drain(sub), "voice.signal") == []
    assert [e.session_id for e in targeted] == [sessions["bob"].session_id]
    assert targeted[0].data["signal_type"] == "ice_candidate"


async def test_bad_and_excess_signals_are_dropped(
    server: ServerHandle, client: httpx.AsyncClient
) -> None:
    ana, bob, cid, space_id, first, _ = await _world(server, client)
    service = voice(server)
    ana_session = await gateway_session(server, ana)
    bob_session = await gateway_session(server, bob)
    cid_session = await gateway_session(server, cid)
    await service.gateway_voice_state(ana_session, _op9(space_id, first))
    await service.gateway_voice_state(bob_session, _op9(space_id, first))
    big = "x" * (MAX_SIGNAL_PAYLOAD_BYTES + 1)
    bad: list[tuple[Any, dict[str, Any]]] = [
        (ana_session, {"type": "offer", "payload": {"sdp": big}}),
        (ana_session, {"payload": {}}),
        (ana_session, {"type": "no spaces allowed", "payload": {}}),
        (ana_session, {"type": 5, "payload": {}}),
        (ana_session, {"type": "offer", "payload": {}, "channel_id": "123"}),
        (cid_session, {"type": "offer", "payload": {}}),  # not in voice
    ]
    with server.ctx.bus.subscribed() as sub:
        for session, data in bad:
            await service.gateway_voice_signal(session, data)
        assert events(drain(sub), "voice.signal") == []
        for _ in range(SIGNAL_BURST + 50):
            await service.gateway_voice_signal(bob_session, {"type": "ice", "payload": {}})
        delivered = events(drain(sub), "voice.signal")
    assert SIGNAL_BURST <= len(delivered) < SIGNAL_BURST + 10
    assert service.signal_drops["rate"] > 0
    assert service.signal_drops["size"] == 1


async def test_membership_loss_ends_voice(server: ServerHandle, client: httpx.AsyncClient) -> None:
    from accord.events.types import SessionControl

    ana, bob, _, space_id, first, _ = await _world(server, client)
    session = await gateway_session(server, bob)
    await voice(server).gateway_voice_state(session, _op9(space_id, first))
    await server.ctx.db.write(
        lambda conn: conn.execute(
            "DELETE FROM members WHERE space_id = ? AND user_id = ?", (space_id, int(bob.id))
        )
    )
    with server.ctx.bus.subscribed() as sub:
        server.ctx.publish(
            SessionControl(kind="membership_changed", user_id=int(bob.id), space_id=space_id)
        )
        left = await next_event(sub, "voice.state_update")
    assert left.data == {**left.data, "user_id": bob.id, "channel_id": None}
    # A deleted channel ends the states in it.
    ana_session = await gateway_session(server, ana)
    await voice(server).gateway_voice_state(ana_session, _op9(space_id, first))
    await server.ctx.db.write(
        lambda conn: conn.execute("DELETE FROM channels WHERE id = ?", (first,))
    )
    with server.ctx.bus.subscribed() as sub:
        server.ctx.publish(Event("channel.delete", {"id": str(first)}, space_id=space_id))
        left = await next_event(sub, "voice.state_update")
    assert left.data["user_id"] == ana.id
    assert left.data["channel_id"] is None
