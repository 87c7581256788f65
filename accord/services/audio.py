"""Validating uploaded audio for the soundboard: Ogg/Opus, MP3 or WAV, by content.

The type comes from the bytes (magic numbers, then a full parse by mutagen), never from the
name or the declared type, and the parsed duration must be within bounds.
"""

from __future__ import annotations

import dataclasses
import io

from accord.errors import ValidationError


@dataclasses.dataclass(frozen=True, slots=True)
class AudioInfo:
    content_type: str
    duration_s: float


def sniff_audio(data: bytes) -> str | None:
    """`audio/ogg` (Opus), `audio/mpeg` or `audio/wav` from magic bytes, else None."""
    if data.startswith(b"OggS") and b"OpusHead" in data[:128]:
        return "audio/ogg"
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WAVE":
        return "audio/wav"
    if data.startswith(b"ID3") or (len(data) >= 2 and data[0] == 0xFF and data[1] & 0xE0 == 0xE0):
        return "audio/mpeg"
    return None


def inspect_audio(data: bytes, *, field: str, max_duration_s: float) -> AudioInfo:
    """Type and duration of an audio clip; ValidationError (400) naming `field` otherwise."""
    # mutagen is loaded on first use: keeps an idle server's footprint low.
    from mutagen import MutagenError
    from mutagen.mp3 import MP3, HeaderNotFoundError
    from mutagen.oggopus import OggOpus
    from mutagen.wave import WAVE

    content_type = sniff_audio(data)
    if content_type is None:
        raise ValidationError("must be Ogg/Opus, MP3 or WAV audio", field=field)
    parser = {"audio/ogg": OggOpus, "audio/mpeg": MP3, "audio/wav": WAVE}[content_type]
    try:
        parsed = parser(io.BytesIO(data))  # type: ignore[no-untyped-call]  # mutagen is untyped
    except (MutagenError, HeaderNotFoundError, ValueError, EOFError):
        raise ValidationError("is not a readable audio file", field=field) from None
    duration = float(getattr(parsed.info, "length", 0.0) or 0.0)
    if not 0.0 < duration <= max_duration_s:
        raise ValidationError(
            f"duration must be more than 0 and at most {max_duration_s:g} seconds", field=field
        )
    return AudioInfo(content_type, duration)
