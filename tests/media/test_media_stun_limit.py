"""The STUN answer rate limit per source IP (stun_limit.py) on both forwarders.

A flood of Binding requests from one IP gets the burst answered and the rest dropped and
counted; another IP (127.0.0.2 is loopback too) is answered as usual meanwhile. The limiter's
arithmetic is checked with an explicit clock.
"""

from __future__ import annotations

import os
import socket
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from accord.media.forward import IMPLEMENTATIONS, ForwarderApi
from accord.media.stun import build_binding_request, parse_stun_message
from accord.media.stun_limit import (
    INTERVAL_NS,
    STUN_BURST,
    STUN_TABLE_SLOTS,
    StunLimiter,
    address_key,
    slot_of,
)
from tests.media.media_client import wait_until

FLOOD = STUN_BURST + 60


def _socket(host: str) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((host, 0))
    sock.settimeout(2.0)
    return sock


def test_a_flood_from_one_ip_is_cut_to_the_burst(forwarder: ForwarderApi) -> None:
    target = ("127.0.0.1", forwarder.port)
    flooder, other = _socket("127.0.0.1"), _socket("127.0.0.2")
    try:
        started = time.monotonic()
        for _ in range(FLOOD):
            flooder.sendto(build_binding_request(os.urandom(12)), target)
        wait_until(lambda: forwarder.stats()["packets_in"] >= FLOOD)
        elapsed_ns = (time.monotonic() - started) * 1e9
        stats = forwarder.stats()
        answered, limited = stats["stun_answered"], stats["drop_rate_limited"]
        assert answered + limited == FLOOD
        assert STUN_BURST <= answered <= STUN_BURST + elapsed_ns / INTERVAL_NS + 1
        # The limit is per source IP: another address is answered meanwhile.
        transaction_id = os.urandom(12)
        other.sendto(build_binding_request(transaction_id), target)
        other.settimeout(2.0)
        answer = parse_stun_message(other.recv(2048))
        assert answer.transaction_id == transaction_id
        assert forwarder.stats()["drop_rate_limited"] == limited
        # The flooder got exactly the answered ones, nothing more.
        flooder.settimeout(0.3)
        got = 0
        try:
            while True:
                flooder.recv(2048)
                got += 1
        except TimeoutError:
            pass
        assert got == answered
    finally:
        flooder.close()
        other.close()


def test_limiter_burst_then_rate() -> None:
    limiter = StunLimiter()
    key = address_key("203.0.113.9")
    now = 10**12
    assert all(limiter.allow(key, now) for _ in range(STUN_BURST))
    assert not limiter.allow(key, now)
    assert not limiter.allow(key, now + INTERVAL_NS - 1)
    assert limiter.allow(key, now + INTERVAL_NS)
    assert not limiter.allow(key, now + INTERVAL_NS)
    # After a quiet spell the whole burst is back, never more.
    later = now + 100 * STUN_BURST * INTERVAL_NS
    assert sum(limiter.allow(key, later) for _ in range(2 * STUN_BURST)) == STUN_BURST


def test_ipv4_and_its_mapped_form_are_one_source() -> None:
    assert address_key("192.0.2.1") == address_key("::ffff:192.0.2.1")
    assert address_key("fe80::1%eth0") == address_key("fe80::1")
    assert len(address_key("2001:db8::1")) == 16


def test_slot_of_is_fnv1a() -> None:
    assert slot_of(bytes(16)) == 0x69691905 & (STUN_TABLE_SLOTS - 1)  # FNV-1a of 16 zeros
    assert slot_of(address_key("127.0.0.1")) != slot_of(address_key("127.0.0.2"))


@pytest.mark.skipif("cython" not in IMPLEMENTATIONS, reason="the extension is not built")
@given(st.binary(min_size=16, max_size=16))
def test_the_c_table_uses_the_same_slots(key: bytes) -> None:
    from accord.media._forward import _stun_slot

    assert _stun_slot(key) == slot_of(key)


@given(st.lists(st.tuples(st.integers(0, 7), st.integers(0, 10**8)), max_size=200))
def test_no_source_ever_exceeds_burst_plus_rate(events: list[tuple[int, int]]) -> None:
    limiter = StunLimiter()
    keys = [address_key(f"198.51.100.{i}") for i in range(8)]
    now = 0
    allowed: dict[int, list[int]] = {}
    for source, step in events:
        now += step
        if limiter.allow(keys[source], now):
            allowed.setdefault(source, []).append(now)
    distinct_slots = len({slot_of(k) for k in keys}) == len(keys)
    for times in allowed.values():
        span = times[-1] - times[0]
        if distinct_slots:
            assert len(times) <= STUN_BURST + span // INTERVAL_NS
    assert STUN_TABLE_SLOTS & (STUN_TABLE_SLOTS - 1) == 0
