# cython: language_level=3
"""The SFU media hot loop (MEDIA.md section 4).

This module is imported only through ``accord.media.forward``. For now it holds the packet
primitives the loop is built from; the forwarder thread itself lands with the media issue.
"""

from libc.stdint cimport uint8_t, uint32_t


cdef inline long _rtp_ssrc(const uint8_t[:] data) noexcept nogil:
    # RFC 3550 5.1: version 2 in the top two bits, SSRC at bytes 8..11.
    if data.shape[0] < 12 or (data[0] >> 6) != 2:
        return -1
    return (<long>data[8] << 24) | (<long>data[9] << 16) | (<long>data[10] << 8) | <long>data[11]


def rtp_ssrc(const uint8_t[:] data) -> int:
    """Return the SSRC of an RTP packet, or -1 when it is not an RTP v2 packet of >= 12 bytes."""
    return _rtp_ssrc(data)
