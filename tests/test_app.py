"""Process wiring: background tasks are supervised (a crash stops the server loudly) and the
server shuts down cleanly when asked."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
import trio

import accord.app
from accord.app import run_server
from tests.support import make_settings


async def test_crashing_background_task_stops_the_server(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def crashes(*, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        await trio.sleep(0.2)
        raise RuntimeError("subsystem failed")

    original = accord.app.background_tasks
    monkeypatch.setattr(accord.app, "background_tasks", lambda ctx: [*original(ctx), crashes])
    shutdown = trio.Event()
    with (
        trio.fail_after(10),
        pytest.RaisesGroup(
            pytest.RaisesExc(RuntimeError, match="subsystem failed"), flatten_subgroups=True
        ),
    ):
        await run_server(make_settings(tmp_path), shutdown=shutdown)


async def test_shutdown_event_stops_serving(tmp_path: Path) -> None:
    shutdown = trio.Event()
    with trio.fail_after(15):
        async with trio.open_nursery() as nursery:
            running = await nursery.start(
                lambda task_status: run_server(
                    make_settings(tmp_path),
                    shutdown=shutdown,
                    graceful_timeout_s=1.0,
                    task_status=task_status,
                )
            )
            async with httpx.AsyncClient() as http:
                assert (await http.get(f"{running.url}/health")).status_code == 200
            shutdown.set()
    async with httpx.AsyncClient() as http:
        with pytest.raises(httpx.TransportError):
            await http.get(f"{running.url}/health", timeout=1)
