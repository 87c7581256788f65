"""Forwarding behaviour of both forwarders over real UDP on loopback (MEDIA.md 3-4).

Each test runs against the Cython loop and the pure-Python reference (the `forwarder`
fixture). Clients are blocking sockets with timeouts on every receive; counters are polled
under a deadline. Nothing here depends on timing beyond those bounded waits.
"""

from __future__ import annotations

import os
import struct
import time
from collections.abc import Iterator

import pytest

from accord.media.forward import ForwarderApi, ForwarderFactory, generate_key
from accord.media.rtcp import build_receiver_report
from accord.media.stun import build_binding_request, parse_stun_message, xor_mapped_address
from tests.media.media_client import MediaClient, Room, payload_for, wait_until

PACKETS = 20


@pytest.fixture
def room(forwarder: ForwarderApi) -> Iterator[Room]:
    r = Room(forwarder)
    yield r
    r.close()


def _processed(forwarder: ForwarderApi, count: int) -> None:
    wait_until(lambda: forwarder.stats()["packets_in"] >= count)


def test_each_participant_hears_exactly_the_others_in_its_room(
    forwarder: ForwarderApi, profile: str
) -> None:
    room = Room(forwarder, profile)
    try:
        clients = {pid: room.join(pid, room_id=1) for pid in (1, 2, 3)}
        loner = room.join(4, room_id=2)
        for index in range(PACKETS):
            for pid, client in clients.items():
                client.send_rtp(payload_for(pid, index))
            loner.send_rtp(payload_for(4, index))
        for pid, client in clients.items():
            got = client.recv_rtp(2 * PACKETS)
            by_sender: dict[int, list[bytes]] = {}
            for packet in got:
                by_sender.setdefault(packet.ssrc, []).append(packet.payload)
            others = {c.ssrc: other for other, c in clients.items() if other != pid}
            assert set(by_sender) == set(others)  # SSRCs are forwarded unchanged
            for ssrc, payloads in by_sender.items():
                expected = [payload_for(others[ssrc], i)[:12] for i in range(PACKETS)]
                assert [p[:12] for p in payloads] == expected  # intact and in order
                assert all(len(p) == 160 for p in payloads)
            client.assert_nothing_received()
        loner.assert_nothing_received()
        stats = forwarder.stats()
        assert stats["rtp_out"] == 3 * 2 * PACKETS
        assert stats["rtp_in"] == 4 * PACKETS
        assert stats["participants"] == 4
        assert stats["rooms"] == 2
        assert forwarder.participant_stats(1)["packets_out"] == 2 * PACKETS
    finally:
        room.close()


def test_payloads_survive_byte_for_byte(room: Room) -> None:
    alice, bob = room.join(1, 7), room.join(2, 7)
    payload = os.urandom(160)
    alice.send_rtp(payload)
    [packet] = bob.recv_rtp(1)
    assert packet.payload == payload
    assert packet.ssrc == alice.ssrc
    assert packet.sequence == alice.sequence


def test_muted_sender_latches_but_is_not_forwarded(forwarder: ForwarderApi, room: Room) -> None:
    alice = room.join(1, 1, latch=False)
    bob = room.join(2, 1)
    forwarder.set_state(1, muted=True, deafened=False)
    alice.send_rtp(b"x" * 160)
    _processed(forwarder, 2)
    bob.assert_nothing_received()
    alice_stats = forwarder.participant_stats(1)
    assert alice_stats["address"] == alice.address
    assert alice_stats["muted"] is True
    assert alice_stats["drop_muted"] == 1
    # Muted does not imply deaf: alice still hears bob.
    bob.send_rtp(b"y" * 160)
    assert alice.recv_rtp(1)[0].payload == b"y" * 160
    forwarder.set_state(1, muted=False, deafened=False)
    alice.send_rtp(b"z" * 160)
    assert bob.recv_rtp(1)[0].payload == b"z" * 160


