"""Pure cores of the SFU control plane: join tokens (MEDIA.md 5a), node allocation and region
listing (VOICE.md 7.4, RT-34), endpoint normalisation (D15b), registration backoff (RT-41)."""

from __future__ import annotations

import contextlib
import hashlib
import random

import jwt
import pytest
from hypothesis import given
from hypothesis import strategies as st

from accord.errors import ValidationError
from accord.models.sfu_nodes import SfuNode
from accord.sfu.backoff import Backoff
from accord.sfu.sessions import NodeParticipant, SessionTable
from accord.voice.allocation import (
    choose_node,
    control_url_for,
    normalize_endpoint,
    voice_regions,
)
from accord.voice.join_token import (
    JoinTokenError,
    UsedTokenIds,
    sign_join_token,
    verify_join_token,
)

SECRET = "node-secret"
NOW = 1_800_000_000.0


def _token(**overrides: object) -> str:
    args: dict[str, object] = {
        "user_id": 7,
        "session_id": "s1",
        "channel_id": 9,
        "space_id": 3,
        "node_id": "sfu-1",
        "speak": True,
        "now": NOW,
    }
    args.update(overrides)
    return sign_join_token(SECRET, **args)  # type: ignore[arg-type]


def test_join_token_round_trip() -> None:
    claims = verify_join_token(SECRET, _token(), node_id="sfu-1", now=NOW + 59)
    assert (claims.user_id, claims.session_id, claims.channel_id, claims.space_id) == (
        "7",
        "s1",
        "9",
        "3",
    )
    assert claims.speak is True
    assert claims.deaf is False
    assert claims.expires_at - claims.issued_at == 60
    assert claims.token_id
    assert verify_join_token(SECRET, _token(deaf=True), node_id="sfu-1", now=NOW).deaf is True


def test_deaf_claim_is_optional_but_typed() -> None:
    key = hashlib.sha256(b"accord sfu join token v1\x00" + SECRET.encode()).digest()
    base = {
        "sub": "1",
        "session_id": "s",
        "channel_id": "2",
        "space_id": None,
        "node_id": "sfu-1",
        "speak": True,
        "iat": int(NOW),
        "exp": int(NOW) + 60,
        "jti": "j",
    }
    older = jwt.encode(base, key, algorithm="HS256")  # signed before the claim existed
    assert verify_join_token(SECRET, older, node_id="sfu-1", now=NOW).deaf is False
    wrong = jwt.encode({**base, "deaf": "yes"}, key, algorithm="HS256")
    with pytest.raises(JoinTokenError):
        verify_join_token(SECRET, wrong, node_id="sfu-1", now=NOW)


@pytest.mark.parametrize(
    ("token", "node", "now", "reason"),
    [
        (_token(), "sfu-2", NOW, "wrong_node"),
        (_token(), "sfu-1", NOW + 60, "expired"),
        (sign_join_token("other-secret", user_id=1, session_id="s", channel_id=1,
                         space_id=None, node_id="sfu-1", speak=False, now=NOW),
         "sfu-1", NOW, "invalid"),
        ("not.a.jwt", "sfu-1", NOW, "invalid"),
        ("", "sfu-1", NOW, "invalid"),
    ],
)  # fmt: skip
def test_join_token_refusals(token: str, node: str, now: float, reason: str) -> None:
    with pytest.raises(JoinTokenError) as info:
        verify_join_token(SECRET, token, node_id=node, now=now)
    assert info.value.reason == reason


def test_forged_claims_and_reuse_are_refused() -> None:
    forged = jwt.encode({"sub": "1"}, SECRET * 4, algorithm="HS256")  # not the derived key
    with pytest.raises(JoinTokenError):
        verify_join_token(SECRET, forged, node_id="sfu-1", now=NOW)
    used = UsedTokenIds()
    claims = verify_join_token(SECRET, _token(), node_id="sfu-1", now=NOW)
    used.claim(claims, NOW)
    with pytest.raises(JoinTokenError) as info:
        used.claim(claims, NOW + 1)
    assert info.value.reason == "reused"
    used.claim(verify_join_token(SECRET, _token(), node_id="sfu-1", now=NOW), NOW)
    assert len(used) == 2
    used.claim(
        verify_join_token(SECRET, _token(now=NOW + 100), node_id="sfu-1", now=NOW + 100), NOW + 100
    )
    assert len(used) == 1  # expired ids are forgotten


