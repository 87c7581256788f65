"""Per-source-IP rate limit on STUN answers: the media port must not be a free reflector.

A STUN Binding answer is larger than its request and goes to whatever source address the
request claims, so a flood with a forged source would turn the node into an amplifier aimed
at a victim. Each source IP (IPv4 and its IPv4-mapped IPv6 form are one source) gets a GCRA
bucket: `STUN_BURST` answers at once, then `STUN_RATE_PER_S` per second; the rest are dropped
and counted (`drop_rate_limited`). Buckets live in a fixed table of `STUN_TABLE_SLOTS` slots
indexed by FNV-1a of the address; a new address in an occupied slot takes it over with a full
bucket, so memory stays bounded whatever the flood. Legitimate clients send one request per
connection (and ICE consent checks every few seconds), far below the limit.

`_forward.pyx` implements the same table in C with these constants and this hash (the
reference forwarder uses `StunLimiter`); a test keeps them in step. Pure code, no I/O.
"""

from __future__ import annotations

import ipaddress
from typing import Final

__all__ = [
    "STUN_BURST",
    "STUN_RATE_PER_S",
    "STUN_TABLE_SLOTS",
    "StunLimiter",
    "address_key",
    "slot_of",
]

STUN_RATE_PER_S: Final = 50
STUN_BURST: Final = 100
STUN_TABLE_SLOTS: Final = 1024  # a power of two
INTERVAL_NS: Final = 1_000_000_000 // STUN_RATE_PER_S
TOLERANCE_NS: Final = (STUN_BURST - 1) * INTERVAL_NS
_V4_MAPPED_PREFIX: Final = b"\0" * 10 + b"\xff\xff"
_FNV_OFFSET: Final = 0x811C9DC5
_FNV_PRIME: Final = 0x01000193


def address_key(host: str) -> bytes:
    """The 16-byte key of a source IP: IPv6 bytes, IPv4 as IPv4-mapped IPv6."""
    address = ipaddress.ip_address(host.split("%", 1)[0])
    if address.version == 4:
        return _V4_MAPPED_PREFIX + address.packed
    return address.packed


def slot_of(key: bytes) -> int:
    """FNV-1a (32-bit) of the key, masked to the table."""
    h = _FNV_OFFSET
    for byte in key:
        h = ((h ^ byte) * _FNV_PRIME) & 0xFFFFFFFF
    return h & (STUN_TABLE_SLOTS - 1)


class StunLimiter:
    """The bucket table; `allow` is called once per well-formed Binding request."""

    def __init__(self) -> None:
        self._keys: list[bytes] = [b""] * STUN_TABLE_SLOTS
        self._tat: list[int] = [0] * STUN_TABLE_SLOTS  # theoretical arrival time, ns

    def allow(self, key: bytes, now_ns: int) -> bool:
        slot = slot_of(key)
        if self._keys[slot] != key:
            self._keys[slot] = key
            self._tat[slot] = now_ns
        tat = max(self._tat[slot], now_ns)
        if tat - now_ns > TOLERANCE_NS:
            return False
        self._tat[slot] = tat + INTERVAL_NS
        return True
