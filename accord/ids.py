"""Snowflake ids (D3, DATA.md 4): ms since the Accord epoch << 22 | worker << 12 | sequence.

Generation is thread-safe: the (last ms, sequence) state sits behind a lock, a clock step
backwards keeps using the last timestamp, and a full sequence waits for the next millisecond.
"""

from __future__ import annotations

import threading
import time

ACCORD_EPOCH_MS = 1_704_067_200_000
_SEQUENCE_BITS = 12
_WORKER_BITS = 10
_MAX_SEQUENCE = (1 << _SEQUENCE_BITS) - 1
_MAX_SNOWFLAKE = (1 << 63) - 1


class SnowflakeGenerator:
    """Hands out unique, increasing snowflakes from any thread."""

    def __init__(self, worker_id: int = 0) -> None:
        if not 0 <= worker_id < (1 << _WORKER_BITS):
            raise ValueError("worker_id must be in 0..1023")
        self._worker = worker_id << _SEQUENCE_BITS
        self._lock = threading.Lock()
        self._last_ms = -1
        self._sequence = 0

    def next_id(self) -> int:
        with self._lock:
            now_ms = int(time.time() * 1000) - ACCORD_EPOCH_MS
            if now_ms <= self._last_ms:
                # Same millisecond, or the clock stepped back: keep counting on the last one.
                now_ms = self._last_ms
                self._sequence += 1
                if self._sequence > _MAX_SEQUENCE:
                    now_ms = self._wait_next_ms(self._last_ms)
                    self._sequence = 0
            else:
                self._sequence = 0
            self._last_ms = now_ms
            return (now_ms << (_SEQUENCE_BITS + _WORKER_BITS)) | self._worker | self._sequence

    @staticmethod
    def _wait_next_ms(last_ms: int) -> int:
        while True:
            now_ms = int(time.time() * 1000) - ACCORD_EPOCH_MS
            if now_ms > last_ms:
                return now_ms
            time.sleep(0.0001)


def snowflake_time_ms(snowflake: int) -> int:
    """Unix milliseconds at which a snowflake was made."""
    return (snowflake >> 22) + ACCORD_EPOCH_MS


def parse_id(raw: object) -> int | None:
    """Parse a decimal id from a path or body; None when it cannot name anything (D27)."""
    if isinstance(raw, int) and not isinstance(raw, bool):
        return raw if 0 < raw <= _MAX_SNOWFLAKE else None
    if not isinstance(raw, str) or not raw.isascii() or not raw.isdigit() or len(raw) > 19:
        return None
    value = int(raw)
    return value if 0 < value <= _MAX_SNOWFLAKE else None
