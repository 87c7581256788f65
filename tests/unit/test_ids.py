"""Snowflakes (D3, DATA.md 4): unique under heavy thread concurrency, increasing, decodable."""

from __future__ import annotations

import threading
import time

import pytest

from accord.ids import ACCORD_EPOCH_MS, SnowflakeGenerator, parse_id, snowflake_time_ms


def test_unique_and_increasing_across_threads() -> None:
    generator = SnowflakeGenerator(worker_id=3)
    results: list[list[int]] = [[] for _ in range(8)]

    def work(out: list[int]) -> None:
        for _ in range(20_000):
            out.append(generator.next_id())

    threads = [threading.Thread(target=work, args=(out,)) for out in results]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    every = [i for out in results for i in out]
    assert len(set(every)) == len(every) == 160_000
    for out in results:
        assert out == sorted(out)  # increasing within each thread
    assert all((i >> 12) & 0x3FF == 3 for i in every[:100])


def test_time_round_trip_and_epoch() -> None:
    generator = SnowflakeGenerator()
    before = int(time.time() * 1000)
    value = generator.next_id()
    after = int(time.time() * 1000)
    assert before <= snowflake_time_ms(value) <= after
    assert snowflake_time_ms(0) == ACCORD_EPOCH_MS


def test_clock_going_backwards_keeps_order(monkeypatch: pytest.MonkeyPatch) -> None:
    generator = SnowflakeGenerator()
    first = generator.next_id()
    real = time.time
    monkeypatch.setattr(time, "time", lambda: real() - 5)
    second = generator.next_id()
    monkeypatch.undo()
    assert second > first


def test_parse_id() -> None:
    assert parse_id("384606952786755584") == 384606952786755584
    for bad in ("", "abc", "-1", "0", "1.5", "99999999999999999999", " 12", "١٢", None, True, 3.0):
        assert parse_id(bad) is None
    assert parse_id("99999999999999") == 99999999999999
