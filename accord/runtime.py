"""Process-level tuning applied once at start-up, before serving.

glibc's malloc raises its mmap threshold after the first large block is freed, so the 19 MiB
that each Argon2 hash allocates (D11) would afterwards come from the heap and stay resident
for good. Pinning the threshold keeps such blocks mmapped: they go back to the system when
freed, and an idle server keeps a small footprint. Without glibc this does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

_M_MMAP_THRESHOLD = -3
_MMAP_THRESHOLD_BYTES = 256 * 1024


def tune_memory() -> bool:
    """Pin malloc's mmap threshold; True when it was applied."""
    if not sys.platform.startswith("linux"):
        return False
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        libc = ctypes.CDLL(name)
        return bool(libc.mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD_BYTES))
    except (OSError, AttributeError):
        return False