def test_deafened_receiver_gets_nothing(forwarder: ForwarderApi, room: Room) -> None:
    alice, bob, carol = room.join(1, 1), room.join(2, 1), room.join(3, 1)
    forwarder.set_state(2, muted=False, deafened=True)
    alice.send_rtp(b"a" * 160)
    assert carol.recv_rtp(1)[0].payload == b"a" * 160
    bob.assert_nothing_received()
    assert forwarder.stats()["drop_deafened"] == 1
    # Deaf does not imply mute: bob is still heard.
    bob.send_rtp(b"b" * 160)
    assert alice.recv_rtp(1)[0].payload == b"b" * 160
    assert carol.recv_rtp(1)[0].payload == b"b" * 160


def test_wrong_key_forwards_nothing_and_never_latches(forwarder: ForwarderApi, room: Room) -> None:
    room.join(1, 1, latch=False)
    bob = room.join(2, 1)
    impostor = MediaClient(
        forwarder.port,
        room.clients[1].ssrc,
        room.profile,
        generate_key(room.profile),
        generate_key(room.profile),
    )
    try:
        for _ in range(5):
            impostor.send_rtp(b"x" * 160)
        _processed(forwarder, 6)
        bob.assert_nothing_received()
        assert forwarder.participant_stats(1)["address"] is None
        assert forwarder.participant_stats(1)["drop_auth_failed"] == 5
        assert forwarder.stats()["drop_auth_failed"] == 5
        assert forwarder.stats()["rtp_out"] == 0
    finally:
        impostor.close()


def test_spoofed_ssrc_neither_forwards_nor_hijacks_the_latch(
    forwarder: ForwarderApi, room: Room
) -> None:
    alice, bob, mallory = room.join(1, 1), room.join(2, 1), room.join(3, 1)
    alice_address = alice.address
    # Mallory is a real participant with her own valid keys but claims alice's SSRC.
    spoofed = mallory.protect_rtp(b"m" * 160, ssrc=alice.ssrc)
    for _ in range(3):
        mallory.send_raw(spoofed)
    _processed(forwarder, 6)
    bob.assert_nothing_received()
    alice.assert_nothing_received()
    assert forwarder.participant_stats(1)["address"] == alice_address
    assert forwarder.participant_stats(1)["drop_auth_failed"] == 3
    # Alice's own stream still reaches bob, and bob's reaches alice at her real address.
    alice.send_rtp(b"a" * 160)
    assert bob.recv_rtp(1)[0].payload == b"a" * 160
    bob.send_rtp(b"b" * 160)
    assert alice.recv_rtp(1)[0].payload == b"b" * 160


def test_nat_rebinding_moves_the_latch(forwarder: ForwarderApi, room: Room) -> None:
    alice, bob = room.join(1, 1), room.join(2, 1)
    alice.send_rtp(b"1" * 160)
    assert bob.recv_rtp(1)[0].payload == b"1" * 160
    old = alice.address
    alice.rebind()
    assert alice.address != old
    alice.send_rtp(b"2" * 160)
    assert bob.recv_rtp(1)[0].payload == b"2" * 160
    assert forwarder.participant_stats(1)["address"] == alice.address
    assert forwarder.participant_stats(1)["latch_moves"] == 1
    bob.send_rtp(b"3" * 160)
    assert alice.recv_rtp(1)[0].payload == b"3" * 160


def test_remove_participant_stops_forwarding(forwarder: ForwarderApi, room: Room) -> None:
    alice, bob, carol = room.join(1, 1), room.join(2, 1), room.join(3, 1)
    assert forwarder.remove_participant(2) is True
    assert forwarder.remove_participant(2) is False
    with pytest.raises(KeyError):
        forwarder.participant_stats(2)
    alice.send_rtp(b"a" * 160)
    assert carol.recv_rtp(1)[0].payload == b"a" * 160
    bob.assert_nothing_received()
    bob.send_rtp(b"b" * 160)
    wait_until(lambda: forwarder.stats()["drop_unknown_ssrc"] == 1)
    alice.assert_nothing_received()
    carol.assert_nothing_received()
    assert forwarder.stats()["participants"] == 2


