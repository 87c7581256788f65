"""A minimal blocking `accord-rtp/1` media client for the forwarder tests.

It owns one UDP socket on loopback (timeouts on every receive), protects what it sends with
its send key and unprotects what it gets with its receive key, exactly as a real client would.
It also offers `wait_until` for polling forwarder counters under a deadline. Test-only.
"""

from __future__ import annotations

import os
import random
import socket
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass

import pylibsrtp

from accord.media.forward import ForwarderApi, generate_key
from accord.media.rtcp import build_receiver_report, build_sender_report
from accord.media.rtp import RtpHeader, build_rtp_packet, parse_rtp_header, rtp_payload
from accord.media.srtp import PROFILES

RECV_TIMEOUT_S = 2.0


def wait_until(condition: Callable[[], bool], timeout_s: float = 3.0) -> None:
    """Poll `condition` every millisecond until true; fail the test after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout_s} s")
        time.sleep(0.001)


@dataclass
class Received:
    ssrc: int
    sequence: int
    payload: bytes


class MediaClient:
    """One participant's media side: keys, SSRC, socket, sequence numbers."""

    def __init__(
        self,
        forwarder_port: int,
        ssrc: int,
        profile: str,
        send_key: bytes,
        recv_key: bytes,
    ) -> None:
        self.forwarder_address = ("127.0.0.1", forwarder_port)
        self.ssrc = ssrc
        self.profile = profile
        self.send_key = send_key
        self.recv_key = recv_key
        libsrtp_profile = PROFILES[profile].libsrtp_profile
        self._tx = pylibsrtp.Session(
            pylibsrtp.Policy(
                key=send_key,
                ssrc_type=pylibsrtp.Policy.SSRC_ANY_OUTBOUND,
                srtp_profile=libsrtp_profile,
            )
        )
        self._rx = pylibsrtp.Session(
            pylibsrtp.Policy(
                key=recv_key,
                ssrc_type=pylibsrtp.Policy.SSRC_ANY_INBOUND,
                srtp_profile=libsrtp_profile,
            )
        )
        self.sequence = random.randrange(1 << 16)
        self.timestamp = random.randrange(1 << 32)
        self.sock = self._open_socket()

    @staticmethod
    def _open_socket() -> socket.socket:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind(("127.0.0.1", 0))
        sock.settimeout(RECV_TIMEOUT_S)
        return sock

    @property
    def address(self) -> tuple[str, int]:
        host, port = self.sock.getsockname()
        return str(host), int(port)

    def close(self) -> None:
        self.sock.close()

    def rebind(self) -> None:
        """Move to a new source port, as a NAT rebinding would."""
        self.sock.close()
        self.sock = self._open_socket()

    def protect_rtp(self, payload: bytes, *, ssrc: int | None = None) -> bytes:
        self.sequence = (self.sequence + 1) & 0xFFFF
        self.timestamp = (self.timestamp + 960) & 0xFFFFFFFF
        header = RtpHeader(
            padding=False,
            marker=False,
            payload_type=111,
            sequence=self.sequence,
            timestamp=self.timestamp,
            ssrc=self.ssrc if ssrc is None else ssrc,
        )
        protected: bytes = self._tx.protect(build_rtp_packet(header, payload))
        return protected

    def send_raw(self, data: bytes) -> None:
        self.sock.sendto(data, self.forwarder_address)

    def send_rtp(self, payload: bytes) -> None:
        self.send_raw(self.protect_rtp(payload))

    def send_sender_report(self) -> bytes:
        plain = build_sender_report(self.ssrc, ntp=1, rtp_timestamp=self.timestamp, packets=1)
        self.send_raw(self._tx.protect_rtcp(plain))
        return plain

    def send_receiver_report(self) -> None:
        self.send_raw(self._tx.protect_rtcp(build_receiver_report(self.ssrc)))

    def recv_raw(self, timeout_s: float = RECV_TIMEOUT_S) -> bytes:
        self.sock.settimeout(timeout_s)
        data, _ = self.sock.recvfrom(4096)
        return data

    def recv_rtp(self, count: int) -> list[Received]:
        """Receive and unprotect `count` RTP packets (socket timeout on each)."""
        received = []
        for _ in range(count):
            plain = self._rx.unprotect(self.recv_raw())
            header = parse_rtp_header(plain)
            received.append(Received(header.ssrc, header.sequence, rtp_payload(plain)))
        return received

    def unprotect_rtp(self, data: bytes) -> bytes:
        plain: bytes = self._rx.unprotect(data)
        return plain

    def unprotect_rtcp(self, data: bytes) -> bytes:
        plain: bytes = self._rx.unprotect_rtcp(data)
        return plain

    def assert_nothing_received(self, wait_s: float = 0.15) -> None:
        self.sock.settimeout(wait_s)
        try:
            data = self.sock.recv(4096)
        except TimeoutError:
            return
        raise AssertionError(f"unexpected datagram of {len(data)} bytes")


class Room:
    """Participants joined to one forwarder; hands out unique SSRCs and fresh keys."""

    def __init__(self, forwarder: ForwarderApi, profile: str = "AEAD_AES_128_GCM") -> None:
        self.forwarder = forwarder
        self.profile = profile
        self.clients: dict[int, MediaClient] = {}
        self._next_ssrc = random.randrange(1 << 31)

    def join(self, participant_id: int, room_id: int, *, latch: bool = True) -> MediaClient:
        self._next_ssrc += 1
        send_key, recv_key = generate_key(self.profile), generate_key(self.profile)
        self.forwarder.add_participant(
            participant_id, room_id, self._next_ssrc, self.profile, send_key, recv_key
        )
        client = MediaClient(self.forwarder.port, self._next_ssrc, self.profile, send_key, recv_key)
        self.clients[participant_id] = client
        if latch:
            client.send_receiver_report()
            wait_until(
                lambda: self.forwarder.participant_stats(participant_id)["address"] is not None
            )
        return client

    def close(self) -> None:
        for client in self.clients.values():
            client.close()


def payload_for(participant_id: int, index: int) -> bytes:
    """A distinct Opus-sized payload: who sent it, which one, then filler."""
    return struct.pack("!QI", participant_id, index) + os.urandom(148)
