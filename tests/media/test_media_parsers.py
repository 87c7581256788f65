"""Pure parser tests for `accord.media.rtp`, `rtcp` and `stun`: round trips, exact errors,
and Hypothesis properties (arbitrary bytes raise only `MalformedPacketError`)."""

from __future__ import annotations

import contextlib
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from accord.errors import MalformedPacketError
from accord.media.rtcp import (
    RTCP_BYE,
    RTCP_RR,
    RTCP_SR,
    build_receiver_report,
    build_sender_report,
    is_forwarded_rtcp,
    parse_rtcp_compound,
    rtcp_sender_ssrc,
)
from accord.media.rtp import (
    PacketKind,
    RtpHeader,
    build_rtp_packet,
    classify_packet,
    parse_rtp_header,
    rtp_payload,
)
from accord.media.stun import (
    build_binding_request,
    build_binding_success,
    parse_stun_message,
    xor_mapped_address,
)

HEADER = RtpHeader(
    padding=False, marker=True, payload_type=111, sequence=65535, timestamp=2**32 - 1, ssrc=42
)


@pytest.mark.parametrize(
    ("data", "kind"),
    [
        (b"", PacketKind.UNKNOWN),
        (b"\x00\x01", PacketKind.STUN),
        (b"\x03", PacketKind.STUN),
        (b"\x04", PacketKind.UNKNOWN),
        (b"\x14", PacketKind.DTLS),
        (b"\x3f", PacketKind.DTLS),
        (b"\x40", PacketKind.UNKNOWN),
        (b"\x80", PacketKind.UNKNOWN),
        (b"\x80\x6f", PacketKind.RTP),
        (b"\x80\xef", PacketKind.RTP),  # marker + PT 111
        (b"\x80\xc8", PacketKind.RTCP),  # SR
        (b"\x81\xdf", PacketKind.RTCP),
        (b"\x80\xe0", PacketKind.RTP),
        (b"\xbf\xc9", PacketKind.RTCP),
        (b"\xc0\xc9", PacketKind.UNKNOWN),
    ],
)
def test_classify_packet_by_first_bytes(data: bytes, kind: PacketKind) -> None:
    assert classify_packet(data) is kind


def test_rtp_round_trip_plain() -> None:
    packet = build_rtp_packet(HEADER, b"opus")
    assert parse_rtp_header(packet) == HEADER
    assert rtp_payload(packet) == b"opus"
    assert HEADER.length == 12


def test_rtp_round_trip_with_csrcs_extension_and_padding() -> None:
    header = RtpHeader(
        padding=True,
        marker=False,
        payload_type=96,
        sequence=1,
        timestamp=2,
        ssrc=3,
        csrcs=(7, 8),
        extension_profile=0xBEDE,
        extension=b"\x10\xff\x00\x00",
    )
    packet = build_rtp_packet(header, b"payload", padding_bytes=5)
    assert parse_rtp_header(packet) == header
    assert header.length == 12 + 8 + 8
    assert rtp_payload(packet) == b"payload"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\x80" * 11, "RTP packet of 11 bytes is shorter than its header"),
        (b"\x40" + bytes(11), "RTP version 1, expected 2"),
        (b"\x82" + bytes(11) + bytes(4), "2 CSRCs overrun a 16-byte packet"),
        (b"\x90" + bytes(11) + b"\xbe\xde", "header extension overruns the packet"),
        (
            b"\x90" + bytes(11) + b"\xbe\xde\x00\x02" + bytes(4),
            "header extension of 2 words overruns the packet",
        ),
    ],
)
def test_rtp_header_errors(data: bytes, message: str) -> None:
    with pytest.raises(MalformedPacketError, match=f"^{message}$"):
        parse_rtp_header(data)


@pytest.mark.parametrize(
    "packet",
    [
        b"\xa0" + bytes(11),  # P bit set, no payload at all
        b"\xa0" + bytes(11) + bytes(7) + b"\x00",  # padding count 0
        b"\xa0" + bytes(11) + bytes(6) + b"\x09",  # 9 bytes of padding in a 7-byte payload
    ],
)
def test_rtp_padding_errors(packet: bytes) -> None:
    with pytest.raises(MalformedPacketError, match="padding count"):
        rtp_payload(packet)


def test_build_rtp_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="padding_bytes"):
        build_rtp_packet(HEADER, b"", padding_bytes=256)
    with pytest.raises(ValueError, match="32-bit words"):
        build_rtp_packet(
            RtpHeader(False, False, 0, 0, 0, 0, extension_profile=1, extension=b"x"), b""
        )


def test_rtcp_reports_parse() -> None:
    sr = build_sender_report(5, ntp=1, rtp_timestamp=2, packets=3, octets=4)
    rr = build_receiver_report(6)
    bye = struct.pack("!BBHI", 0x81, RTCP_BYE, 1, 5)
    packets = parse_rtcp_compound(sr + bye)
    assert [p.packet_type for p in packets] == [RTCP_SR, RTCP_BYE]
    assert packets[0].ssrc == 5
    assert is_forwarded_rtcp(packets)
    assert not is_forwarded_rtcp(parse_rtcp_compound(rr))
    assert parse_rtcp_compound(rr)[0].packet_type == RTCP_RR
    assert rtcp_sender_ssrc(sr) == 5


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (bytes(7), "shorter than 8"),
        (b"\x40\xc9\x00\x01" + bytes(4), "RTCP version 1"),
        (b"\x80\xc9\x00\x02" + bytes(4), "RTCP length 12 does not fit"),
        (build_receiver_report(1) + b"\x80\xcb", "truncated RTCP packet"),
        (b"\xa0\xc9\x00\x01" + bytes(4) + build_receiver_report(1), "padding before the last"),
        (b"\xa0\xc9\x00\x02" + bytes(8), "RTCP padding count 0"),
        (b"\xa0\xc9\x00\x02" + bytes(7) + b"\x05", "RTCP padding count 5"),
        (b"\x81\xcb\x00\x01" + bytes(4), "compound RTCP starts with type 203"),
    ],
)
def test_rtcp_compound_errors(data: bytes, message: str) -> None:
    with pytest.raises(MalformedPacketError, match=message):
        parse_rtcp_compound(data)


