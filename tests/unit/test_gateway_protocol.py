"""The sans-I/O gateway core: frame decoding, the handshake state machine and its deadlines,
inbound limits, the outbox (seq, bounded queue, replay) and presence parsing."""

from __future__ import annotations

import json
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from accord.gateway import protocol as proto
from accord.gateway.close_codes import FATAL, CloseCode
from accord.gateway.outbox import Outbox
from accord.gateway.presence import Presence, PresenceError, parse_presence

LIMITS = proto.Limits(
    heartbeat_interval_ms=1000, identify_timeout_s=5, max_frame_bytes=1024, inbound_per_minute=5
)
IDENTIFY = '{"op":2,"data":{"token":"Bearer t","intents":["messages"]}}'


def active(now: float = 0.0) -> proto.GatewayProtocol:
    p = proto.GatewayProtocol(LIMITS, now)
    [command] = p.receive(IDENTIFY, now)
    assert isinstance(command, proto.Identify)
    p.authenticated(now)
    return p


def close_of(commands: list[proto.Command]) -> tuple[CloseCode, bool]:
    [command] = commands
    assert isinstance(command, proto.Close)
    return command.code, command.invalid_session


def test_hello_and_frames() -> None:
    p = proto.GatewayProtocol(LIMITS, 0)
    assert orjson.loads(p.hello()) == {"op": 5, "data": {"heartbeat_interval": 1000}}
    prefix = proto.dispatch_prefix("message.create", {"a": "é"})
    assert orjson.loads(proto.stamp(prefix, 7)) == {
        "op": 0,
        "type": "message.create",
        "data": {"a": "é"},
        "seq": 7,
    }
    assert orjson.loads(proto.dispatch_frame("x", {})) == {"op": 0, "type": "x", "data": {}}


def test_identify_parses_token_intents_and_presence() -> None:
    p = proto.GatewayProtocol(LIMITS, 0)
    frame = '{"op":2,"data":{"token":"Bot x","intents":["a","b"],"presence":{"status":"dnd"}}}'
    [command] = p.receive(frame, 0)
    assert command == proto.Identify("Bot x", frozenset({"a", "b"}), Presence("dnd"))
    assert p.phase is proto.Phase.AUTHENTICATING
    assert close_of(p.receive(IDENTIFY, 0)) == (CloseCode.ALREADY_AUTHENTICATED, False)


@pytest.mark.parametrize(
    ("frame", "expected"),
    [
        ("nope", (CloseCode.DECODE_ERROR, True)),
        ('{"op":2}', (CloseCode.DECODE_ERROR, True)),
        ('{"op":2,"data":{"token":1}}', (CloseCode.DECODE_ERROR, True)),
        ('{"op":2,"data":{"token":"x","intents":7}}', (CloseCode.INVALID_INTENTS, True)),
        ('{"op":3,"data":{"token":"x","session_id":"1","seq":-1}}', (CloseCode.DECODE_ERROR, True)),
        ('{"op":4}', (CloseCode.UNKNOWN_OPCODE, True)),
        ('{"op":42}', (CloseCode.UNKNOWN_OPCODE, True)),
    ],
)
def test_bad_input_before_ready(frame: str, expected: tuple[CloseCode, bool]) -> None:
    assert close_of(proto.GatewayProtocol(LIMITS, 0).receive(frame, 0)) == expected


def test_before_ready_heartbeats_are_acked_and_ops_8_to_11_ignored() -> None:
    p = proto.GatewayProtocol(LIMITS, 0)
    assert p.receive('{"op":1}', 0) == [proto.Heartbeat()]
    for op in (8, 9, 10, 11):
        assert p.receive(f'{{"op":{op},"data":{{}}}}', 0) == []
    assert p.receive(b"binary", 0) == []
    assert p.phase is proto.Phase.AWAITING_IDENTIFY


def test_bad_input_after_ready() -> None:
    decode_error = (CloseCode.DECODE_ERROR, False)
    assert close_of(active().receive("[]", 0)) == decode_error
    assert close_of(active().receive('{"op":12}', 0)) == (CloseCode.UNKNOWN_OPCODE, False)
    assert close_of(active().receive('{"op":8,"data":3}', 0)) == decode_error
    assert close_of(active().receive('{"op":10,"data":{"space_id":"x"}}', 0)) == decode_error
    assert close_of(active().receive(IDENTIFY, 0)) == (CloseCode.ALREADY_AUTHENTICATED, False)
    assert close_of(active().receive("x" * 1025, 0)) == decode_error
    assert close_of(active().receive("é" * 600, 0)) == decode_error  # bytes count, not chars


