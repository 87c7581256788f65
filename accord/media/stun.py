"""STUN Binding messages (RFC 5389) as the media port needs them: parse, answer, build.

Pure functions over bytes: no sockets, no trio. In `accord-rtp/1` the node answers any
well-formed Binding request with XOR-MAPPED-ADDRESS and no credential check (MEDIA.md 3;
ICE credentials arrive with WebRTC, MEDIA.md 6). Parsers raise only `MalformedPacketError`.
"""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass

from accord.errors import MalformedPacketError

__all__ = [
    "BINDING_REQUEST",
    "BINDING_SUCCESS",
    "MAGIC_COOKIE",
    "StunMessage",
    "build_binding_request",
    "build_binding_success",
    "parse_stun_message",
    "xor_mapped_address",
]

MAGIC_COOKIE = 0x2112A442
BINDING_REQUEST = 0x0001
BINDING_SUCCESS = 0x0101
ATTR_XOR_MAPPED_ADDRESS = 0x0020
_HEADER = struct.Struct("!HHI12s")
_HEADER_BYTES = 20


@dataclass(frozen=True, slots=True)
class StunMessage:
    """A STUN message: type, transaction id and attributes in wire order."""

    message_type: int
    transaction_id: bytes
    attributes: tuple[tuple[int, bytes], ...] = ()

    @property
    def is_binding_request(self) -> bool:
        return self.message_type == BINDING_REQUEST


def parse_stun_message(data: bytes | bytearray | memoryview) -> StunMessage:
    """Parse a STUN message (RFC 5389 section 6) and its attribute list (section 15).

    Raises:
        MalformedPacketError: shorter than the 20-byte header, top two bits set, wrong magic
            cookie, a length that is not a multiple of 4 or does not match the datagram, or an
            attribute that overruns the message.
    """
    size = len(data)
    if size < _HEADER_BYTES:
        raise MalformedPacketError(f"STUN message of {size} bytes is shorter than its header")
    message_type, length, cookie, transaction_id = _HEADER.unpack_from(data, 0)
    if message_type & 0xC000:
        raise MalformedPacketError("STUN message type has its top two bits set")
    if cookie != MAGIC_COOKIE:
        raise MalformedPacketError("STUN magic cookie mismatch")
    if length % 4 or _HEADER_BYTES + length != size:
        raise MalformedPacketError(f"STUN length {length} does not match {size} bytes")
    attributes: list[tuple[int, bytes]] = []
    offset = _HEADER_BYTES
    while offset < size:
        if offset + 4 > size:
            raise MalformedPacketError("truncated STUN attribute header")
        attr_type, attr_length = struct.unpack_from("!HH", data, offset)
        end = offset + 4 + attr_length
        if end > size:
            raise MalformedPacketError(f"STUN attribute {attr_type:#06x} overruns the message")
        attributes.append((attr_type, bytes(data[offset + 4 : end])))
        offset = end + (-attr_length % 4)  # section 15: values are padded to 32 bits
        if offset > size:
            raise MalformedPacketError("STUN attribute padding overruns the message")
    return StunMessage(message_type, bytes(transaction_id), tuple(attributes))


def _xor_address(host: str, port: int, transaction_id: bytes) -> bytes:
    """RFC 5389 15.2: port XOR top of the cookie, address XOR cookie (‖ transaction id)."""
    address = ipaddress.ip_address(host)
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    mask = struct.pack("!I", MAGIC_COOKIE) + transaction_id
    raw = address.packed
    family = 0x01 if len(raw) == 4 else 0x02
    xored = bytes(a ^ b for a, b in zip(raw, mask, strict=False))
    return struct.pack("!BBH", 0, family, port ^ (MAGIC_COOKIE >> 16)) + xored


def build_binding_success(transaction_id: bytes, host: str, port: int) -> bytes:
    """Encode a Binding success response carrying XOR-MAPPED-ADDRESS for (host, port).

    An IPv4-mapped IPv6 source (a dual-stack socket) is reported as the IPv4 address.
    """
    value = _xor_address(host, port, transaction_id)
    attribute = struct.pack("!HH", ATTR_XOR_MAPPED_ADDRESS, len(value)) + value
    return _HEADER.pack(BINDING_SUCCESS, len(attribute), MAGIC_COOKIE, transaction_id) + attribute


def build_binding_request(transaction_id: bytes) -> bytes:
    """Encode a Binding request with no attributes (what a client sends to learn its address)."""
    if len(transaction_id) != 12:
        raise ValueError("a STUN transaction id is 12 bytes")
    return _HEADER.pack(BINDING_REQUEST, 0, MAGIC_COOKIE, transaction_id)


def xor_mapped_address(message: StunMessage) -> tuple[str, int]:
    """Decode the XOR-MAPPED-ADDRESS of a Binding response.

    Raises:
        MalformedPacketError: the attribute is missing or malformed.
    """
    for attr_type, value in message.attributes:
        if attr_type != ATTR_XOR_MAPPED_ADDRESS:
            continue
        if len(value) not in (8, 20) or value[1] not in (1, 2):
            raise MalformedPacketError("malformed XOR-MAPPED-ADDRESS")
        if (value[1] == 1) != (len(value) == 8):
            raise MalformedPacketError("XOR-MAPPED-ADDRESS family does not match its length")
        port = struct.unpack_from("!H", value, 2)[0] ^ (MAGIC_COOKIE >> 16)
        mask = struct.pack("!I", MAGIC_COOKIE) + message.transaction_id
        raw = bytes(a ^ b for a, b in zip(value[4:], mask, strict=False))
        return str(ipaddress.ip_address(raw)), port
    raise MalformedPacketError("no XOR-MAPPED-ADDRESS attribute")
