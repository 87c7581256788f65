"""Wiring for main mode: build the Context, the Quart app, and run everything in one nursery.

`run_server` is the whole main-mode process minus signal handling: it opens the database,
bootstraps defaults, starts the supervised background tasks, serves HTTP and the gateway with
hypercorn's trio worker, and on `shutdown` lets in-flight requests finish before closing the
database. A crash in any background task cancels the server and propagates (loudly).
"""

from __future__ import annotations

import dataclasses
import importlib
import logging
import pkgutil
import sys
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

import trio
from hypercorn.config import Config as HypercornConfig
from hypercorn.trio import serve
from quart_trio import QuartTrio

import accord.gateway
import accord.http
import accord.voice
from accord.config import Settings
from accord.events.bus import EventBus
from accord.http.context import CONTEXT_KEY
from accord.http.errors import install_error_handlers
from accord.http.middleware import RateLimits, install_middleware
from accord.ids import SnowflakeGenerator
from accord.ratelimit import RateLimiter
from accord.services.auth import AuthService
from accord.services.bootstrap import BootstrapService
from accord.services.context import Context
from accord.storage.db import Database
from accord.voice.service import VoiceService

log = logging.getLogger("accord")

BackgroundTask = Callable[..., Awaitable[None]]


def build_context(settings: Settings) -> Context:
    ctx = Context(
        settings=settings,
        db=Database(settings.database_path),
        bus=EventBus(),
        ids=SnowflakeGenerator(settings.worker_id),
    )
    ctx.voice = ctx.get(VoiceService)
    return ctx


def create_app(ctx: Context) -> QuartTrio:
    """The Quart app with every blueprint of `accord.http`, error handlers and middleware."""
    settings = ctx.settings
    app = QuartTrio("accord")
    app.config[CONTEXT_KEY] = ctx
    app.config["MAX_CONTENT_LENGTH"] = settings.max_json_bytes
    app.config["BODY_TIMEOUT"] = 60
    app.config["PROVIDE_AUTOMATIC_OPTIONS"] = True
    app.url_map.strict_slashes = False
    install_error_handlers(app)
    api = RateLimiter(
        settings.rate_limit.capacity,
        settings.rate_limit.refill_per_s,
        max_buckets=settings.rate_limit_max_buckets,
    )
    auth_ip = RateLimiter(
        settings.auth_ip_rate.capacity,
        settings.auth_ip_rate.refill_per_s,
        max_buckets=settings.rate_limit_max_buckets,
    )
    node = RateLimiter(600, 10.0, max_buckets=16)
    install_middleware(app, RateLimits(api, auth_ip, node))
    for module in _entry_modules():
        blueprint = getattr(module, "blueprint", None)
        if blueprint is not None:
            app.register_blueprint(blueprint)
        install = getattr(module, "install", None)
        if install is not None:
            install(app, ctx)
    return app


_ENTRY_PACKAGES = (accord.http, accord.gateway, accord.voice)


def _entry_modules() -> list[Any]:
    """Every module of the entry packages; each may define `blueprint`, `install(app, ctx)`
    and `background_tasks(ctx)`, so adding a resource never means editing this file."""
    modules = []
    for package in _ENTRY_PACKAGES:
        names = sorted(info.name for info in pkgutil.iter_modules(package.__path__))
        modules += [importlib.import_module(f"{package.__name__}.{name}") for name in names]
    return modules


def background_tasks(ctx: Context) -> list[BackgroundTask]:
    """Long-lived subsystems, each `async def run(*, task_status)`, supervised by run_server."""
    tasks: list[BackgroundTask] = [ctx.get(AuthService).run_token_purger]
    for module in _entry_modules():
        provider = getattr(module, "background_tasks", None)
        if provider is not None:
            tasks += provider(ctx)
    return tasks


@dataclasses.dataclass(frozen=True, slots=True)
class RunningServer:
    ctx: Context
    app: QuartTrio
    binds: list[str]

    @property
    def url(self) -> str:
        return self.binds[0]


async def run_server(
    settings: Settings,
    *,
    shutdown: trio.Event,
    graceful_timeout_s: float = 10.0,
    task_status: trio.TaskStatus[RunningServer] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve main mode until `shutdown` is set, then drain and close cleanly."""
    ctx = build_context(settings)
    ctx.shutting_down = shutdown
    await ctx.db.open()
    try:
        invite = await ctx.get(BootstrapService).ensure_defaults()
        if invite:
            print(f"invite {invite}", file=sys.stderr, flush=True)
        app = create_app(ctx)
        config = HypercornConfig()
        config.bind = [f"{_bind_host(settings.bind_host)}:{settings.port}"]
        config.accesslog = None
        config.errorlog = logging.getLogger("hypercorn.error")
        config.graceful_timeout = graceful_timeout_s
        config.keep_alive_timeout = 75
        config.websocket_max_message_size = 1024 * 1024
        async with trio.open_nursery() as nursery:
            for task in background_tasks(ctx):
                await nursery.start(task)
            async with trio.open_nursery() as http:
                binds = await http.start(
                    partial(serve, app, config, shutdown_trigger=shutdown.wait)
                )
                log.info("listening on %s", ", ".join(binds))
                task_status.started(RunningServer(ctx, app, list(binds)))
            nursery.cancel_scope.cancel()
    finally:
        with trio.CancelScope(shield=True):
            await ctx.db.close()


def _bind_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host
