"""The Context every service is built from, and the registry that builds each service once.

`app.py` makes one Context (settings, Database, EventBus, id generator, limiters) and hands it
to the entry points; `ctx.get(MessageService)` builds that service on first use and returns the
same instance afterwards. No module-level singletons.
"""

from __future__ import annotations

import dataclasses
from typing import Any, TypeVar

import trio

from accord.config import Settings
from accord.events.bus import EventBus
from accord.events.types import BusItem
from accord.ids import SnowflakeGenerator
from accord.storage.db import Database
from accord.voice.port import VoicePort

S = TypeVar("S")


@dataclasses.dataclass(eq=False)
class Context:
    settings: Settings
    db: Database
    bus: EventBus
    ids: SnowflakeGenerator
    # Argon2 gets its own limiter so a login burst never starves other thread work (D11).
    password_limiter: trio.CapacityLimiter = dataclasses.field(
        default_factory=lambda: trio.CapacityLimiter(2)
    )
    file_limiter: trio.CapacityLimiter = dataclasses.field(
        default_factory=lambda: trio.CapacityLimiter(4)
    )
    # The voice service the gateway hands op 9/11 to (None: no voice backend wired).
    voice: VoicePort | None = None
    # Set when the server begins to shut down: long-lived connections close themselves.
    shutting_down: trio.Event = dataclasses.field(default_factory=trio.Event)
    _services: dict[type[Any], Any] = dataclasses.field(default_factory=dict)

    def get(self, cls: type[S]) -> S:
        """The one instance of service `cls`, built as `cls(self)` on first use."""
        service = self._services.get(cls)
        if service is None:
            service = cls(self)  # type: ignore[call-arg]  # services take the context
            self._services[cls] = service
        return service

    def new_id(self) -> int:
        return self.ids.next_id()

    def publish(self, *items: BusItem) -> None:
        for item in items:
            self.bus.publish(item)


class Service:
    """Base for services: holds the context and its common parts."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.db = ctx.db
        self.settings = ctx.settings