def test_active_commands() -> None:
    p = active()
    assert p.receive('{"op":8,"data":{"status":"idle"}}', 0) == [
        proto.UpdatePresence({"status": "idle"})
    ]
    assert p.receive('{"op":9,"data":{"space_id":"1"}}', 0) == [
        proto.VoiceStateUpdate({"space_id": "1"})
    ]
    frame = '{"op":10,"data":{"space_id":"5","query":"a","limit":3,"user_ids":["7"],"nonce":"n"}}'
    assert p.receive(frame, 0) == [proto.RequestMembers(5, "a", 3, (7,), "n")]


def test_inbound_rate_limit_exempts_heartbeats_and_resets_each_minute() -> None:
    p = active()
    for _ in range(50):
        assert p.receive('{"op":1}', 0) == [proto.Heartbeat()]
    for _ in range(4):  # IDENTIFY was the first of the window's 5
        assert p.receive('{"op":8,"data":{}}', 1) == [proto.UpdatePresence({})]
    assert close_of(p.receive('{"op":8,"data":{}}', 2)) == (CloseCode.RATE_LIMITED, False)
    q = active()
    for minute in range(1, 4):
        for _ in range(5):
            assert q.receive('{"op":8,"data":{}}', minute * 60.0) == [proto.UpdatePresence({})]


def test_voice_signals_have_their_own_bucket_and_are_dropped_when_over() -> None:
    p = active()
    accepted = sum(bool(p.receive('{"op":11,"data":{}}', 0)) for _ in range(300))
    assert accepted == 200
    assert p.receive('{"op":11,"data":{}}', 0.1) == [proto.VoiceSignal({})]  # refilled 5


def test_voice_state_updates_have_their_own_bucket_and_the_latest_extra_one_waits() -> None:
    p = proto.GatewayProtocol(
        proto.Limits(identify_timeout_s=5, max_frame_bytes=1024, inbound_per_minute=1000), 0
    )
    p.receive(IDENTIFY, 0)
    p.authenticated(0)

    def op9(n: int) -> str:
        return json.dumps({"op": 9, "data": {"n": n}})

    results = [p.receive(op9(n), 0) for n in range(20)]
    assert results[:5] == [[proto.VoiceStateUpdate({"n": n})] for n in range(5)]
    assert proto.VOICE_STATE_BURST == 5
    assert results[5] == [proto.DeferVoiceState(2.0)]  # 0.5 per second: 2 s to a token
    assert all(r == [] for r in results[6:])  # already deferred: the latest replaces it
    assert p.take_deferred_voice_state(1.5) == [proto.DeferVoiceState(0.5)]  # not yet
    assert p.take_deferred_voice_state(2.0) == [proto.VoiceStateUpdate({"n": 19})]
    assert p.take_deferred_voice_state(2.0) == []  # nothing left waiting
    assert p.receive(op9(20), 2.0) == [proto.DeferVoiceState(2.0)]
    assert p.take_deferred_voice_state(4.0) == [proto.VoiceStateUpdate({"n": 20})]
    assert sum(bool(p.receive(op9(0), 100)) for _ in range(5)) == 5  # refills to the burst
    assert p.is_active  # never closed for it
    # Held-back updates still count against the inbound limit: a flood still ends in 4008.
    q = active()
    for _ in range(4):
        q.receive(op9(0), 0)
    assert close_of(q.receive(op9(0), 0)) == (CloseCode.RATE_LIMITED, False)


def test_deadlines() -> None:
    p = proto.GatewayProtocol(LIMITS, 0)
    assert p.check(4.9) is None
    assert p.check(5.0) == proto.Close(CloseCode.NOT_AUTHENTICATED, invalid_session=True)
    a = active(10)
    a.receive('{"op":1}', 11.5)
    assert a.check(13.4) is None
    assert a.check(13.6) == proto.Close(CloseCode.SESSION_TIMED_OUT)
    r = proto.GatewayProtocol(LIMITS, 0)
    r.receive('{"op":3,"data":{"token":"x","session_id":"1"}}', 0)
    assert r.resume_failed(1) == proto.Send(proto.INVALID_SESSION)
    assert r.check(5.9) is None
    assert r.check(6.0) == proto.Close(CloseCode.SESSION_TIMED_OUT)


def test_fatal_codes_are_the_clients() -> None:
    assert {int(c) for c in FATAL} == {4003, 4004, 4012, 4013, 4014}


def test_versions() -> None:
    assert proto.is_supported_version({})
    assert proto.is_supported_version({"v": "1", "encoding": "json"})
    assert not proto.is_supported_version({"v": "2"})
    assert not proto.is_supported_version({"encoding": "etf"})