def test_stun_binding_request_is_answered_and_never_latches(
    forwarder: ForwarderApi, room: Room
) -> None:
    alice = room.join(1, 1, latch=False)
    transaction_id = os.urandom(12)
    alice.send_raw(build_binding_request(transaction_id))
    answer = parse_stun_message(alice.recv_raw())
    assert answer.message_type == 0x0101
    assert answer.transaction_id == transaction_id
    assert xor_mapped_address(answer) == alice.address
    assert forwarder.participant_stats(1)["address"] is None
    assert forwarder.stats()["stun_answered"] == 1
    # A Binding response or indication arriving at the node is not answered.
    alice.send_raw(b"\x01\x01" + bytes(2) + struct.pack("!I", 0x2112A442) + transaction_id)
    alice.send_raw(b"\x00\x11" + bytes(2) + struct.pack("!I", 0x2112A442) + transaction_id)
    wait_until(lambda: forwarder.stats()["drop_unsupported"] == 2)
    alice.assert_nothing_received()


def test_sender_reports_are_forwarded_and_receiver_reports_consumed(
    forwarder: ForwarderApi, room: Room
) -> None:
    alice, bob = room.join(1, 1), room.join(2, 1)  # join() latched both with an RR
    assert forwarder.stats()["rtcp_consumed"] == 2
    plain = alice.send_sender_report()
    assert bob.unprotect_rtcp(bob.recv_raw()) == plain
    alice.send_receiver_report()
    wait_until(lambda: forwarder.stats()["rtcp_consumed"] == 3)
    bob.assert_nothing_received()
    stats = forwarder.stats()
    assert stats["rtcp_in"] == 4
    assert stats["rtcp_out"] == 1
    assert forwarder.participant_stats(2)["rtcp_out"] == 1


def test_listen_only_client_latches_with_a_receiver_report(
    forwarder: ForwarderApi, room: Room
) -> None:
    alice = room.join(1, 1)
    bob = room.join(2, 1, latch=False)
    alice.send_rtp(b"early" + bytes(155))
    wait_until(lambda: forwarder.stats()["drop_unlatched"] == 1)
    bob.send_raw(bob._tx.protect_rtcp(build_receiver_report(bob.ssrc)))
    wait_until(lambda: forwarder.participant_stats(2)["address"] is not None)
    alice.send_rtp(b"late" + bytes(156))
    assert bob.recv_rtp(1)[0].payload.startswith(b"late")


def test_replayed_packets_are_dropped(forwarder: ForwarderApi, room: Room) -> None:
    alice, bob = room.join(1, 1), room.join(2, 1)
    packet = alice.protect_rtp(b"r" * 160)
    for _ in range(3):
        alice.send_raw(packet)
    assert len(bob.recv_rtp(1)) == 1
    wait_until(lambda: forwarder.stats()["drop_replay"] == 2)
    bob.assert_nothing_received()


def _rtp_header(first: int, ssrc: int, extra: bytes = b"") -> bytes:
    return bytes([first, 111]) + struct.pack("!HII", 1, 2, ssrc) + extra


def test_malformed_and_unknown_packets_are_dropped_and_counted(
    forwarder: ForwarderApi, room: Room
) -> None:
    alice, bob = room.join(1, 1), room.join(2, 1)
    base = forwarder.stats()
    stranger = MediaClient(forwarder.port, 999, room.profile, alice.send_key, alice.recv_key)
    try:
        malformed = [
            _rtp_header(0x80, alice.ssrc)[:11],  # shorter than the RTP header
            _rtp_header(0x8F, alice.ssrc, bytes(20)),  # 15 CSRCs overrun
            _rtp_header(0x90, alice.ssrc, b"\xbe\xde\x00\x09" + bytes(8)),  # extension overrun
            _rtp_header(0x90, alice.ssrc, b"\xbe\xde"),  # extension header cut short
            b"\x80\xc9\x00\x01",  # RTCP shorter than 8 bytes
            bytes([0x80, 111]) + bytes(1598),  # larger than 1500 bytes
            bytes(19),  # STUN range, shorter than the header
            b"\x00\x01\x00\x04" + struct.pack("!I", 0x2112A442) + bytes(12),  # length lies
            b"\x00\x01\x00\x00" + bytes(16),  # wrong magic cookie
        ]
        unsupported = [b"", b"\x80", bytes([22]) + bytes(40), b"\xff" * 30, b"\x40" * 12]
        for data in malformed + unsupported:
            stranger.send_raw(data)
        flood = _rtp_header(0x80, 0xDEADBEEF, bytes(160))
        for _ in range(200):
            stranger.send_raw(flood)
        total = len(malformed) + len(unsupported) + 200
        wait_until(lambda: forwarder.stats()["packets_in"] - base["packets_in"] == total)
        stats = forwarder.stats()
        assert stats["drop_malformed"] - base["drop_malformed"] == len(malformed)
        assert stats["drop_unsupported"] - base["drop_unsupported"] == len(unsupported)
        assert stats["drop_unknown_ssrc"] - base["drop_unknown_ssrc"] == 200
        assert stats["packets_out"] == base["packets_out"]
        alice.assert_nothing_received()
        bob.assert_nothing_received()
        # The forwarder is unharmed.
        alice.send_rtp(b"ok" + bytes(158))
        assert bob.recv_rtp(1)[0].payload.startswith(b"ok")
    finally:
        stranger.close()


