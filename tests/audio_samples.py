"""Small, valid audio files made in code for soundboard tests: WAV, Ogg/Opus and MP3."""

from __future__ import annotations

import base64
import io
import struct
import wave


def wav_bytes(seconds: float = 0.5, rate: int = 8000) -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as handle:
        handle.setnchannels(1)
        handle.setsampwidth(2)
        handle.setframerate(rate)
        handle.writeframes(b"\x00\x00" * int(seconds * rate))
    return out.getvalue()


def _ogg_crc(data: bytes) -> int:
    crc = 0
    for byte in data:
        crc ^= byte << 24
        for _ in range(8):
            crc = ((crc << 1) ^ 0x04C11DB7) if crc & 0x80000000 else crc << 1
            crc &= 0xFFFFFFFF
    return crc


def _ogg_page(payload: bytes, granule: int, sequence: int, flags: int) -> bytes:
    segments = []
    remaining = len(payload)
    while remaining >= 255:
        segments.append(255)
        remaining -= 255
    segments.append(remaining)
    header = struct.pack(
        "<4sBBqIIIB", b"OggS", 0, flags, granule, 0x1234, sequence, 0, len(segments)
    ) + bytes(segments)
    page = bytearray(header + payload)
    struct.pack_into("<I", page, 22, _ogg_crc(bytes(page)))
    return bytes(page)


def ogg_opus_bytes(seconds: float = 1.0) -> bytes:
    """An Ogg/Opus stream whose granule position says `seconds` (48 kHz, pre-skip 312)."""
    head = b"OpusHead" + struct.pack("<BBHIhB", 1, 1, 312, 48000, 0, 0)
    vendor = b"accord-tests"
    tags = b"OpusTags" + struct.pack("<I", len(vendor)) + vendor + struct.pack("<I", 0)
    frames = int(seconds * 50)
    packet = b"\xf8\xff\xfe"  # a 20 ms Opus frame (silence)
    audio = _ogg_page(packet * 1, 0, 2, 0)
    pages = [_ogg_page(head, 0, 0, 0x02), _ogg_page(tags, 0, 1, 0)]
    pages.append(audio)
    pages.append(_ogg_page(packet, 312 + frames * 960, 3, 0x04))
    return b"".join(pages)


def mp3_bytes(frames: int = 40) -> bytes:
    """MPEG-1 Layer III frames, 128 kbit/s, 44.1 kHz (26 ms each), zero payload."""
    header = b"\xff\xfb\x90\x64"
    frame = header + b"\x00" * (417 - len(header))
    return frame * frames


def data_uri(data: bytes, mime: str) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"
