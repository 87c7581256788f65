"""Token buckets (D9a): capacity 70, continuous refill 70/60 s, honest Retry-After, bounded."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from accord.ratelimit import RateLimiter


def test_capacity_then_refusal_then_refill() -> None:
    limiter = RateLimiter(70, 70 / 60)
    decisions = [limiter.take("k", 100.0) for _ in range(70)]
    assert all(d.allowed for d in decisions)
    assert decisions[-1].remaining == 0
    refused = limiter.take("k", 100.0)
    assert not refused.allowed
    assert refused.retry_after_s == 1  # one token every 60/70 s
    assert limiter.take("k", 100.0 + 60 / 70 + 1e-6).allowed
    assert not limiter.take("k", 100.0 + 60 / 70 + 1e-6).allowed


def test_full_after_a_minute() -> None:
    limiter = RateLimiter(70, 70 / 60)
    for _ in range(70):
        limiter.take("k", 0.0)
    assert limiter.take("k", 60.0).remaining == 69


def test_retry_after_counts_whole_seconds_up() -> None:
    limiter = RateLimiter(3, 1 / 10)
    for _ in range(3):
        limiter.take("k", 0.0)
    refused = limiter.take("k", 1.0)
    assert not refused.allowed
    assert refused.retry_after_s == 9


def test_memory_is_bounded() -> None:
    limiter = RateLimiter(5, 1.0, max_buckets=100)
    for i in range(10_000):
        limiter.take(f"key{i}", float(i) / 1000)
    assert len(limiter) <= 100


@given(st.lists(st.floats(min_value=0, max_value=1000, allow_nan=False), max_size=300))
def test_never_more_than_capacity_in_any_instant(times: list[float]) -> None:
    limiter = RateLimiter(10, 1.0)
    allowed_at: dict[float, int] = {}
    for t in sorted(times):
        if limiter.take("k", t).allowed:
            allowed_at[t] = allowed_at.get(t, 0) + 1
    assert all(count <= 10 for count in allowed_at.values())


def test_peek_decides_like_take_without_taking() -> None:
    limiter = RateLimiter(2, 1.0)
    assert limiter.peek("k", 0.0).allowed
    assert len(limiter) == 0  # peeking creates no bucket
    limiter.take("k", 0.0)
    limiter.take("k", 0.0)
    refused = limiter.peek("k", 0.0)
    assert not refused.allowed
    assert refused.retry_after_s == 1
    assert limiter.peek("k", 0.0) == refused  # nothing changed
    assert limiter.peek("k", 1.0).allowed
    assert limiter.take("k", 1.0).allowed