def test_bad_padding_after_decryption_is_dropped(forwarder: ForwarderApi, room: Room) -> None:
    alice, bob = room.join(1, 1), room.join(2, 1)
    # P bit set and a padding count larger than the payload: only visible after unprotect.
    plain = _rtp_header(0xA0, alice.ssrc, bytes(20) + b"\xff")
    alice.send_raw(alice._tx.protect(plain))
    wait_until(lambda: forwarder.stats()["drop_malformed"] == 1)
    bob.assert_nothing_received()
    assert forwarder.participant_stats(1)["packets_in"] == 2  # it did authenticate


def test_commands_are_validated(forwarder: ForwarderApi) -> None:
    gcm = generate_key("AEAD_AES_128_GCM")
    cm = generate_key("AES_CM_128_HMAC_SHA1_80")
    assert (len(gcm), len(cm)) == (28, 30)
    with pytest.raises(ValueError, match="unknown SRTP profile"):
        forwarder.add_participant(1, 1, 1, "NULL", gcm, gcm)
    with pytest.raises(ValueError, match="28-byte"):
        forwarder.add_participant(1, 1, 1, "AEAD_AES_128_GCM", cm, gcm)
    with pytest.raises(ValueError, match="30-byte"):
        forwarder.add_participant(1, 1, 1, "AES_CM_128_HMAC_SHA1_80", cm, gcm)
    with pytest.raises(ValueError, match="32 bits"):
        forwarder.add_participant(1, 1, 2**32, "AEAD_AES_128_GCM", gcm, gcm)
    forwarder.add_participant(1, 1, 1, "AEAD_AES_128_GCM", gcm, gcm)
    with pytest.raises(ValueError, match="already on this forwarder"):
        forwarder.add_participant(1, 2, 2, "AEAD_AES_128_GCM", gcm, gcm)
    with pytest.raises(ValueError, match="SSRC 1 is already in use"):
        forwarder.add_participant(2, 1, 1, "AEAD_AES_128_GCM", gcm, gcm)
    with pytest.raises(KeyError):
        forwarder.set_state(99, muted=True, deafened=False)
    with pytest.raises(KeyError):
        forwarder.participant_stats(99)
    assert forwarder.stats()["participants"] == 1


def test_many_participants_join_and_leave(forwarder: ForwarderApi, room: Room) -> None:
    # Grows the C participant table past its first allocation and reuses freed slots.
    for pid in range(40):
        room.join(pid, pid % 3, latch=False)
    for pid in range(0, 40, 2):
        assert forwarder.remove_participant(pid)
    a, b = room.join(100, 1), room.join(101, 1)
    a.send_rtp(b"q" * 160)
    assert b.recv_rtp(1)[0].payload == b"q" * 160
    assert forwarder.stats()["participants"] == 22


def _running(fwd: ForwarderApi) -> bool:
    return fwd.is_running


def test_stop_is_prompt_and_final(forwarder_factory: ForwarderFactory) -> None:
    fwd = forwarder_factory("127.0.0.1", 0)
    assert fwd.port > 0
    fwd.start()
    assert _running(fwd)
    time.sleep(0.01)
    started = time.monotonic()
    fwd.stop()
    assert time.monotonic() - started < 0.2
    assert not _running(fwd)
    fwd.stop()
    with pytest.raises(RuntimeError):
        fwd.start()
    assert fwd.stats()["packets_in"] == 0
