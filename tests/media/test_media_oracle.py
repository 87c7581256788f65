"""The reference forwarder as oracle, and fuzzing of live forwarders.

`test_cython_matches_the_reference` replays one scripted mix of valid, mutated, truncated,
replayed, spoofed and random datagrams (and commands between chunks) into both forwarders and
requires identical counters and byte-identical output at every receiver. The Hypothesis test
throws random and mutated datagrams at a live forwarder of each kind and checks that it only
ever forwards authentic packets to room mates and stays healthy.
"""

from __future__ import annotations

import functools
import random
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from accord.media.forward import IMPLEMENTATIONS, ForwarderApi
from accord.media.rtp import parse_rtp_header
from accord.media.stun import build_binding_request, parse_stun_message, xor_mapped_address
from tests.media.media_client import MediaClient, wait_until

CHUNK = 40


def _mutations(rng: random.Random, packet: bytes) -> bytes:
    choice = rng.randrange(6)
    data = bytearray(packet)
    if choice == 0:  # flip one byte anywhere (header, payload or tag)
        data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
    elif choice == 1:  # truncate
        del data[rng.randrange(len(data)) :]
    elif choice == 2:  # set CSRC count / extension bits
        data[0] = (data[0] & 0xC0) | rng.randrange(64)
    elif choice == 3:  # append junk
        data += rng.randbytes(rng.randrange(1, 40))
    elif choice == 4:  # random bytes behind a plausible first byte
        data = bytearray([rng.choice([0x00, 0x01, 0x16, 0x80, 0x90, 0xA0])]) + rng.randbytes(
            rng.randrange(0, 200)
        )
    else:  # pure noise
        data = bytearray(rng.randbytes(rng.randrange(0, 300)))
    return bytes(data)


Step = tuple[str, Any]


def _script(profile: str, seed: int) -> tuple[list[tuple[int, int, int, bytes, bytes]], list[Step]]:
    """Participants (pid, room, ssrc, send_key, recv_key) and a list of steps to replay."""
    rng = random.Random(seed)
    key_bytes = 28 if profile == "AEAD_AES_128_GCM" else 30
    people = [
        (pid, 1 if pid < 4 else 2, 1000 + pid, rng.randbytes(key_bytes), rng.randbytes(key_bytes))
        for pid in range(1, 6)
    ]
    clients = {
        pid: MediaClient(1, ssrc, profile, send_key, recv_key)
        for pid, _, ssrc, send_key, recv_key in people
    }
    steps: list[Step] = []
    for pid, client in clients.items():
        if pid != 5:  # pid 5 stays unlatched
            steps.append(("send", (pid, client._tx.protect_rtcp(_rr(client.ssrc)))))
    # Room 2: pid 4 speaks before pid 5 has latched.
    steps.append(("send", (4, clients[4].protect_rtp(b"early" * 32))))
    steps.append(("sync", None))
    history: list[bytes] = []
    for round_ in range(12):
        for _ in range(CHUNK):
            pid = rng.randrange(1, 6)
            client = clients[pid]
            roll = rng.random()
            if roll < 0.45:
                packet = client.protect_rtp(rng.randbytes(rng.randrange(20, 200)))
                history.append(packet)
            elif roll < 0.5:
                packet = client._tx.protect_rtcp(_sr(client.ssrc))
            elif roll < 0.55 and history:
                packet = rng.choice(history)  # replay, possibly from another socket
            elif roll < 0.6:
                other = clients[rng.randrange(1, 6)]
                packet = client.protect_rtp(b"spoof" * 10, ssrc=other.ssrc)
            elif roll < 0.65:
                packet = build_binding_request(rng.randbytes(12))
            else:
                packet = _mutations(rng, client.protect_rtp(rng.randbytes(160)))
            steps.append(("send", (pid, packet)))
        steps.append(("sync", None))
        if round_ == 4:
            steps.append(("state", (2, True, False)))
        if round_ == 6:
            steps.append(("state", (3, False, True)))
        if round_ == 8:
            steps.append(("remove", 4))
    for client in clients.values():
        client.close()
    return people, steps


def _rr(ssrc: int) -> bytes:
    from accord.media.rtcp import build_receiver_report

    return build_receiver_report(ssrc)


def _sr(ssrc: int) -> bytes:
    from accord.media.rtcp import build_sender_report

    return build_sender_report(ssrc, ntp=5, rtp_timestamp=6, packets=7, octets=8)


def _has_received(fwd: ForwarderApi, count: int) -> bool:
    return fwd.stats()["packets_in"] == count


def _normalise(client: MediaClient, datagram: bytes) -> bytes:
    """STUN answers carry the client's (per-run) port: check it, keep the transaction id."""
    if datagram[0] > 3:
        return datagram
    answer = parse_stun_message(datagram)
    assert xor_mapped_address(answer) == client.address
    return b"STUN" + answer.transaction_id


