"""Token buckets with continuous refill (D9, D9a) and a bounded map of them. Pure: time comes in.

A bucket idle long enough to be full is indistinguishable from a new one, so such buckets are
dropped freely; past `max_buckets` the least recently used are dropped too, so memory is bounded
whatever keys clients invent.
"""

from __future__ import annotations

import dataclasses
import math
from collections import OrderedDict


@dataclasses.dataclass(slots=True)
class Decision:
    allowed: bool
    limit: int
    remaining: int
    retry_after_s: int  # seconds until one token (>= 1 when refused, else 0)
    reset_after_s: float  # seconds until the bucket is full again


@dataclasses.dataclass(slots=True)
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    """Buckets of `capacity` tokens refilled at `refill_per_s`, keyed by any string."""

    def __init__(self, capacity: int, refill_per_s: float, *, max_buckets: int = 100_000) -> None:
        if capacity < 1 or refill_per_s <= 0:
            raise ValueError("capacity must be >= 1 and refill_per_s > 0")
        self.capacity = capacity
        self.refill_per_s = refill_per_s
        self.max_buckets = max_buckets
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()

    def __len__(self) -> int:
        return len(self._buckets)

    def take(self, key: str, now: float, cost: float = 1.0) -> Decision:
        """Take `cost` tokens from `key`'s bucket if it has them."""
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = _Bucket(float(self.capacity), now)
            self._buckets[key] = bucket
            self._evict(now)
        else:
            self._buckets.move_to_end(key)
            elapsed = max(0.0, now - bucket.updated)
            bucket.tokens = min(float(self.capacity), bucket.tokens + elapsed * self.refill_per_s)
            bucket.updated = now
        allowed = bucket.tokens >= cost
        if allowed:
            bucket.tokens -= cost
        missing_for_one = max(0.0, cost - bucket.tokens)
        retry = math.ceil(missing_for_one / self.refill_per_s) if not allowed else 0
        return Decision(
            allowed=allowed,
            limit=self.capacity,
            remaining=int(bucket.tokens),
            retry_after_s=max(1, retry) if not allowed else 0,
            reset_after_s=(self.capacity - bucket.tokens) / self.refill_per_s,
        )

    def peek(self, key: str, now: float, cost: float = 1.0) -> Decision:
        """What `take` would decide, without taking anything or creating a bucket."""
        bucket = self._buckets.get(key)
        tokens = float(self.capacity)
        if bucket is not None:
            elapsed = max(0.0, now - bucket.updated)
            tokens = min(float(self.capacity), bucket.tokens + elapsed * self.refill_per_s)
        allowed = tokens >= cost
        retry = math.ceil((cost - tokens) / self.refill_per_s) if not allowed else 0
        return Decision(
            allowed=allowed,
            limit=self.capacity,
            remaining=int(tokens),
            retry_after_s=max(1, retry) if not allowed else 0,
            reset_after_s=(self.capacity - tokens) / self.refill_per_s,
        )

    def _evict(self, now: float) -> None:
        if len(self._buckets) <= self.max_buckets:
            return
        # First drop buckets that have refilled completely (lossless), oldest first.
        full_after = self.capacity / self.refill_per_s
        for key in list(self._buckets)[: max(64, len(self._buckets) // 8)]:
            if now - self._buckets[key].updated >= full_after:
                del self._buckets[key]
        while len(self._buckets) > self.max_buckets:
            self._buckets.popitem(last=False)


class SlowMode:
    """Channel slow mode (G-32): one message per `interval_s` per user per channel.

    Keys are whatever the caller chooses (channel and user ids). Entries whose wait is over
    carry no information and are dropped freely; past `max_entries` the oldest go too, so
    memory stays bounded.
    """

    def __init__(self, *, max_entries: int = 100_000) -> None:
        self.max_entries = max_entries
        self._until: OrderedDict[tuple[int, int], float] = OrderedDict()

    def __len__(self) -> int:
        return len(self._until)

    def retry_after(self, key: tuple[int, int], now: float) -> float | None:
        """Seconds `key` must still wait, or None when it may send now."""
        until = self._until.get(key)
        if until is None or until <= now:
            return None
        return until - now

    def record(self, key: tuple[int, int], now: float, interval_s: float) -> None:
        """`key` sent at `now`: its next message is allowed `interval_s` later."""
        self._until.pop(key, None)
        self._until[key] = now + interval_s
        if len(self._until) > self.max_entries:
            for old in list(self._until)[: max(64, len(self._until) // 8)]:
                if self._until[old] <= now:
                    del self._until[old]
            while len(self._until) > self.max_entries:
                self._until.popitem(last=False)
