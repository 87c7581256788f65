"""In-process publish/subscribe with bounded subscriber queues.

`publish` never blocks and never fails because of a subscriber: each subscriber has its own
bounded trio memory channel, and one that is full is marked overflowed, its queue closed, and
its `on_overflow` callback told. The subscriber (a gateway session) then closes its socket with
a close code and may RESUME; nobody else is slowed down and memory stays bounded.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress

import trio

from accord.events.types import BusItem

log = logging.getLogger("accord.events")


class Subscription:
    """One subscriber's bounded queue. Iterate `receive` to read items."""

    def __init__(self, bus: EventBus, size: int, on_overflow: Callable[[], None] | None) -> None:
        self._bus = bus
        self._send, self.receive = trio.open_memory_channel[BusItem](size)
        self._on_overflow = on_overflow
        self.overflowed = False

    def _offer(self, item: BusItem) -> None:
        if self.overflowed:
            return
        try:
            self._send.send_nowait(item)
        except trio.WouldBlock:
            self.overflowed = True
            self._send.close()
            if self._on_overflow is not None:
                self._on_overflow()
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            self._bus._remove(self)

    def close(self) -> None:
        self._send.close()
        self._bus._remove(self)


class EventBus:
    """Fans each published item out to every current subscriber."""

    def __init__(self, default_queue_size: int = 1024) -> None:
        self._subscribers: list[Subscription] = []
        self._default_size = default_queue_size
        self.published = 0

    def publish(self, item: BusItem) -> None:
        """Offer `item` to every subscriber without blocking."""
        self.published += 1
        for subscriber in tuple(self._subscribers):
            subscriber._offer(item)

    def subscribe(
        self, size: int | None = None, *, on_overflow: Callable[[], None] | None = None
    ) -> Subscription:
        subscription = Subscription(self, size or self._default_size, on_overflow)
        self._subscribers.append(subscription)
        return subscription

    @contextmanager
    def subscribed(
        self, size: int | None = None, *, on_overflow: Callable[[], None] | None = None
    ) -> Iterator[Subscription]:
        subscription = self.subscribe(size, on_overflow=on_overflow)
        try:
            yield subscription
        finally:
            subscription.close()

    @property
    def subscriber_count(self) -> int:
        return len(self._subscribers)

    def _remove(self, subscription: Subscription) -> None:
        with suppress(ValueError):
            self._subscribers.remove(subscription)
