"""RTP header parsing and first-byte demultiplexing (RFC 3550, RFC 5761, RFC 7983).

Pure functions over bytes: no sockets, no SRTP, no trio. The forwarders (`_forward.pyx`,
`_forward_ref.py`) apply the same rules; this module is the readable statement of them and the
reference forwarder calls it directly. Parsers raise only `MalformedPacketError`.
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass

from accord.errors import MalformedPacketError

__all__ = [
    "RTP_HEADER_BYTES",
    "MalformedPacketError",
    "PacketKind",
    "RtpHeader",
    "build_rtp_packet",
    "classify_packet",
    "parse_rtp_header",
    "rtp_payload",
]

RTP_HEADER_BYTES = 12
_FIXED = struct.Struct("!BBHII")


class PacketKind(enum.Enum):
    """What a UDP datagram on the media port carries, told apart by its first bytes."""

    STUN = "stun"
    DTLS = "dtls"
    RTP = "rtp"
    RTCP = "rtcp"
    UNKNOWN = "unknown"


def classify_packet(data: bytes | bytearray | memoryview) -> PacketKind:
    """Demultiplex one datagram by its first byte (RFC 7983) and RTP/RTCP by the second.

    RFC 7983 section 7: 0-3 STUN, 20-63 DTLS, 128-191 RTP or RTCP. RFC 5761 section 4: a second
    byte of 192-223 (RTCP packet types 192-223) is RTCP, anything else is RTP.
    """
    if len(data) == 0:
        return PacketKind.UNKNOWN
    first = data[0]
    if first <= 3:
        return PacketKind.STUN
    if 20 <= first <= 63:
        return PacketKind.DTLS
    if 128 <= first <= 191:
        if len(data) < 2:
            return PacketKind.UNKNOWN
        return PacketKind.RTCP if 192 <= data[1] <= 223 else PacketKind.RTP
    return PacketKind.UNKNOWN


@dataclass(frozen=True, slots=True)
class RtpHeader:
    """The fixed RTP header plus CSRC list and header extension (RFC 3550 section 5.1, 5.3.1)."""

    padding: bool
    marker: bool
    payload_type: int
    sequence: int
    timestamp: int
    ssrc: int
    csrcs: tuple[int, ...] = ()
    extension_profile: int | None = None
    extension: bytes = b""

    @property
    def length(self) -> int:
        """Bytes the header occupies on the wire, CSRCs and extension included."""
        size = RTP_HEADER_BYTES + 4 * len(self.csrcs)
        if self.extension_profile is not None:
            size += 4 + len(self.extension)
        return size


def parse_rtp_header(data: bytes | bytearray | memoryview) -> RtpHeader:
    """Parse and check the RTP header of an RTP or SRTP packet.

    SRTP leaves the header in the clear, so this works on protected packets; the padding
    count lives in the (encrypted) payload and is checked by `rtp_payload` after decryption.

    Raises:
        MalformedPacketError: too short, not version 2, or a CSRC list or header extension
            that runs past the end of the packet.
    """
    size = len(data)
    if size < RTP_HEADER_BYTES:
        raise MalformedPacketError(f"RTP packet of {size} bytes is shorter than its header")
    first, second, sequence, timestamp, ssrc = _FIXED.unpack_from(data, 0)
    if first >> 6 != 2:
        raise MalformedPacketError(f"RTP version {first >> 6}, expected 2")
    csrc_count = first & 0x0F
    offset = RTP_HEADER_BYTES + 4 * csrc_count
    if offset > size:
        raise MalformedPacketError(f"{csrc_count} CSRCs overrun a {size}-byte packet")
    csrcs = struct.unpack_from(f"!{csrc_count}I", data, RTP_HEADER_BYTES)
    extension_profile: int | None = None
    extension = b""
    if first & 0x10:
        # RFC 3550 5.3.1: 16-bit profile, 16-bit length in 32-bit words, then the words.
        if offset + 4 > size:
            raise MalformedPacketError("header extension overruns the packet")
        extension_profile, words = struct.unpack_from("!HH", data, offset)
        end = offset + 4 + 4 * words
        if end > size:
            raise MalformedPacketError(f"header extension of {words} words overruns the packet")
        extension = bytes(data[offset + 4 : end])
    return RtpHeader(
        padding=bool(first & 0x20),
        marker=bool(second & 0x80),
        payload_type=second & 0x7F,
        sequence=sequence,
        timestamp=timestamp,
        ssrc=ssrc,
        csrcs=tuple(csrcs),
        extension_profile=extension_profile,
        extension=extension,
    )


def rtp_payload(data: bytes | bytearray | memoryview) -> bytes:
    """Return the payload of a plaintext RTP packet, with padding removed.

    Raises:
        MalformedPacketError: the header is malformed, or the padding count (RFC 3550 5.1:
            the last octet) is zero or larger than the payload.
    """
    header = parse_rtp_header(data)
    start = header.length
    end = len(data)
    if header.padding:
        pad = data[-1] if end > start else 0
        if pad == 0 or start + pad > end:
            raise MalformedPacketError(f"padding count {pad} does not fit the payload")
        end -= pad
    return bytes(data[start:end])


def build_rtp_packet(header: RtpHeader, payload: bytes, *, padding_bytes: int = 0) -> bytes:
    """Encode a plaintext RTP packet; `parse_rtp_header(build_rtp_packet(h, p)) == h`.

    `padding_bytes` (0-255) appends RFC 3550 padding and sets the P bit; a header whose
    `padding` flag is set without padding bytes is encoded as is (the caller owns the tail).
    """
    if not 0 <= padding_bytes <= 255:
        raise ValueError("padding_bytes must be 0..255")
    has_padding = header.padding or padding_bytes > 0
    has_extension = header.extension_profile is not None
    if len(header.csrcs) > 15:
        raise ValueError("at most 15 CSRCs")
    if len(header.extension) % 4:
        raise ValueError("the header extension must be a whole number of 32-bit words")
    first = 0x80 | (0x20 if has_padding else 0) | (0x10 if has_extension else 0)
    first |= len(header.csrcs)
    second = (0x80 if header.marker else 0) | (header.payload_type & 0x7F)
    parts = [
        _FIXED.pack(first, second, header.sequence, header.timestamp, header.ssrc),
        struct.pack(f"!{len(header.csrcs)}I", *header.csrcs),
    ]
    if header.extension_profile is not None:
        parts.append(struct.pack("!HH", header.extension_profile, len(header.extension) // 4))
        parts.append(header.extension)
    parts.append(payload)
    if padding_bytes:
        parts.append(bytes(padding_bytes - 1) + bytes([padding_bytes]))
    return b"".join(parts)
