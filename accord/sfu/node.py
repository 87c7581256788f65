"""The SFU-mode process (`ACCORD_MODE=sfu`; VOICE.md 8, OPERATIONS.md 3.2, D15, D15e; RT-43).

Everything runs in one nursery: the signal watcher (installed first, so SIGINT/SIGTERM always
shut down cleanly), the HTTP server (hypercorn, serving `/health` from start-up and main's
`POST /sessions/{id}/end`), the link to main (register with backoff, heartbeats) and any
plugins. On a signal the node stops accepting, lets in-flight requests finish (bounded),
stops heartbeats and plugins, deregisters from main if registered, and exits 0.

Plug-in seam for the media plane: `run_node(settings, plugins=[...])` where each plugin gives
Quart blueprints (e.g. signaling `/ws`) and a supervised `run(node, *, task_status)` (e.g. the
forwarder supervisor). Plugins reach the shared state through `NodeContext` (settings, the
session table, the join-token secret, counters, the shutdown event).

A port of 0 in `ACCORD_SFU_ENDPOINT` / `ACCORD_SFU_CONTROL_URL` means "the HTTP port this node
bound", so tests (D20) and single-host setups can bind port 0 and still advertise the truth.
The bound address is printed as `→ listening on http://host:port` on stderr.
"""

from __future__ import annotations

import dataclasses
import hmac
import logging
import signal
import sys
import time
from collections.abc import Sequence
from functools import partial
from typing import Any, Protocol
from urllib.parse import urlsplit, urlunsplit

import httpx
import orjson
import trio
from hypercorn.config import Config as HypercornConfig
from hypercorn.trio import serve
from quart import Blueprint, Quart, Response, request
from quart_trio import QuartTrio
from werkzeug.exceptions import HTTPException

from accord.config import Settings, SfuSettings
from accord.sfu.control import MainCallError, MainLink
from accord.sfu.sessions import SessionTable

log = logging.getLogger("accord.sfu")

DRAIN_TIMEOUT_S = 10.0
DEREGISTER_TIMEOUT_S = 10.0


@dataclasses.dataclass(eq=False)
class NodeContext:
    """What the node's parts share."""

    settings: Settings
    sfu: SfuSettings
    secret: str
    sessions: SessionTable
    link: MainLink
    shutting_down: trio.Event = dataclasses.field(default_factory=trio.Event)
    counters: dict[str, int] = dataclasses.field(default_factory=dict)
    bound_port: int | None = None

    def health(self) -> dict[str, Any]:
        """D15e: status, node id, region, real load, whether registered, counters."""
        return {
            "status": "ok",
            "node_id": self.sfu.node_id,
            "region": self.sfu.region,
            "current_load": self.sessions.load,
            "registered": self.link.registered,
            "port": self.bound_port,
            "counters": {
                **self.link.counters,
                "sessions_ended_by_main": self.sessions.ended_by_main,
                **self.counters,
            },
        }

    def is_main(self, header: str | None) -> bool:
        """`Authorization: Node <ACCORD_SFU_SECRET>`, compared in constant time."""
        if not header or not header.startswith("Node "):
            return False
        return hmac.compare_digest(header[5:].encode(), self.secret.encode())


