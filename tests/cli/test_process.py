"""The real process: `python -m accord` start-up errors, migrate, admin, graceful SIGTERM.

These run the installed command as a subprocess against a temporary data folder.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import trio

from tests.support import assert_error


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ACCORD_")}
    env.update(
        {
            "DATABASE_URL": f"sqlite:{tmp_path}/accord.db",
            "ACCORD_STORAGE_DIR": str(tmp_path / "files"),
            "ACCORD_BIND": "127.0.0.1",
            "ACCORD_LOG": "accord=info",
            **extra,
        }
    )
    return env


def _run(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "accord", *args],
        env=_env(tmp_path, **env),
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )


def test_config_error_is_one_line_and_exit_2(tmp_path: Path) -> None:
    for env, variable in (
        ({"PORT": "nope"}, "PORT"),
        ({"ACCORD_MODE": "bogus"}, "ACCORD_MODE"),
        ({"ACCORD_MODE": "sfu"}, "ACCORD_MAIN_URL"),
        ({"ACCORD_VOICE_BACKEND": "livekit"}, "LIVEKIT_URL"),
    ):
        result = _run(tmp_path, **env)
        assert result.returncode == 2, result
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1, result.stderr
        assert variable in lines[0]
        assert "Traceback" not in result.stderr


def test_migrate_and_admin_commands(tmp_path: Path) -> None:
    result = _run(tmp_path, "migrate")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "accord.db").exists()
    result = _run(tmp_path, "admin", "grant", "nobody")
    assert result.returncode == 1
    assert "nobody" in result.stderr
    import sqlite3

    conn = sqlite3.connect(tmp_path / "accord.db")
    conn.execute(
        "INSERT INTO users (id, username, display_name, created_at, updated_at)"
        " VALUES (5, 'eve', 'eve', 't', 't')"
    )
    conn.commit()
    assert _run(tmp_path, "admin", "grant", "eve").returncode == 0
    assert conn.execute("SELECT is_admin FROM users WHERE id = 5").fetchone()[0] == 1
    assert _run(tmp_path, "admin", "revoke", "eve").returncode == 0
    assert conn.execute("SELECT is_admin FROM users WHERE id = 5").fetchone()[0] == 0
    conn.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _wait_health(url: str, proc: trio.Process) -> None:
    async with httpx.AsyncClient() as http:
        with trio.fail_after(30):
            while True:
                assert proc.returncode is None, "server exited during start-up"
                try:
                    if (await http.get(f"{url}/health")).status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                await trio.sleep(0.1)


async def _start(tmp_path: Path, port: int) -> trio.Process:
    return await trio.lowlevel.open_process(
        [sys.executable, "-m", "accord"],
        env=_env(tmp_path, PORT=str(port)),
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


async def _stderr_of(proc: trio.Process) -> bytes:
    assert proc.stderr is not None
    data = b""
    with trio.move_on_after(5):
        while chunk := await proc.stderr.receive_some(65536):
            data += chunk
    return data


async def _finish(proc: trio.Process) -> bytes:
    """Teardown: kill the process if it is still running, then its stderr once it is gone."""
    if proc.returncode is None:
        proc.kill()
    err = await _stderr_of(proc)
    with trio.move_on_after(10):
        await proc.wait()
    return err


async def test_sigterm_finishes_in_flight_request_and_exits_0(tmp_path: Path) -> None:
    port = _free_port()
    proc = await _start(tmp_path, port)
    try:
        url = f"http://127.0.0.1:{port}"
        await _wait_health(url, proc)
        body = b'{"username":"slowpoke","password":"password123"}'
        head = (
            f"POST /api/v1/auth/register HTTP/1.1\r\nHost: x\r\nContent-Type: application/json"
            f"\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        ).encode()
        async with await trio.open_tcp_stream("127.0.0.1", port) as stream:
            await stream.send_all(head + body[:10])  # the request is now in flight
            await trio.sleep(0.3)
            proc.send_signal(signal.SIGTERM)
            await trio.sleep(0.3)
            await stream.send_all(body[10:])
            response = b""
            with trio.fail_after(10):
                while chunk := await stream.receive_some(65536):
                    response += chunk
        assert response.startswith(b"HTTP/1.1 200"), response[:200]
        assert b'"username":"slowpoke"' in response
        with trio.fail_after(15):
            await proc.wait()
        assert proc.returncode == 0
        # New connections are refused once it is down.
        async with httpx.AsyncClient() as http:
            with pytest.raises(httpx.TransportError):
                await http.get(f"{url}/health", timeout=1)
    finally:
        err = await _finish(proc)
    assert b"Traceback" not in err, err.decode()


async def test_process_serves_api_and_stops_on_sigint(tmp_path: Path) -> None:
    port = _free_port()
    proc = await _start(tmp_path, port)
    try:
        url = f"http://127.0.0.1:{port}"
        await _wait_health(url, proc)
        async with httpx.AsyncClient(base_url=url) as http:
            assert_error(await http.get("/api/v1/users/@me"), 401)
        proc.send_signal(signal.SIGINT)
        with trio.fail_after(15):
            await proc.wait()
    finally:
        err = await _finish(proc)
    assert proc.returncode == 0, err.decode()
    assert b"invite " in err  # the default invite is printed at start-up