@given(st.one_of(st.text(max_size=300), st.binary(max_size=300)))
def test_any_input_yields_commands_never_exceptions(message: str | bytes) -> None:
    for p in (proto.GatewayProtocol(LIMITS, 0), active()):
        assert isinstance(p.receive(message, 0), list)


@given(
    st.dictionaries(
        st.sampled_from(["op", "data", "seq", "type"]),
        st.one_of(
            st.none(),
            st.integers(-5, 300),
            st.text(max_size=5),
            st.lists(st.integers(-(2**63), 2**63 - 1), max_size=2),
            st.dictionaries(st.sampled_from(["token", "intents", "space_id", "limit"]), st.text()),
        ),
    )
)
def test_any_envelope_yields_commands_never_exceptions(envelope: dict[str, Any]) -> None:
    for p in (proto.GatewayProtocol(LIMITS, 0), active()):
        assert isinstance(p.receive(orjson.dumps(envelope).decode(), 0), list)


# -- outbox ---------------------------------------------------------------------------------------


def outbox(max_pending: int = 3, max_pending_chars: int = 10_000, max_direct: int = 256) -> Outbox:
    return Outbox(
        max_pending=max_pending,
        max_pending_chars=max_pending_chars,
        replay_frames=4,
        replay_age_s=60,
        max_direct=max_direct,
    )


def test_outbox_stamps_in_order_and_sends_direct_frames_first() -> None:
    box = outbox()
    assert box.push_event("A", 0)
    assert box.push_event("B", 0)
    assert box.push_direct("D")
    assert [box.pop(0), box.pop(0), box.pop(0), box.pop(0)] == ["D", "A2}", "B3}", None]


def test_outbox_overflow_by_count_and_by_size() -> None:
    box = outbox()
    assert all(box.push_event("x", 0) for _ in range(3))
    assert not box.push_event("x", 0)
    big = outbox(max_pending_chars=10)
    assert big.push_event("x" * 10, 0)
    assert not big.push_event("x", 0)


def test_outbox_coalesces_acks_and_bounds_direct_frames() -> None:
    box = outbox(max_direct=2)
    assert box.push_direct(proto.HEARTBEAT_ACK)
    assert box.push_direct(proto.HEARTBEAT_ACK)
    assert box.pending == 1
    assert box.push_direct("x")
    assert not box.push_direct("y")


def test_outbox_replay_by_count_and_age() -> None:
    box = outbox()
    for name in "ABCDEF":
        box.push_event(name, 0)
        box.pop(0)
    assert box.replay_after(7, 0) == []
    assert box.replay_after(5, 0) == ["E6}", "F7}"]
    assert box.replay_after(3, 0) == ["C4}", "D5}", "E6}", "F7}"]
    assert box.replay_after(2, 0) is None  # B3 fell out of the 4-frame buffer
    assert box.replay_after(8, 0) is None  # never issued
    assert box.replay_after(5, 61) is None  # too old


def test_parked_outbox_keeps_collecting_for_replay() -> None:
    box = outbox()
    box.push_event("A", 0)
    box.detach(0)
    for name in "BC":
        assert box.push_event(name, 0)  # no overflow while parked
    assert box.replay_after(1, 0) == ["A2}", "B3}", "C4}"]
    box.attach()
    assert box.pop(0) is None
    box.push_event("D", 0)
    assert box.pop(0) == "D5}"


# -- presence -------------------------------------------------------------------------------------


def test_presence_statuses() -> None:
    assert parse_presence({"status": "idle"}).status == "idle"
    assert parse_presence({"status": "offline"}).published_status == "offline"
    assert parse_presence({"status": "invisible"}).to_wire(1)["client_status"] == {}
    assert parse_presence({"status": 5}).status == "online"
    assert parse_presence({}, fallback=Presence("dnd")).status == "dnd"


def test_presence_activities() -> None:
    presence = parse_presence({"status": "online", "activity": {"name": "x"}})
    assert presence.activities == (
        {
            "name": "x",
            "type": "playing",
            "url": None,
            "state": None,
            "details": None,
            "timestamps": None,
            "assets": None,
        },
    )
    assert (
        parse_presence({"activities": [{"name": "a"}, {"name": "b"}]}).activities[1]["name"] == "b"
    )
    for bad in (
        {"activity": 3},
        {"activity": {"name": 3}},
        {"activities": "x"},
        {"activity": {"name": "x", "url": 1}},
    ):
        with pytest.raises(PresenceError):
            parse_presence(bad)
