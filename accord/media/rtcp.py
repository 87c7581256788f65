"""RTCP compound packet checks (RFC 3550 section 6 and appendix A.2) and small builders.

Pure functions over plaintext RTCP (after SRTCP unprotect): no sockets, no SRTP, no trio. The
forwarders forward a compound packet that leads with a sender report and consume one that
leads with a receiver report (MEDIA.md section 3). Parsers raise only `MalformedPacketError`.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from accord.errors import MalformedPacketError

__all__ = [
    "RTCP_BYE",
    "RTCP_RR",
    "RTCP_SR",
    "RtcpPacket",
    "build_receiver_report",
    "build_sender_report",
    "is_forwarded_rtcp",
    "parse_rtcp_compound",
    "rtcp_sender_ssrc",
]

RTCP_SR = 200
RTCP_RR = 201
RTCP_BYE = 203
_HEADER = struct.Struct("!BBHI")


@dataclass(frozen=True, slots=True)
class RtcpPacket:
    """One packet of a compound RTCP packet: its header fields and its whole body."""

    padding: bool
    count: int
    packet_type: int
    ssrc: int
    body: bytes


def rtcp_sender_ssrc(data: bytes | bytearray | memoryview) -> int:
    """Return the SSRC of the first packet's sender (bytes 4-7), which SRTCP keys on.

    Raises:
        MalformedPacketError: fewer than 8 bytes or not version 2.
    """
    if len(data) < 8:
        raise MalformedPacketError(f"RTCP packet of {len(data)} bytes is shorter than 8")
    if data[0] >> 6 != 2:
        raise MalformedPacketError(f"RTCP version {data[0] >> 6}, expected 2")
    ssrc: int = struct.unpack_from("!I", data, 4)[0]
    return ssrc


def parse_rtcp_compound(data: bytes | bytearray | memoryview) -> list[RtcpPacket]:
    """Split and check a plaintext compound RTCP packet (RFC 3550 appendix A.2).

    Every packet must be version 2, at least 8 bytes (header and SSRC), and the length fields
    must add up to the datagram exactly; only the last packet may carry padding; the first
    packet must be an SR or RR (RFC 3550 6.1).

    Raises:
        MalformedPacketError: on any of the above.
    """
    packets: list[RtcpPacket] = []
    offset = 0
    size = len(data)
    if size < 8:
        raise MalformedPacketError(f"RTCP packet of {size} bytes is shorter than 8")
    while offset < size:
        if offset + 8 > size:
            raise MalformedPacketError("truncated RTCP packet inside a compound")
        first, packet_type, words, ssrc = _HEADER.unpack_from(data, offset)
        if first >> 6 != 2:
            raise MalformedPacketError(f"RTCP version {first >> 6}, expected 2")
        length = 4 * (words + 1)
        if length < 8 or offset + length > size:
            raise MalformedPacketError(f"RTCP length {length} does not fit the packet")
        padding = bool(first & 0x20)
        end = offset + length
        if padding:
            # RFC 3550 6.4.1: only the last packet of a compound may be padded.
            if end != size:
                raise MalformedPacketError("padding before the last RTCP packet")
            pad = data[end - 1]
            if pad == 0 or pad > length - 8:
                raise MalformedPacketError(f"RTCP padding count {pad} does not fit")
        packets.append(
            RtcpPacket(
                padding=padding,
                count=first & 0x1F,
                packet_type=packet_type,
                ssrc=ssrc,
                body=bytes(data[offset + 8 : end]),
            )
        )
        offset = end
    if packets[0].packet_type not in (RTCP_SR, RTCP_RR):
        raise MalformedPacketError(f"compound RTCP starts with type {packets[0].packet_type}")
    return packets


def is_forwarded_rtcp(packets: list[RtcpPacket]) -> bool:
    """Sender reports are forwarded to the room, receiver reports consumed (MEDIA.md 3)."""
    return packets[0].packet_type == RTCP_SR


def build_sender_report(
    ssrc: int, *, ntp: int = 0, rtp_timestamp: int = 0, packets: int = 0, octets: int = 0
) -> bytes:
    """Encode an SR with no report blocks (RFC 3550 6.4.1)."""
    body = struct.pack("!QIII", ntp, rtp_timestamp, packets, octets)
    return _HEADER.pack(0x80, RTCP_SR, (8 + len(body)) // 4 - 1, ssrc) + body


def build_receiver_report(ssrc: int) -> bytes:
    """Encode an RR with no report blocks (RFC 3550 6.4.2), what a listen-only client sends."""
    return _HEADER.pack(0x80, RTCP_RR, 1, ssrc)
