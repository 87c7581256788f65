"""The node's link to main (VOICE.md 8-9, D15, D15c, D15d; RT-38, RT-41): register with
backoff, heartbeat load and live sessions, re-register when main has forgotten the node,
deregister on shutdown.

Every call carries `Authorization: Node <ACCORD_SFU_SECRET>` and runs under a deadline (5 s to
connect, 10 s in all). Paths are joined with the node id URL-encoded.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import httpx
import trio

from accord.config import SfuSettings
from accord.sfu.backoff import Backoff
from accord.sfu.sessions import SessionTable

log = logging.getLogger("accord.sfu")

CALL_TIMEOUT_S = 10.0


class MainCallError(Exception):
    """A call to main failed: transport error, timeout or non-2xx status."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class MainLink:
    def __init__(
        self,
        sfu: SfuSettings,
        secret: str,
        sessions: SessionTable,
        http: httpx.AsyncClient,
        *,
        backoff: Callable[[], Backoff] = Backoff,
    ) -> None:
        self.sfu = sfu
        self.sessions = sessions
        self._http = http
        self._headers = {"Authorization": f"Node {secret}"}
        self._base = sfu.main_url.rstrip("/") + "/api/v1/sfu/nodes"
        self._node_path = f"{self._base}/{quote(sfu.node_id, safe='')}"
        self._backoff = backoff
        self.endpoint = sfu.endpoint
        self.control_url = sfu.control_url
        self.registered = False
        self.counters: dict[str, int] = {
            "register_attempts": 0,
            "registrations": 0,
            "heartbeats_ok": 0,
            "heartbeats_failed": 0,
        }

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Register, then heartbeat every interval; start over when main says 404 (D15d)."""
        task_status.started()
        while True:
            await self.register_with_backoff()
            await self._heartbeat_until_forgotten()

    async def register_with_backoff(self) -> None:
        backoff = self._backoff()
        while True:
            self.counters["register_attempts"] += 1
            try:
                await self.register()
            except MainCallError as exc:
                delay = backoff.next_delay()
                log.warning(
                    "failed to register with main server: %s, retrying in %.1fs", exc, delay
                )
                await trio.sleep(delay)
                continue
            log.info("registered with main server as '%s'", self.sfu.node_id)
            return

    async def register(self) -> None:
        body: dict[str, Any] = {
            "id": self.sfu.node_id,
            "endpoint": self.endpoint,
            "region": self.sfu.region,
            "capacity": self.sfu.capacity,
        }
        if self.control_url:
            body["control_url"] = self.control_url
        await self._call("POST", self._base, body)
        self.registered = True
        self.counters["registrations"] += 1

    async def heartbeat(self) -> None:
        body = {"current_load": self.sessions.load, "sessions": self.sessions.ids()}
        await self._call("POST", f"{self._node_path}/heartbeat", body)

    async def deregister(self) -> None:
        await self._call("DELETE", self._node_path, None)
        self.registered = False

    async def _heartbeat_until_forgotten(self) -> None:
        while True:
            try:
                await self.heartbeat()
            except MainCallError as exc:
                self.counters["heartbeats_failed"] += 1
                log.warning("heartbeat failed: %s", exc)
                if exc.status == 404:
                    self.registered = False
                    return
            else:
                self.counters["heartbeats_ok"] += 1
            await trio.sleep(self.sfu.heartbeat_interval_s)

    async def _call(self, method: str, url: str, body: dict[str, Any] | None) -> None:
        try:
            with trio.fail_after(CALL_TIMEOUT_S):
                response = await self._http.request(method, url, json=body, headers=self._headers)
        except trio.TooSlowError:
            raise MainCallError("timed out") from None
        except httpx.HTTPError as exc:
            raise MainCallError(f"{type(exc).__name__}: {exc}") from None
        if not 200 <= response.status_code < 300:
            raise MainCallError(
                f"server returned {response.status_code}: {response.text[:200]}",
                response.status_code,
            )