def test_rtcp_padding_on_the_last_packet_is_accepted() -> None:
    padded = b"\xa0\xc9\x00\x02" + bytes(4) + b"\x00\x00\x00\x04"
    assert parse_rtcp_compound(padded)[0].padding


@pytest.mark.parametrize(
    ("host", "port"), [("127.0.0.1", 5000), ("2001:db8::1", 65535), ("::ffff:10.0.0.1", 1)]
)
def test_stun_binding_round_trip(host: str, port: int) -> None:
    transaction_id = bytes(range(12))
    request = parse_stun_message(build_binding_request(transaction_id))
    assert request.is_binding_request
    assert request.transaction_id == transaction_id
    answer = parse_stun_message(build_binding_success(transaction_id, host, port))
    assert not answer.is_binding_request
    expected_host = "10.0.0.1" if host.startswith("::ffff:") else host
    assert xor_mapped_address(answer) == (expected_host, port)


def test_stun_known_answer_vector() -> None:
    # RFC 5769 2.2 (IPv4 response): 192.0.2.1:32853 with this transaction id.
    transaction_id = bytes.fromhex("b7e7a701bc34d686fa87dfae")
    answer = build_binding_success(transaction_id, "192.0.2.1", 32853)
    assert answer[20:32] == bytes.fromhex("002000080001a147e112a643")


def test_stun_attributes_and_padding() -> None:
    attribute = struct.pack("!HH", 0x8022, 5) + b"hello" + bytes(3)
    data = struct.pack("!HHI", 1, len(attribute), 0x2112A442) + bytes(12) + attribute
    assert parse_stun_message(data).attributes == ((0x8022, b"hello"),)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (bytes(19), "shorter than its header"),
        (b"\xc0\x01" + bytes(18), "top two bits"),
        (b"\x00\x01\x00\x00" + bytes(16), "magic cookie"),
        (b"\x00\x01\x00\x03" + struct.pack("!I", 0x2112A442) + bytes(15), "STUN length 3"),
        (b"\x00\x01\x00\x04" + struct.pack("!I", 0x2112A442) + bytes(12), "STUN length 4"),
        (
            b"\x00\x01\x00\x04" + struct.pack("!I", 0x2112A442) + bytes(12) + b"\x00\x08\x00\x01",
            "overruns the message",
        ),
    ],
)
def test_stun_errors(data: bytes, message: str) -> None:
    with pytest.raises(MalformedPacketError, match=message):
        parse_stun_message(data)


def test_xor_mapped_address_missing() -> None:
    with pytest.raises(MalformedPacketError, match="no XOR-MAPPED-ADDRESS"):
        xor_mapped_address(parse_stun_message(build_binding_request(bytes(12))))


def _only_malformed(parse: object, data: bytes) -> None:
    assert callable(parse)
    with contextlib.suppress(MalformedPacketError):
        parse(data)


def _stun_then_address(data: bytes) -> None:
    xor_mapped_address(parse_stun_message(data))


@given(st.binary(max_size=300))
def test_parsers_raise_only_malformed_packet_error(data: bytes) -> None:
    classify_packet(data)
    for parse in (
        parse_rtp_header,
        rtp_payload,
        rtcp_sender_ssrc,
        parse_rtcp_compound,
        parse_stun_message,
        _stun_then_address,
    ):
        _only_malformed(parse, data)


@given(
    st.integers(0, 15).flatmap(
        lambda count: st.tuples(
            st.binary(min_size=4 + 4 * count, max_size=4 + 4 * count), st.binary(max_size=80)
        )
    )
)
def test_stun_shaped_input_raises_only_malformed(parts: tuple[bytes, bytes]) -> None:
    # Valid header, random attribute area: exercises the attribute walk.
    body = parts[0] + parts[1][: len(parts[1]) // 4 * 4]
    data = struct.pack("!HHI", 0x0101, len(body), 0x2112A442) + bytes(12) + body
    _only_malformed(parse_stun_message, data)
    _only_malformed(_stun_then_address, data)


@given(
    st.builds(
        RtpHeader,
        padding=st.just(False),
        marker=st.booleans(),
        payload_type=st.integers(0, 127),
        sequence=st.integers(0, 0xFFFF),
        timestamp=st.integers(0, 0xFFFFFFFF),
        ssrc=st.integers(0, 0xFFFFFFFF),
        csrcs=st.lists(st.integers(0, 0xFFFFFFFF), max_size=15).map(tuple),
        extension_profile=st.none() | st.integers(0, 0xFFFF),
        extension=st.just(b""),
    ),
    st.binary(max_size=200),
    st.integers(0, 255),
)
def test_rtp_build_parse_round_trip(header: RtpHeader, payload: bytes, padding: int) -> None:
    packet = build_rtp_packet(header, payload, padding_bytes=padding)
    parsed = parse_rtp_header(packet)
    assert parsed.padding == (padding > 0)
    assert parsed.ssrc == header.ssrc
    assert parsed.csrcs == header.csrcs
    assert rtp_payload(packet) == payload