class NodePlugin(Protocol):
    """A part of the node added by another subsystem (signaling, media forwarding)."""

    def blueprints(self, node: NodeContext) -> Sequence[Blueprint]: ...

    async def run(
        self, node: NodeContext, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None: ...


def _json(body: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(body), status=status, content_type="application/json")


def _error(status: int, code: str, message: str) -> Response:
    return _json({"error": {"code": code, "message": message}}, status)


def create_node_app(node: NodeContext, plugins: Sequence[NodePlugin] = ()) -> Quart:
    app = QuartTrio("accord.sfu")
    app.url_map.strict_slashes = False

    @app.get("/health")
    async def health() -> Response:
        """GET /health — no auth."""
        return _json(node.health())

    @app.post("/sessions/<session_id>/end")
    async def end_session(session_id: str) -> Response:
        """POST /sessions/{id}/end — main only (Node secret): drop that participant."""
        if not node.is_main(request.headers.get("Authorization")):
            return _error(401, "unauthorized", "invalid or missing authentication")
        ended = node.sessions.end(session_id, time.time())
        return _json({"data": {"ok": True, "ended": ended}})

    @app.post("/sessions/<session_id>/rights")
    async def session_rights(session_id: str) -> Response:
        """POST /sessions/{id}/rights — main only: {"speak": bool, "deaf": bool} (RT-33).
        `speak` false stops forwarding what the participant sends; `deaf` stops what it gets."""
        if not node.is_main(request.headers.get("Authorization")):
            return _error(401, "unauthorized", "invalid or missing authentication")
        body = await request.get_json(force=True, silent=True)
        if not isinstance(body, dict) or not all(
            isinstance(body.get(name), bool) for name in ("speak", "deaf")
        ):
            return _error(400, "invalid_request", "speak and deaf must be booleans")
        applied = node.sessions.set_rights(session_id, speak=body["speak"], deaf=body["deaf"])
        return _json({"data": {"ok": True, "applied": applied}})

    @app.errorhandler(HTTPException)
    async def framework_error(error: HTTPException) -> Response:
        status = error.code or 500
        return _error(status, "not_found" if status == 404 else "invalid_request", error.name)

    for plugin in plugins:
        for blueprint in plugin.blueprints(node):
            app.register_blueprint(blueprint)
    return app


def with_port(url: str | None, port: int) -> str | None:
    """Replace an explicit port 0 in `url` by the bound port."""
    if url is None:
        return None
    parts = urlsplit(url)
    if parts.port != 0:
        return url
    host = parts.hostname or ""
    host = f"[{host}]" if ":" in host else host
    return urlunsplit((parts.scheme, f"{host}:{port}", parts.path, parts.query, parts.fragment))


async def run_node(settings: Settings, plugins: Sequence[NodePlugin] = ()) -> int:
    """The whole SFU-mode process; returns the exit code."""
    sfu = settings.sfu
    if sfu is None or not settings.sfu_secret:
        print("accord: configuration error: SFU mode needs ACCORD_SFU_*", file=sys.stderr)
        return 2
    sessions = SessionTable()
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with httpx.AsyncClient(timeout=httpx.Timeout(10.0, connect=5.0)) as http:
            link = MainLink(sfu, settings.sfu_secret, sessions, http)
            node = NodeContext(settings, sfu, settings.sfu_secret, sessions, link)
            async with trio.open_nursery() as nursery:
                nursery.start_soon(_watch_signals, signals, node)
                await _serve(node, plugins)
                nursery.cancel_scope.cancel()
            await _deregister(node)
    return 0


async def _watch_signals(signals: Any, node: NodeContext) -> None:
    async for signum in signals:
        log.info("shutting down SFU node '%s' (signal %d)", node.sfu.node_id, signum)
        node.shutting_down.set()
        return


async def _serve(node: NodeContext, plugins: Sequence[NodePlugin]) -> None:
    config = HypercornConfig()
    host = node.settings.bind_host
    config.bind = [
        f"[{host}]:{node.settings.port}" if ":" in host else f"{host}:{node.settings.port}"
    ]
    config.accesslog = None
    config.errorlog = logging.getLogger("hypercorn.error")
    config.graceful_timeout = DRAIN_TIMEOUT_S
    app = create_node_app(node, plugins)
    async with trio.open_nursery() as http:
        binds = await http.start(
            partial(serve, app, config, shutdown_trigger=node.shutting_down.wait)
        )
        node.bound_port = urlsplit(binds[0]).port
        assert node.bound_port is not None
        node.link.endpoint = with_port(node.sfu.endpoint, node.bound_port) or node.sfu.endpoint
        node.link.control_url = with_port(node.sfu.control_url, node.bound_port)
        print(f"→ listening on {binds[0]}", file=sys.stderr, flush=True)
        async with trio.open_nursery() as workers:
            for plugin in plugins:
                await workers.start(partial(plugin.run, node))
            await workers.start(node.link.run)
            await node.shutting_down.wait()
            workers.cancel_scope.cancel()


async def _deregister(node: NodeContext) -> None:
    if not node.link.registered:
        return
    with trio.move_on_after(DEREGISTER_TIMEOUT_S):
        try:
            await node.link.deregister()
        except MainCallError as exc:
            log.warning("failed to deregister on shutdown: %s", exc)
            return
        log.info("deregistered SFU node '%s'", node.sfu.node_id)
