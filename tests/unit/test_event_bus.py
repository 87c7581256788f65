"""The event bus: every subscriber gets every item; a full subscriber never blocks others."""

from __future__ import annotations

import trio

from accord.events.bus import EventBus
from accord.events.types import Event


async def test_fan_out_in_order() -> None:
    bus = EventBus()
    with bus.subscribed(16) as a, bus.subscribed(16) as b:
        for i in range(5):
            bus.publish(Event(type="x", data={"i": i}))
        for sub in (a, b):
            got = [(await sub.receive.receive()).data["i"] for _ in range(5)]  # type: ignore[union-attr]
            assert got == [0, 1, 2, 3, 4]
    assert bus.subscriber_count == 0


async def test_full_subscriber_is_told_and_dropped_without_blocking() -> None:
    bus = EventBus()
    overflowed: list[str] = []
    slow = bus.subscribe(2, on_overflow=lambda: overflowed.append("slow"))
    with bus.subscribed(100) as fast:
        for i in range(10):
            bus.publish(Event(type="x", data={"i": i}))  # publish never blocks
        assert overflowed == ["slow"]
        assert slow.overflowed
        assert [(await fast.receive.receive()).data["i"] for _ in range(10)] == list(range(10))  # type: ignore[union-attr]
    # The slow one keeps what fitted, then sees the end of its stream.
    assert (await slow.receive.receive()).data["i"] == 0  # type: ignore[union-attr]
    assert (await slow.receive.receive()).data["i"] == 1  # type: ignore[union-attr]
    try:
        await slow.receive.receive()
        raise AssertionError("expected end of stream")
    except trio.EndOfChannel:
        pass
    slow.close()
