"""UDP GSO in the Cython loop: one message per receiver and batch, datagrams intact and in order.

The loop groups each receiver's copies of a batch into one UDP GSO message (Linux cuts it into
datagrams); a shorter datagram ends a group, larger ones and STUN answers go alone. The loop is
held while a burst queues in its socket buffer, so the next batch really holds the burst. The
same traffic through a forwarder built with `gso=False` gives the same datagrams.
"""

from __future__ import annotations

import os
import socket
import struct
from collections.abc import Iterator

import pytest

from accord.media.forward import IMPLEMENTATIONS
from accord.media.stun import build_binding_request, parse_stun_message
from tests.media.media_client import Room, wait_until

pytestmark = pytest.mark.skipif("cython" not in IMPLEMENTATIONS, reason="extension not built")

SO_NO_CHECK = getattr(socket, "SO_NO_CHECK", 11)  # Linux value; Python may not name it

# Sizes of one burst: runs of equal sizes, a shorter one that ends a run, one too large to
# group (> 1200 bytes protected), and a run longer than a GSO message may carry.
SIZES = [160] * 5 + [90] + [160] * 3 + [40, 40] + [1250] + [160] * 8 + [200, 160]


def _payload(index: int, size: int) -> bytes:
    return struct.pack("!I", index) + os.urandom(size - 4)


@pytest.fixture(params=[True, False], ids=["gso", "plain"])
def cython_forwarder(request: pytest.FixtureRequest) -> Iterator[object]:
    from accord.media._forward import Forwarder

    fwd = Forwarder("127.0.0.1", 0, gso=request.param)
    fwd.start()
    try:
        yield fwd
    finally:
        fwd.stop()


def test_burst_reaches_every_receiver_intact_and_in_order(
    cython_forwarder: object, profile: str
) -> None:
    from accord.media._forward import Forwarder

    assert isinstance(cython_forwarder, Forwarder)
    fwd = cython_forwarder
    room = Room(fwd, profile)
    try:
        alice, bob, carol = (room.join(pid, room_id=1) for pid in (1, 2, 3))
        sizes = SIZES * 3  # 63 datagrams: more than one recvmmsg batch of 32
        payloads = [_payload(i, size) for i, size in enumerate(sizes)]
        before = fwd.send_stats
        fwd._pause_loop()
        try:
            for payload in payloads:
                alice.send_rtp(payload)
            bob.send_raw(build_binding_request(b"gso-test-txn"))
        finally:
            fwd._resume_loop()
        assert [r.payload for r in carol.recv_rtp(len(payloads))] == payloads
        # Bob gets the same copies, and his STUN answer somewhere among them.
        answers: list[bytes] = []
        copies: list[bytes] = []
        while len(copies) < len(payloads) or not answers:
            data = bob.recv_raw()
            if data[0] < 4:
                answers.append(parse_stun_message(data).transaction_id)
            else:
                copies.append(bob.unprotect_rtp(data)[12:])
        assert answers == [b"gso-test-txn"]
        assert copies == payloads
        for receiver in (alice, bob, carol):
            receiver.assert_nothing_received()
        wait_until(lambda: fwd.stats()["rtp_out"] == 2 * len(payloads))
        stats, after = fwd.stats(), fwd.send_stats
        assert stats["drop_send_failed"] == 0
        assert stats["stun_answered"] == 1
        assert fwd.participant_stats(2)["packets_out"] == len(payloads)
        messages = int(after["send_messages"]) - int(before["send_messages"])
        grouped = int(after["gso_messages"]) - int(before["gso_messages"])
        datagrams = 2 * len(payloads) + 1
        if after["gso"]:
            # Per receiver and batch: a run of equal sizes (or ended by a shorter one) is one
            # message, so far fewer messages than datagrams.
            assert grouped >= 4
            assert messages <= datagrams // 2
        else:
            assert grouped == 0
            assert messages == datagrams
    finally:
        room.close()


def test_gso_is_used_on_linux() -> None:
    from accord.media._forward import Forwarder

    with Forwarder("127.0.0.1", 0) as fwd:
        assert fwd.send_stats["gso"] is True  # Linux >= 4.18 and loopback take UDP GSO
    with Forwarder("127.0.0.1", 0, gso=False) as fwd:
        assert fwd.send_stats["gso"] is False


def test_a_refused_gso_message_falls_back_to_one_datagram_each(profile: str) -> None:
    from accord.media._forward import Forwarder

    with Forwarder("127.0.0.1", 0) as fwd:
        # SO_NO_CHECK (no UDP checksums) makes Linux refuse GSO sends with EINVAL, as a device
        # without checksum offload refuses them with EIO.
        fwd._media_socket().setsockopt(socket.SOL_SOCKET, SO_NO_CHECK, 1)
        room = Room(fwd, profile)
        try:
            alice, bob = room.join(1, room_id=1), room.join(2, room_id=1)
            payloads = [_payload(i, 160) for i in range(40)]
            fwd._pause_loop()
            try:
                for payload in payloads:
                    alice.send_rtp(payload)
            finally:
                fwd._resume_loop()
            assert [r.payload for r in bob.recv_rtp(len(payloads))] == payloads
            bob.assert_nothing_received()
            assert fwd.send_stats["gso"] is False
            assert fwd.send_stats["gso_messages"] == 0
            assert fwd.stats()["drop_send_failed"] == 0
        finally:
            room.close()