@given(st.text(max_size=300))
def test_verify_never_raises_anything_else(garbage: str) -> None:
    with contextlib.suppress(JoinTokenError):
        verify_join_token(SECRET, garbage, node_id="sfu-1", now=NOW)


def _node(node_id: str, region: str, load: int, capacity: int = 10) -> SfuNode:
    return SfuNode(node_id, f"ws://{node_id}/ws", region, capacity, load, "online", "")


def test_allocation_by_region_then_load_then_capacity() -> None:
    nodes = [_node("a", "eu", 5), _node("b", "eu", 2), _node("c", "us", 0), _node("d", "us", 9, 9)]
    assert choose_node(nodes, "eu") == nodes[1]  # region first, then least loaded
    assert choose_node(nodes, "us") == nodes[2]  # d is full
    assert choose_node(nodes, "ap") == nodes[2]  # unknown region: every region
    assert choose_node(nodes) == nodes[2]
    assert choose_node([nodes[3]]) is None  # only a full node
    ratio = [_node("big", "eu", 10, 100), _node("small", "eu", 2, 4)]
    assert choose_node(ratio) == ratio[0]  # ranked by load / capacity
    tied = [_node("x", "eu", 1), _node("y", "eu", 1)]
    picks = {choose_node(tied, rng=random.Random(seed)).id for seed in range(20)}  # type: ignore[union-attr]
    assert picks == {"x", "y"}  # ties are broken at random
    offline = [SfuNode("z", "ws://z/ws", "eu", 10, 0, "offline", "")]
    assert choose_node(offline) is None


def test_regions_are_deduplicated_with_optimal_first() -> None:
    nodes = [_node("a", "eu", 5), _node("b", "eu", 2), _node("c", "us", 0)]
    assert voice_regions(nodes, nodes[2]) == [
        {"id": "us", "name": "us", "optimal": True, "custom": False},
        {"id": "eu", "name": "eu", "optimal": False, "custom": False},
    ]
    assert voice_regions([], None)[0]["id"] == "us-east"


def test_endpoint_normalisation_and_control_url() -> None:
    assert normalize_endpoint("ws://sfu-1:4000") == "ws://sfu-1:4000/ws"
    assert normalize_endpoint("wss://sfu.example/media") == "wss://sfu.example/media"
    assert control_url_for("wss://sfu.example:8443/ws", None) == "https://sfu.example:8443"
    assert control_url_for("ws://a/ws", "http://10.0.0.1:9000/") == "http://10.0.0.1:9000"
    for bad in ("", "sfu-1:4000", "ftp://x", "ws://", "ws://h:0"):
        with pytest.raises(ValidationError):
            normalize_endpoint(bad)


def test_backoff_doubles_to_thirty_seconds() -> None:
    exact = Backoff(jitter=0)
    assert [exact.next_delay() for _ in range(8)] == [1, 2, 4, 8, 16, 30, 30, 30]
    exact.reset()
    assert exact.next_delay() == 1
    jittered = Backoff(rng=random.Random(1))
    for base in (1, 2, 4, 8, 16, 30, 30):
        assert base * 0.8 <= jittered.next_delay() <= base * 1.2


def test_session_table_load_end_and_memory() -> None:
    table = SessionTable()
    ended: list[str] = []
    first = NodeParticipant("s1", "7", "9", on_end=lambda: ended.append("s1"))
    table.add(first)
    table.add(NodeParticipant("s2", "8", "9"))
    assert table.load == 2
    assert table.ids() == ["s1", "s2"]
    assert table.end("s1", NOW) is True
    assert ended == ["s1"]
    assert table.was_ended("s1", NOW + 59)
    assert not table.was_ended("s1", NOW + 61)
    assert table.end("nope", NOW) is False
    assert table.remove(first) is False
    assert table.load == 1