def _replay(
    factory: Callable[[str, int], ForwarderApi],
    people: list[tuple[int, int, int, bytes, bytes]],
    steps: list[Step],
    profile: str,
) -> tuple[dict[str, Any], dict[int, dict[str, Any]], dict[int, list[bytes]]]:
    fwd = factory("127.0.0.1", 0)
    fwd.start()
    sockets = {}
    received: dict[int, list[bytes]] = {pid: [] for pid, *_ in people}
    try:
        for pid, room, ssrc, send_key, recv_key in people:
            fwd.add_participant(pid, room, ssrc, profile, send_key, recv_key)
            sockets[pid] = MediaClient(fwd.port, ssrc, profile, send_key, recv_key)
        sent = 0

        def drain() -> None:
            # Once packets_in counts a datagram, the loop has sent everything it caused
            # (counters are read under the lock the loop holds until its sends return).
            for pid, client in sockets.items():
                client.sock.settimeout(0.0)
                try:
                    while True:
                        received[pid].append(_normalise(client, client.sock.recv(4096)))
                except BlockingIOError:
                    pass

        for kind, arg in steps:
            if kind == "send":
                pid, packet = arg
                sockets[pid].send_raw(packet)
                sent += 1
            elif kind == "sync":
                wait_until(functools.partial(_has_received, fwd, sent))
                drain()
            elif kind == "state":
                fwd.set_state(*arg)
            elif kind == "remove":
                assert fwd.remove_participant(arg)
        stats: dict[str, Any] = dict(fwd.stats())
        del stats["busy_ratio"]
        per: dict[int, dict[str, Any]] = {}
        for pid in sockets:
            try:
                one: dict[str, Any] = dict(fwd.participant_stats(pid))
            except KeyError:
                continue
            one["latched"] = one.pop("address") is not None
            per[pid] = one
        return stats, per, received
    finally:
        fwd.stop()
        for client in sockets.values():
            client.close()


@pytest.mark.skipif("cython" not in IMPLEMENTATIONS, reason="the extension is not built")
@pytest.mark.parametrize("seed", [1, 2])
def test_cython_matches_the_reference(profile: str, seed: int) -> None:
    people, steps = _script(profile, seed)
    ours = _replay(IMPLEMENTATIONS["cython"], people, steps, profile)
    oracle = _replay(IMPLEMENTATIONS["reference"], people, steps, profile)
    assert ours[0] == oracle[0]
    assert ours[1] == oracle[1]
    assert ours[2] == oracle[2]
    # The script really exercised the interesting paths.
    stats = oracle[0]
    for name in (
        "rtp_out",
        "rtcp_out",
        "rtcp_consumed",
        "stun_answered",
        "drop_malformed",
        "drop_unsupported",
        "drop_auth_failed",
        "drop_replay",
        "drop_muted",
        "drop_deafened",
        "drop_unlatched",
        "drop_unknown_ssrc",
    ):
        assert stats[name] > 0, name


@pytest.fixture(scope="module", params=sorted(IMPLEMENTATIONS))
def fuzz_room(
    request: pytest.FixtureRequest,
) -> Iterator[tuple[ForwarderApi, MediaClient, MediaClient]]:
    """One forwarder with a room of two, shared by every Hypothesis example."""
    forwarder = IMPLEMENTATIONS[request.param]("127.0.0.1", 0)
    forwarder.start()
    clients = []
    try:
        for pid in (1, 2):
            send_key, recv_key = bytes([pid]) * 28, bytes([pid + 10]) * 28
            forwarder.add_participant(pid, 1, 500 + pid, "AEAD_AES_128_GCM", send_key, recv_key)
            client = MediaClient(forwarder.port, 500 + pid, "AEAD_AES_128_GCM", send_key, recv_key)
            client.send_receiver_report()
            clients.append(client)
        wait_until(lambda: forwarder.participant_stats(2)["address"] is not None)
        yield forwarder, clients[0], clients[1]
    finally:
        forwarder.stop()
        for client in clients:
            client.close()


def _flip(valid: bytes, index: int, mask: int, tail: bytes) -> bytes:
    return valid[:index] + bytes([valid[index] ^ mask]) + valid[index + 1 :] + tail


@settings(max_examples=25, deadline=None)
@given(data=st.data())
def test_live_forwarder_survives_random_datagrams(
    fuzz_room: tuple[ForwarderApi, MediaClient, MediaClient], data: st.DataObject
) -> None:
    forwarder, alice, bob = fuzz_room
    valid = alice.protect_rtp(b"v" * 160)
    datagrams = data.draw(
        st.lists(
            st.binary(max_size=1600)
            | st.builds(
                _flip,
                st.just(valid),
                st.integers(0, len(valid) - 1),
                st.integers(1, 255),
                st.binary(max_size=8),
            ),
            max_size=20,
        )
    )
    before = forwarder.stats()["packets_in"]
    for datagram in datagrams:
        alice.send_raw(datagram)
    wait_until(lambda: forwarder.stats()["packets_in"] == before + len(datagrams))
    # Whatever bob got must be authentic media from alice under bob's key.
    bob.sock.settimeout(0.0)
    try:
        while True:
            plain = bob.unprotect_rtp(bob.sock.recv(4096))
            assert parse_rtp_header(plain).ssrc == alice.ssrc
    except BlockingIOError:
        pass
    assert forwarder.is_running
    alice.send_rtp(b"alive" + bytes(155))
    assert bob.recv_rtp(1)[0].payload.startswith(b"alive")
