"""Registration backoff (VOICE.md 8, 9; RT-41): 1 s doubling to 30 s, with +/-20 % jitter.

Pure: the caller sleeps; `rng` is injectable so tests see exact figures.
"""

from __future__ import annotations

import random


class Backoff:
    """Delays for successive failed attempts; `reset()` after a success."""

    def __init__(
        self,
        initial_s: float = 1.0,
        maximum_s: float = 30.0,
        *,
        jitter: float = 0.2,
        rng: random.Random | None = None,
    ) -> None:
        self.initial_s = initial_s
        self.maximum_s = maximum_s
        self.jitter = jitter
        self._rng = rng or random.Random()
        self._base = initial_s

    def next_delay(self) -> float:
        """The delay before the next attempt; the one after is twice as long (capped)."""
        base = self._base
        self._base = min(self.maximum_s, self._base * 2)
        if not self.jitter:
            return base
        return base * (1 + self._rng.uniform(-self.jitter, self.jitter))

    def reset(self) -> None:
        self._base = self.initial_s
